"""``interlace keys``: create, list, show, rotate and revoke on the configured database (SQLite, Postgres)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from tests.support.databases import POSTGRES_URL, require_postgres
from typer.testing import CliRunner

from interlace.cli.main import app
from interlace.security.authn import Authenticator
from interlace.security.keys import KeyCache, KeyStore
from interlace.store.database import Database, default_database_url

ENV = {"COLUMNS": "250"}
KEY = re.compile(r"ik_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


async def _admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield default_database_url(str(tmp_path / "state"))
        return
    require_postgres()
    name = f"interlace_keys_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "interlace.yaml"
    path.write_text(f"state:\n  dir: {tmp_path / 'state'}\n  database_url: {database_url}\n")
    return str(path)


def keys(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["keys", *args], env=ENV)
    return result.exit_code, result.output


def authenticate(database_url: str, token: str) -> str:
    """What a gateway on the same database makes of ``token``: its key id, or the rejection's code."""

    async def run() -> str:
        database = Database(database_url)
        await database.start()
        cache = KeyCache(KeyStore(database))
        await cache.start()
        try:
            return (await Authenticator(keys=cache).authenticate(token)).id
        except Exception as exc:
            return str(getattr(exc, "code", exc))
        finally:
            await cache.aclose()
            await database.aclose()

    return asyncio.run(run())


def test_the_key_lifecycle(config: str, database_url: str) -> None:
    code, out = keys(
        "create", "-c", config, "--tenant", "acme", "--name", "ci", "--team", "search",
        "--model", "echo", "--model", "gpt", "--endpoint", "chat", "--rpm", "60", "--budget", "25",
        "--expires", "30d", "--meta", "owner=ana",
    )  # fmt: skip
    assert code == 0, out
    token = KEY.search(out)
    assert token is not None
    assert "shown only once" in out
    key_id = token.group(0)[:19]
    assert authenticate(database_url, token.group(0)) == key_id

    code, out = keys("list", "-c", config, "--tenant", "acme")
    assert code == 0, out
    assert key_id in out
    assert "echo, gpt" in out
    assert "60 rpm" in out
    assert token.group(0)[20:] not in out  # never the secret

    code, out = keys("show", key_id, "-c", config)
    assert code == 0, out
    assert "owner=ana" in out
    assert "search" in out
    assert str(datetime.now(UTC).year) in out

    code, out = keys("rotate", key_id, "-c", config, "--grace", "1h")
    assert code == 0, out
    rotated = KEY.search(out)
    assert rotated is not None
    assert rotated.group(0) != token.group(0)
    assert "keeps working until" in out
    assert authenticate(database_url, token.group(0)) == key_id  # within the grace period
    assert authenticate(database_url, rotated.group(0)) == key_id

    code, out = keys("revoke", key_id, "-c", config)
    assert code == 0, out
    assert authenticate(database_url, rotated.group(0)) == "revoked_api_key"
    assert "no API keys" in keys("list", "-c", config)[1]
    assert key_id in keys("list", "-c", config, "--all")[1]


def test_errors_name_the_fix(config: str) -> None:
    code, out = keys("create", "-c", config, "--tenant", "a b", "--name", "x", "--rpm", "0")
    assert code == 2
    assert "--tenant" in out
    assert "--rpm" in out
    code, out = keys("create", "-c", config, "--tenant", "acme", "--name", "x", "--meta", "nope")
    assert code == 2
    assert "NAME=VALUE" in out
    code, out = keys("show", "ik_0000000000000000", "-c", config)
    assert code == 2
    assert "no API key 'ik_0000000000000000'" in out
    code, out = keys("rotate", "ik_0000000000000000", "-c", config, "--grace", "later")
    assert code == 2
    assert "--grace" in out


def test_create_needs_a_tenant(tmp_path: Path) -> None:
    code, out = keys("create", "--name", "x")
    assert code == 2
    assert "--tenant" in out
