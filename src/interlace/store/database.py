"""The database handle: driver pool, SQLAlchemy engine, migrations to head, write transactions, a ping.

Two ways in, to the same database:

* :attr:`Database.pool` — the driver's own connections (:mod:`.driver_pool`), for the few fixed
  statements of the serving path (:mod:`.direct`, the readiness ping, the instance record, the
  migration check). A gateway that only serves never imports SQLAlchemy.
* :attr:`Database.engine` — SQLAlchemy's async engine, for the stores that build their queries (jobs,
  keys' administration, usage reads, flows). It is created, and SQLAlchemy imported, on first use.

SQLite has one writer per database file. Write transactions from this process take turns on one
:class:`asyncio.Lock` (:meth:`Database.write_turn`) instead of meeting on the file lock, whose busy
handler sleeps up to 100 ms between tries: under sustained load the event log, the audit log and the
job tables then fell behind and spooled. Each write transaction starts with ``BEGIN IMMEDIATE``, so it
holds the write lock from its first statement: a transaction that read first and then tried to write
while another process (a CLI command, a second worker) held the lock would fail at once
("database is locked") instead of waiting. Postgres takes neither step.

Alembic (~0.3 s to import) and SQLAlchemy are loaded at start only when the database is behind: a
restart against a database already at the head revision (read from the migration files'
``revision``/``down_revision`` lines and compared with ``alembic_version``) skips both. A server
(``migrate_in_child``) migrates in a child process (:mod:`.migrate`) and never loads them for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from interlace import __version__
from interlace.core.errors import ConfigError
from interlace.store.driver_pool import DriverPool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Database", "default_database_url", "is_database_error"]

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision) = (?:"([^"]*)"|None)$', re.MULTILINE)
_SQLITE_HAS_VERSIONS = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
_POSTGRES_HAS_VERSIONS = (
    "SELECT count(*) FROM pg_tables WHERE tablename = 'alembic_version' AND schemaname = current_schema()"
)
_VERSIONS = "SELECT version_num FROM alembic_version"
_PASSWORD = re.compile(r"(://[^:/@?#]*:)[^@/?#]*@")
_INSERT_INSTANCE = (
    "INSERT INTO gateway_instances (id, host, port, version, config_source, started_at) VALUES "
)
_SQLITE_INSERT_INSTANCE = _INSERT_INSTANCE + "(?, ?, ?, ?, ?, ?)"
_POSTGRES_INSERT_INSTANCE = _INSERT_INSTANCE + "($1, $2, $3, $4, $5, $6)"


def default_database_url(state_dir: str) -> str:
    return f"sqlite+aiosqlite:///{Path(state_dir).resolve() / 'interlace.db'}"


class Database:
    def __init__(self, url: str, *, migrate_in_child: bool = False) -> None:
        self.url = url
        self.migrate_in_child = migrate_in_child
        """Bring a database that is behind to head in a child process (:mod:`.migrate`), not in this one."""
        self.instance_id = uuid.uuid4().hex
        self.sqlite = url.startswith("sqlite")
        self._pool: DriverPool | None = None
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock() if self.sqlite else None

    @property
    def pool(self) -> DriverPool:
        """The driver's own connections (see the module's notes)."""
        if self._pool is None:
            msg = "Database used before start()"
            raise RuntimeError(msg)
        return self._pool

    @property
    def engine(self) -> AsyncEngine:
        """SQLAlchemy's async engine, created (and SQLAlchemy imported) on first use."""
        if self._pool is None:
            msg = "Database used before start()"
            raise RuntimeError(msg)
        if self._engine is None:
            from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415 - see the notes

            # orjson for JSON columns: the jobs' requests and results, the flows' state
            self._engine = create_async_engine(
                self.url, json_serializer=_dumps, json_deserializer=orjson.loads
            )
        return self._engine

    async def start(self) -> None:
        if self.sqlite:
            database = self.url.split("///", 1)[-1]
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._pool = DriverPool(self.url)
        except ValueError as exc:
            raise ConfigError(f"state.database_url: {exc}") from None
        try:
            if not await self._at_head():
                if self.migrate_in_child:
                    await self._migrate_in_child()
                else:
                    async with self.engine.begin() as connection:
                        await connection.run_sync(_upgrade_to_head)
        except Exception as exc:
            await self.aclose()  # the driver's threads must not outlive a failed start
            if not is_database_error(exc):
                raise
            raise ConfigError(
                f"cannot open the state database {_without_password(self.url)!r}: {exc} — check "
                "state.database_url / state.dir"
            ) from None

    async def _migrate_in_child(self) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "interlace.store.migrate",
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, errors = await child.communicate(f"{self.url}\n".encode())
        if child.returncode != 0:
            lines = errors.decode(errors="replace").strip().splitlines() or ["no reason given"]
            raise ConfigError(f"cannot migrate the state database: {lines[-1]}")

    async def _at_head(self) -> bool:
        pool = self.pool
        ((has_versions,),) = await pool.fetch(_SQLITE_HAS_VERSIONS if pool.sqlite else _POSTGRES_HAS_VERSIONS)
        rows = await pool.fetch(_VERSIONS) if has_versions else []
        heads = head_revisions()
        return bool(heads) and {row[0] for row in rows} == heads

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
        from interlace.store.direct import transaction  # noqa: PLC0415 - direct builds on this module
        from interlace.store.event_sql import sqlite_time  # noqa: PLC0415

        started = datetime.now(UTC)
        async with transaction(self) as sql:
            values = (self.instance_id, host, port, __version__, config_source)
            if sql.sqlite:
                await sql.fetch(_SQLITE_INSERT_INSTANCE, *values, sqlite_time(started))
            else:
                await sql.fetch(_POSTGRES_INSERT_INSTANCE, *values, started)

    async def ping(self) -> bool:
        try:
            await self.pool.fetch("SELECT 1")
        except Exception as exc:
            if not is_database_error(exc) and not isinstance(exc, RuntimeError):
                raise
            return False
        return True

    async def aclose(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()
        if self._pool is not None:
            await self._pool.aclose()


def _without_password(url: str) -> str:
    """``url`` as it may be shown: a password in it is replaced with ``***``."""
    return _PASSWORD.sub(r"\1***@", url, count=1)


def is_database_error(exc: BaseException) -> bool:
    """A failure of the database or of reaching it (any driver, SQLAlchemy), not a bug of ours."""
    if isinstance(exc, (sqlite3.Error, OSError)):
        return True
    module = type(exc).__module__
    return module.startswith(("asyncpg", "sqlalchemy"))


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
    from sqlalchemy import inspect, text  # noqa: PLC0415 - SQLAlchemy only when migrating

    if not inspect(connection).has_table("alembic_version"):
        return False
    current = {row[0] for row in connection.execute(text(_VERSIONS))}
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
