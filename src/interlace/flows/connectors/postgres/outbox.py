"""Postgres outbox source: rows of an outbox table, claimed in id order, removed once the sink confirmed.

The table is the truth; ``LISTEN`` on ``notify_channel`` only wakes the reader early (without it, or
when a notification is lost, the next poll finds the rows). Readers share the table without
duplicates: a batch of rows is claimed with ``SELECT … ORDER BY id FOR UPDATE SKIP LOCKED`` in a
transaction that stays open while its messages are in flight; each acknowledged row is deleted (or
marked processed) in that transaction, which commits when every row of the batch is settled. A
crash rolls the transaction back, so the rows are unlocked and claimed again — never lost. Rows
leave in id order within one reader; with several readers each takes the next unlocked batch, so
global order is given up for throughput (run one reader for strict order). A claim is an open
transaction (one connection per batch in flight) for as long as its messages are in flight: keep
steps short, or batches small — Postgres also waits for such transactions before it can create a
logical replication slot or vacuum the outbox.

``Message.id`` is ``<table>:<id>``, ``position`` the row id, ``key`` the ``key_column`` (if any),
``headers`` the ``headers_column`` object (if any). A nack with ``requeue`` leaves the row for the
next claim; without it the row is removed like an ack (the outbox has no dead letters of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import psycopg

from interlace.core.errors import ConfigError
from interlace.flows.connectors._delivery import BrokerDelivery
from interlace.flows.connectors._slots import Slots
from interlace.flows.connectors.postgres.config import qualified, quote_ident
from interlace.flows.message import Delivery, Message, header_map

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from interlace.flows.connectors.postgres.config import PostgresOutboxConfig
    from interlace.flows.services import FlowServices

__all__ = ["OutboxDelivery", "PostgresOutboxSource"]

log = logging.getLogger(__name__)
_RETRY_PAUSE = 1.0


class _Claim:
    """One claimed batch: its open transaction, and the rows still in flight."""

    def __init__(
        self, source: PostgresOutboxSource, conn: psycopg.AsyncConnection[Any], ids: list[int]
    ) -> None:
        self.source = source
        self.conn = conn
        self.open = set(ids)
        self.done: list[int] = []
        self.lock = asyncio.Lock()

    async def settle(self, row_id: int, *, remove: bool) -> None:
        async with self.lock:
            self.open.discard(row_id)
            if remove:
                self.done.append(row_id)
            if not self.open:
                await self.source._finish(self)  # noqa: SLF001 — the claim belongs to its source


class OutboxDelivery(BrokerDelivery):
    def __init__(self, claim: _Claim, row_id: int, message: Message, *, slots: Slots) -> None:
        super().__init__(message, redelivered=False, slots=slots)
        self._claim = claim
        self._row_id = row_id

    async def _ack(self) -> None:
        await self._claim.settle(self._row_id, remove=True)

    async def _nack(self, *, requeue: bool) -> None:
        await self._claim.settle(self._row_id, remove=not requeue)


class PostgresOutboxSource:
    def __init__(self, config: PostgresOutboxConfig, services: FlowServices | None = None) -> None:
        self.name = f"{services.flow}:source" if services is not None else f"postgres-outbox:{config.table}"
        self.config = config
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._claims: set[_Claim] = set()
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._listen_task: asyncio.Task[None] | None = None
        cfg = config
        columns = [cfg.id_column, cfg.payload_column, cfg.key_column, cfg.headers_column]
        select = ", ".join("NULL" if c is None else quote_ident(c) for c in columns)
        pending = f" WHERE {quote_ident(cfg.processed_column)} IS NULL" if cfg.on_ack == "mark" else ""
        self._claim_sql = (
            f"SELECT {select} FROM {qualified(cfg.table)}{pending} ORDER BY {quote_ident(cfg.id_column)} "  # noqa: S608 — identifiers validated and quoted
            "LIMIT %s FOR UPDATE SKIP LOCKED"
        )
        where = f"WHERE {quote_ident(cfg.id_column)} = ANY(%s)"
        self._finish_sql = (
            f"DELETE FROM {qualified(cfg.table)} {where}"  # noqa: S608 — identifiers validated and quoted
            if cfg.on_ack == "delete"
            else f"UPDATE {qualified(cfg.table)} SET {quote_ident(cfg.processed_column)} = now() {where}"  # noqa: S608 — identifiers validated and quoted
        )

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(self.config.dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"flow source {self.name!r}: cannot connect to Postgres: {exc}") from exc

    async def start(self) -> None:
        cfg = self.config
        conn = await self._connect()
        self._idle.append(conn)
        if cfg.create_table:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {qualified(cfg.table)} ("
                f"{quote_ident(cfg.id_column)} bigserial PRIMARY KEY, "
                f"{quote_ident(cfg.payload_column)} jsonb NOT NULL, key text, headers jsonb, "
                "created_at timestamptz NOT NULL DEFAULT now(), "
                f"{quote_ident(cfg.processed_column)} timestamptz)"
            )
        try:
            await conn.execute(self._claim_sql.replace("FOR UPDATE SKIP LOCKED", ""), (0,))
        except psycopg.Error as exc:
            raise ConfigError(
                f"flow source {self.name!r}: outbox table {cfg.table!r} is not usable: {exc}"
            ) from exc
        if cfg.notify_channel:
            self._listener = await self._connect()
            await self._listener.execute(f"LISTEN {quote_ident(cfg.notify_channel)}")
            self._listen_task = asyncio.create_task(self._listen(self._listener))

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        with contextlib.suppress(psycopg.Error, asyncio.CancelledError):
            async for _ in conn.notifies():
                self._wake.set()

    async def deliveries(self, *, max_in_flight: int) -> AsyncGenerator[Delivery, None]:
        slots = Slots(max_in_flight)
        while not self._closing.is_set():
            free = await slots.wait_free()
            self._wake.clear()
            try:
                claimed = await self._claim(min(free, self.config.batch_size))
            except psycopg.OperationalError as exc:
                log.warning("flow source %s: claiming rows failed (%s); retrying", self.name, exc)
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
                continue
            claim, rows = claimed
            for row_id, payload, key, headers in rows:
                slots.take()
                yield OutboxDelivery(claim, row_id, self._message(row_id, payload, key, headers), slots=slots)

    async def _claim(self, limit: int) -> tuple[_Claim, list[tuple[Any, ...]]] | None:
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            await conn.execute("BEGIN")
            rows = await (await conn.execute(self._claim_sql, (limit,))).fetchall()
            if not rows:
                await conn.execute("ROLLBACK")
        except BaseException:  # cancelled or failed mid-claim: the connection is no one's, close it
            await conn.close()
            raise
        if not rows:
            self._idle.append(conn)
            return None
        claim = _Claim(self, conn, [row[0] for row in rows])
        self._claims.add(claim)
        return claim, rows

    async def _finish(self, claim: _Claim) -> None:
        """Every row of the batch settled: remove the acknowledged ones and release the rest."""
        conn = claim.conn
        self._claims.discard(claim)
        try:
            if claim.done:
                await conn.execute(self._finish_sql, (claim.done,))
            await conn.execute("COMMIT")
        except BaseException:
            await conn.close()  # rolled back: the rows are claimed again
            raise
        self._wake.set()  # released (nacked) rows are claimable again
        if self._closing.is_set():
            await conn.close()
        else:
            self._idle.append(conn)

    def _message(self, row_id: int, payload: Any, key: Any, headers: Any) -> Message:
        return Message(
            id=f"{self.config.table}:{row_id}",
            payload=payload,
            key=None if key is None else str(key),
            headers=header_map(headers if isinstance(headers, dict) else None),
            source=f"postgres-outbox:{self.config.table}",
            position=str(row_id),
        )

    async def aclose(self) -> None:
        self._closing.set()
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
        if self._listener is not None:
            await self._listener.close()
        for conn in [*self._idle, *(claim.conn for claim in self._claims)]:
            await conn.close()  # an unsettled claim rolls back: its rows are claimed again
        self._idle.clear()
        self._claims.clear()
