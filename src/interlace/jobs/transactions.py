"""Transactions on the state database for the job tables, one writer at a time on SQLite.

SQLite has one writer per database: concurrent write transactions from one process's connection pool
wait on each other's file lock, and a transaction that upgrades from reading to writing fails at once
("database is locked"). So in one process the job tables' write transactions take turns on an
:class:`asyncio.Lock` (the embedded default's "single-writer transaction"); other processes sharing
the file wait on SQLite's busy timeout. Postgres needs no such lock: its row locks and
``FOR UPDATE SKIP LOCKED`` let every worker write at once.
"""

from __future__ import annotations

import asyncio
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
        self._lock = asyncio.Lock() if database.url.startswith("sqlite") else None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends."""
        if self._lock is None:
            async with self.database.engine.begin() as connection:
                yield connection
            return
        async with self._lock, self.database.engine.begin() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        async with self.database.engine.connect() as connection:
            yield connection
