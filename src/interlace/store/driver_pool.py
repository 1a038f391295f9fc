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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["DriverPool", "driver_dsn"]

_SQLITE = "sqlite+aiosqlite:///"
_POSTGRES = "postgresql+asyncpg://"


def driver_dsn(url: str) -> tuple[str, str]:
    """The dialect (``sqlite`` or ``postgresql``) and the driver's own DSN of a SQLAlchemy URL."""
    if url.startswith(_SQLITE):
        return "sqlite", url.removeprefix(_SQLITE)
    if url.startswith(_POSTGRES):
        return "postgresql", "postgresql://" + url.removeprefix(_POSTGRES)
    msg = f"the state database is sqlite+aiosqlite:///… or postgresql+asyncpg://…, not {url.split(':', 1)[0]}"
    raise ValueError(msg)


class DriverPool:
    """Driver connections to one database (see the module's notes)."""

    def __init__(self, url: str, *, size: int = 5) -> None:
        self.dialect, self._dsn = driver_dsn(url)
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

    def _check_open(self) -> None:
        if self._closed:
            msg = "the state database is closed"
            raise RuntimeError(msg)

    async def _open_sqlite(self) -> Any:
        import aiosqlite  # noqa: PLC0415 - the SQLite driver only for SQLite

        return await aiosqlite.connect(self._dsn)

    async def _postgres_pool(self) -> Any:
        async with self._opening:
            if self._postgres is None:
                import asyncpg  # noqa: PLC0415 - the Postgres driver only for Postgres

                self._postgres = await asyncpg.create_pool(self._dsn, min_size=0, max_size=self._size)
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
