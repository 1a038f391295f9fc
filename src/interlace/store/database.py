"""The database handle: engine, migrations to head on start, write transactions, a readiness ping.

SQLite has one writer per database file. Write transactions from this process take turns on one
:class:`asyncio.Lock` (:meth:`Database.write_turn`) instead of meeting on the file lock, whose busy
handler sleeps up to 100 ms between tries: under sustained load the event log, the audit log and the
job tables then fell behind and spooled. Each write transaction starts with ``BEGIN IMMEDIATE``, so it
holds the write lock from its first statement: a transaction that read first and then tried to write
while another process (a CLI command, a second worker) held the lock would fail at once
("database is locked") instead of waiting. Postgres takes neither step.

Alembic (~0.3 s to import) is loaded only when the database is behind: a restart against a database
already at the head revision (read from the migration files' ``revision``/``down_revision`` lines and
compared with ``alembic_version``) skips it, which is most of a restart's cold start.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from interlace import __version__
from interlace.core.errors import ConfigError
from interlace.store.tables import gateway_instances

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["Database", "default_database_url"]

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision) = (?:"([^"]*)"|None)$', re.MULTILINE)


def default_database_url(state_dir: str) -> str:
    return f"sqlite+aiosqlite:///{Path(state_dir).resolve() / 'interlace.db'}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.instance_id = uuid.uuid4().hex
        self.sqlite = url.startswith("sqlite")
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock() if self.sqlite else None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            msg = "Database used before start()"
            raise RuntimeError(msg)
        return self._engine

    async def start(self) -> None:
        if self.url.startswith("sqlite"):
            database = self.url.split("///", 1)[-1]
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # orjson for JSON columns: the event log serialises a record per request
        self._engine = create_async_engine(self.url, json_serializer=_dumps, json_deserializer=orjson.loads)
        try:
            async with self._engine.begin() as connection:
                await connection.run_sync(_upgrade_to_head)
        except (SQLAlchemyError, OSError) as exc:
            await self._engine.dispose()
            self._engine = None
            raise ConfigError(
                f"cannot open the state database {self.url!r}: {exc} — check state.database_url / state.dir"
            ) from None

    @contextlib.asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """This process's turn to write: one write transaction at a time on SQLite, no wait on Postgres.

        Not re-entrant: a write transaction never opens another one inside it.
        """
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction in this process's turn, committed when the block ends (see the notes)."""
        async with self.write_turn(), self.engine.begin() as connection:
            if self.sqlite:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection

    async def record_instance(self, *, host: str, port: int, config_source: str) -> None:
        async with self.begin() as connection:
            await connection.execute(
                insert(gateway_instances).values(
                    id=self.instance_id,
                    host=host,
                    port=port,
                    version=__version__,
                    config_source=config_source,
                    started_at=datetime.now(UTC),
                )
            )

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, RuntimeError):
            return False
        return True

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def head_revisions() -> set[str]:
    """The migration scripts' heads: revisions no other script names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION.findall(script.read_text()):
            if value:
                (revisions if kind == "revision" else parents).add(value)
    return revisions - parents


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    current = {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
    heads = head_revisions()
    return bool(heads) and current == heads


def _upgrade_to_head(connection: Connection) -> None:
    if _at_head(connection):
        return
    from alembic import command  # noqa: PLC0415 - only when the database is behind
    from alembic.config import Config as AlembicConfig  # noqa: PLC0415

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
