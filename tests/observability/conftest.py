"""State databases for the event-log tests: SQLite in a temporary directory, and a real Postgres.

Postgres tests get a database of their own (``interlace_test_<random>``, dropped afterwards) on the
server of ``INTERLACE_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``).
They skip when it is unreachable, unless ``CI=true``: then they fail. They skip (even on CI) when the
asyncpg driver is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from tests.support.events import FlakyDatabase

from interlace.store.database import default_database_url

POSTGRES_URL = os.environ.get(
    "INTERLACE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _postgres_unavailable() -> str | None:
    url = make_url(POSTGRES_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=0.5):
            return None
    except OSError:
        return f"Postgres is not reachable at {url.host}:{url.port}"


async def _postgres_database() -> AsyncIterator[FlakyDatabase]:
    if importlib.util.find_spec("asyncpg") is None:  # not in the locks yet: a skip even on CI
        pytest.skip("asyncpg is not installed (add it to the dependencies to test on Postgres)")
    reason = _postgres_unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI=true requires it")
        pytest.skip(reason)
    name = f"interlace_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        database = FlakyDatabase(
            make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        )
        await database.start()
        try:
            yield database
        finally:
            await database.aclose()
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    database = FlakyDatabase(default_database_url(str(tmp_path / "state")))
    await database.start()
    yield database
    await database.aclose()


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    """Each test that takes it runs on SQLite and on a fresh Postgres database."""
    if request.param == "sqlite":
        database = FlakyDatabase(default_database_url(str(tmp_path / "state")))
        await database.start()
        yield database
        await database.aclose()
        return
    async for database in _postgres_database():
        yield database
