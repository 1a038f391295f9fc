"""The state database's URL: its query parameters read as SQLAlchemy reads them, its password never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.databases import throwaway_postgres

from interlace.core.errors import ConfigError
from interlace.store.database import Database
from interlace.store.direct import transaction
from interlace.store.driver_pool import driver_dsn


def test_a_postgres_url_s_query_parameters_are_connect_arguments_not_server_settings() -> None:
    url = "postgresql+asyncpg://u:p%40ss@db:5433/state?ssl=require&prepared_statement_cache_size=0&command_timeout=30"
    assert driver_dsn(url) == (
        "postgresql",
        "postgresql://u:p%40ss@db:5433/state",
        {"ssl": "require", "statement_cache_size": 0, "command_timeout": 30.0},
    )
    assert driver_dsn("sqlite+aiosqlite:////var/lib/interlace/state.db") == (
        "sqlite",
        "/var/lib/interlace/state.db",
        {},
    )


async def test_the_state_database_starts_and_writes_with_sqlalchemy_s_asyncpg_parameters() -> None:
    async for url in throwaway_postgres():
        database = Database(f"{url}?ssl=disable&prepared_statement_cache_size=0&command_timeout=30")
        await database.start()  # migrates through SQLAlchemy, checks the head through the driver
        try:
            assert await database.ping()
            async with transaction(database) as sql:
                (row,) = await sql.fetch("SELECT count(*) FROM alembic_version")
            assert row[0] == 1
        finally:
            await database.aclose()


async def test_a_database_that_cannot_be_opened_is_named_without_its_password() -> None:
    database = Database("postgresql+asyncpg://interlace:s3cret-pw@127.0.0.1:9/state?ssl=disable")
    with pytest.raises(ConfigError) as failed:
        await database.start()
    message = str(failed.value)
    assert "postgresql+asyncpg://interlace:***@127.0.0.1:9/state?ssl=disable" in message
    assert "s3cret-pw" not in message


async def test_sqlite_connections_keep_statement_journals_in_memory(tmp_path: Path) -> None:
    # a batch insert's statement journal would otherwise be a temporary file made per statement
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")
    await database.start()
    try:
        assert await database.pool.fetch("PRAGMA temp_store") == [(2,)]  # 2: MEMORY
    finally:
        await database.aclose()
