"""State databases for tests: SQLite in a temporary directory, or a throwaway Postgres database.

Postgres databases (``<prefix>_<random>``, dropped afterwards) live on the server of
``INTERLACE_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``). A test
that needs one skips when the server is unreachable, unless ``CI=true``: then it fails.
"""

from __future__ import annotations

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


def require_postgres() -> None:
    """Skip (outside CI) or fail (CI=true) when the test Postgres is unreachable."""
    url = make_url(POSTGRES_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=0.5):
            return
    except OSError:
        reason = f"Postgres is not reachable at {url.host}:{url.port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires it")
    pytest.skip(reason)


async def throwaway_postgres(prefix: str = "interlace_test") -> AsyncIterator[str]:
    """The URL of a fresh Postgres database, dropped (with its connections) afterwards."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def state_database(kind: str, tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    """A started state database (``sqlite`` or ``postgres``), closed (and dropped) afterwards."""
    if kind == "sqlite":
        url = default_database_url(str(tmp_path / "state"))
        database = FlakyDatabase(url)
        await database.start()
        try:
            yield database
        finally:
            await database.aclose()
        return
    async for url in throwaway_postgres():
        database = FlakyDatabase(url)
        await database.start()
        try:
            yield database
        finally:
            await database.aclose()
