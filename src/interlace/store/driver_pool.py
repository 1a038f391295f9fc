"""Connections of the state database's own driver (aiosqlite or asyncpg), pooled, without SQLAlchemy.

The serving path talks to the state database in a few fixed statements: the event log's and the audit
log's batches, a key lookup, a readiness ping, the job worker's "anything due?" probe. Those go
through this pool, so a gateway that only serves never imports SQLAlchemy (~19 MiB of resident
memory for the life of the process); the query-building stores (jobs, keys' administration, usage
reads, flows) load it with their first statement (:attr:`~interlace.store.database.Database.engine`).

* SQLite: up to ``size`` aiosqlite connections (each a thread), opened on demand and kept while idle;
  the sqlite3 module's default transaction handling, as SQLAlchemy leaves it.
* Postgres: an asyncpg pool of up to ``size`` connections, opened on demand.

A connection whose use raised is closed instead of going back (it may be mid-transaction or cut).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

__all__ = ["DriverPool", "driver_dsn"]

_SQLITE = "sqlite+aiosqlite:///"
_POSTGRES = "postgresql+asyncpg://"
_SQLITE_SESSION: Final = "PRAGMA temp_store = MEMORY"
"""A batch insert's statement journal stays in memory instead of a temporary file per statement."""
_RENAMED: Final = {"prepared_statement_cache_size": "statement_cache_size"}  # SQLAlchemy's name
_NUMBERS: Final[dict[str, Callable[[str], Any]]] = {
    "statement_cache_size": int,
    "max_cached_statement_lifetime": float,
    "max_cacheable_statement_size": int,
    "command_timeout": float,
    "timeout": float,
}


def driver_dsn(url: str) -> tuple[str, str, dict[str, Any]]:
    """The dialect (``sqlite`` or ``postgresql``), the driver's own DSN and its connect arguments.

    SQLAlchemy hands a ``postgresql+asyncpg://`` URL's query parameters to ``asyncpg.connect`` as
    keyword arguments (``?ssl=require``, ``?prepared_statement_cache_size=0``,
    ``?command_timeout=30``), while asyncpg would read unknown DSN parameters as server settings: they
    are taken off the DSN and passed the same way, so one ``state.database_url`` means the same to both.
    """
    if url.startswith(_SQLITE):
        return "sqlite", url.removeprefix(_SQLITE), {}
    if url.startswith(_POSTGRES):
        address, _, query = url.removeprefix(_POSTGRES).partition("?")
        arguments: dict[str, Any] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            name = _RENAMED.get(name, name)  # noqa: PLW2901 - the same parameter, asyncpg's name
            arguments[name] = _NUMBERS[name](value) if name in _NUMBERS else value
        return "postgresql", f"postgresql://{address}", arguments
    msg = f"the state database is sqlite+aiosqlite:///… or postgresql+asyncpg://…, not {url.split(':', 1)[0]}"
    raise ValueError(msg)


class DriverPool:
    """Driver connections to one database (see the module's notes)."""

    def __init__(self, url: str, *, size: int = 5) -> None:
        self.dialect, self._dsn, self._arguments = driver_dsn(url)
        self._size = size
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(size)
        self._postgres: Any = None
        self._opening = asyncio.Lock()
        self._closed = False

    @property
    def sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A driver connection for the block: back to the pool after, closed if the block raised."""
        self._check_open()
        if not self.sqlite:
            pool = await self._postgres_pool()
            async with pool.acquire() as connection:
                yield connection
            return
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._open_sqlite()
            try:
                yield connection
            except BaseException:
                await _close_quietly(connection)
                raise
            if self._closed:  # closed while the block ran
                await _close_quietly(connection)
            else:
                self._idle.append(connection)

    async def fetch(self, statement: str, *params: Any) -> list[Sequence[Any]]:
        """Run one statement (the dialect's placeholders) on a pooled connection and return its rows."""
        from interlace.store.direct import Direct  # noqa: PLC0415 - direct builds on this module

        async with self.connection() as connection:
            return await Direct(connection, sqlite=self.sqlite).fetch(statement, *params)

    def _check_open(self) -> None:
        if self._closed:
            msg = "the state database is closed"
            raise RuntimeError(msg)

    async def _open_sqlite(self) -> Any:
        import aiosqlite  # noqa: PLC0415 - the SQLite driver only for SQLite

        connection = await aiosqlite.connect(self._dsn)
        try:
            await connection.execute(_SQLITE_SESSION)
        except BaseException:
            await _close_quietly(connection)
            raise
        return connection

    async def _postgres_pool(self) -> Any:
        async with self._opening:
            if self._postgres is None:
                import asyncpg  # noqa: PLC0415 - the Postgres driver only for Postgres

                self._postgres = await asyncpg.create_pool(
                    self._dsn, min_size=0, max_size=self._size, **self._arguments
                )
            return self._postgres

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await _close_quietly(connection)
        if self._postgres is not None:
            pool, self._postgres = self._postgres, None
            await pool.close()


async def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):
        await connection.close()
