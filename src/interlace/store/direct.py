"""Plain SQL straight through the state database's driver, for the writers that append in batches.

Through SQLAlchemy's async layer every statement costs the event loop a few hundred microseconds of
CPU: on SQLite each DBAPI call (cursor, execute, fetch, close) is a hop to aiosqlite's thread, on
Postgres the adapter's bookkeeping wraps each round trip. The event log and the audit log write each
batch in a few fixed statements, so :func:`transaction` borrows a connection from the database's
driver pool (:mod:`.driver_pool`: no SQLAlchemy at all) and talks to the driver:

* SQLite (aiosqlite): one hop per statement (``execute_fetchall``, ``executemany``) and one for the
  commit, in this process's write turn and after ``BEGIN IMMEDIATE`` (see :mod:`.database`). A batch
  of rows goes in as one statement with one parameter, a JSON array of the rows
  (:meth:`Direct.insert_rows`: ``INSERT … SELECT … FROM json_each(?)``). ``executemany`` steps SQLite
  once a row and gives up the GIL around each step; while the event loop keeps the GIL busy the
  driver's thread waits up to the switch interval (5 ms) to take it back, so under sustained load a
  500-row batch took seconds and the writers fell behind. (Multi-row ``VALUES (…), (…)`` would do it
  too, but each batch length is another statement in the driver's cache: megabytes each);
* Postgres (asyncpg): ``fetch`` / ``executemany`` of statements the driver prepares once per
  connection, in an asyncpg transaction.

Statements use the driver's placeholders (``?`` for SQLite, ``$1`` … for Postgres) and parameters as
the driver takes them. When anything fails inside the transaction, the connection is closed, which
rolls it back (the pool opens a fresh one next time), so a connection cut mid-batch is never
handed out again.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence

    from interlace.store.database import Database

__all__ = ["Direct", "transaction"]


class Direct:
    """A transaction's statements, through the driver (see the module's notes)."""

    def __init__(self, driver: Any, *, sqlite: bool) -> None:
        self._driver = driver
        self.sqlite = sqlite
        """SQLite (``?`` placeholders) rather than Postgres (``$1`` …)."""

    async def fetch(self, statement: str, *params: Any) -> list[Sequence[Any]]:
        """Run a statement and return its rows."""
        if self.sqlite:
            return list(await self._driver.execute_fetchall(statement, params))
        return list(await self._driver.fetch(statement, *params))

    async def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], suffix: str = ""
    ) -> int:
        """SQLite: insert ``rows`` (values in ``columns``' order, as JSON gives them back: text, numbers,
        booleans as 1/0) in one statement; ``suffix`` may skip conflicts. Returns the rows inserted."""
        if not self.sqlite:
            msg = "insert_rows is SQLite's; on Postgres insert with unnest(…) array parameters"
            raise NotImplementedError(msg)
        if not rows:
            return 0
        picks = ", ".join(f"json_extract(value, '$[{index}]')" for index in range(len(columns)))
        statement = (
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - the caller's fixed names
            f"SELECT {picks} FROM json_each(?) WHERE true {suffix}"  # WHERE: SQLite's upsert grammar
        )
        cursor = await self._driver.execute(statement, (orjson.dumps(rows).decode(),))
        return int(cursor.rowcount)

    async def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run a statement once per row; returns the rows changed on SQLite (-1 on Postgres)."""
        if self.sqlite:
            cursor = await self._driver.executemany(statement, rows)
            return int(cursor.rowcount)
        await self._driver.executemany(statement, rows)
        return -1


@asynccontextmanager
async def transaction(database: Database) -> AsyncIterator[Direct]:
    """One transaction on a pooled driver connection; committed when the block ends."""
    async with database.write_turn(), database.pool.connection() as driver:
        if database.pool.sqlite:
            await driver.execute("BEGIN IMMEDIATE")
            yield Direct(driver, sqlite=True)  # a failure closes the connection, which rolls back
            await driver.commit()
        else:
            async with driver.transaction():
                yield Direct(driver, sqlite=False)
