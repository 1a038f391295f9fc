"""Transactions on the state database for the job tables.

Write transactions are :meth:`Database.begin`'s: on SQLite they take turns with every other writer of
this process (the embedded default's "single-writer transaction") and hold the file's write lock from
their first statement; other processes sharing the file wait on SQLite's busy timeout. Postgres needs
no turns: its row locks and ``FOR UPDATE SKIP LOCKED`` let every worker write at once.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncConnection

    from interlace.store.database import Database

__all__ = ["Transactions"]


class Transactions:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends."""
        async with self.database.begin() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        async with self.database.engine.connect() as connection:
            yield connection
