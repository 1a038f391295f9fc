"""Postgres change data capture: inserts, updates and deletes of published tables, through ``pgoutput``.

How it reads. psycopg 3 and asyncpg do not speak the streaming replication sub-protocol, so the source
uses logical decoding's SQL interface on an ordinary connection: ``pg_logical_slot_peek_binary_changes``
reads whole committed transactions *without consuming them*, and ``pg_replication_slot_advance`` moves
the slot only past transactions whose every change was acknowledged, in commit order. A crash before
that means the transaction is read again — never lost; ids are stable, so idempotent sinks skip what
they already applied. The price is that each read decodes again from the slot's confirmed position
(the unacknowledged changes in flight are decoded once more and dropped), so the source reads at most
``max_changes`` plus what is in flight, and confirms (one ``pg_replication_slot_advance``, which
decodes too) once before each read rather than on every acknowledgement. Measured on a 2-core
development machine, acking as fast as it reads: 20,000 row changes in 200 transactions of 100 —
about 26,000 changes/s; in 2,000 transactions of 10 — about 20,000 changes/s (advancing on every
acknowledgement instead gave 1,900/s). The slot is only usable by one reader at a time: a session
advisory lock makes a second ``interlace flow run`` a hot standby that takes over when the first stops
(or loses its connection; the reader then reconnects and queues for the lock again).

Creating the slot (at the first start) waits until every transaction then running has ended.

Messages. One per row change, in commit order::

    {"op": "insert|update|delete|truncate", "table": "public.t", "lsn": "0/4A2A0C80", "xid": 7954,
     "commit_ts": "2026-11-27T11:50:00.123456+00:00", "new": {…}, "old": {…}, "key": {…}}

``new`` is the row after an insert or update; ``old`` the whole old row when the table has
``REPLICA IDENTITY FULL``; ``key`` the primary-key (replica identity) columns, ``old_key`` the old ones
when an update changed them; ``truncate`` (off by default, see ``operations``) has only ``table``.
``Message.key`` is ``<table>:<key values>`` (per-row ordering). ``Message.id`` is
``<commit LSN>/<index in the transaction>`` and ``Message.position`` the same two numbers as
``"<commit LSN as an integer>.<index>"`` (grows with commit order). A nack with ``requeue`` delivers the
message again; without it the change is dropped (its transaction may then be confirmed). After a
restart the changes read again are not flagged ``redelivered`` (the slot cannot tell).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from interlace.core.errors import ConfigError
from interlace.flows.connectors._delivery import BrokerDelivery
from interlace.flows.connectors._slots import Slots
from interlace.flows.connectors.postgres.config import qualified, quote_ident
from interlace.flows.connectors.postgres.pgoutput import (
    Begin,
    Commit,
    Delete,
    Insert,
    PgOutputDecoder,
    Relation,
    Truncate,
    Update,
    format_lsn,
)
from interlace.flows.message import Delivery, Message

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from interlace.flows.connectors.postgres.config import PostgresCdcConfig
    from interlace.flows.services import FlowServices

__all__ = ["CdcDelivery", "PostgresCdcSource", "change_messages"]

log = logging.getLogger(__name__)
_SESSION_OPTIONS = "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3"
_STANDBY_PAUSE = 1.0
_RETRY_PAUSE = 1.0


@dataclass(slots=True)
class _Transaction:
    end_lsn: int
    pending: int


class CdcDelivery(BrokerDelivery):
    def __init__(
        self,
        source: PostgresCdcSource,
        txn: _Transaction,
        message: Message,
        *,
        redelivered: bool,
        slots: Slots,
    ) -> None:
        super().__init__(message, redelivered=redelivered, slots=slots)
        self._source = source
        self._txn = txn

    async def _ack(self) -> None:
        await self._source._settle(self._txn)  # noqa: SLF001 — the delivery is the source's own handle

    async def _nack(self, *, requeue: bool) -> None:
        if requeue:
            self._source._retry.append((self._txn, self._message))  # noqa: SLF001
        else:
            await self._source._settle(self._txn)  # noqa: SLF001


def change_messages(
    changes: list[Any], begin: Begin, commit: Commit, *, source: str, operations: frozenset[str]
) -> list[Message]:
    """The messages of one decoded transaction (its Insert/Update/Delete/Truncate values, in order)."""
    messages: list[Message] = []
    base = {
        "lsn": format_lsn(commit.commit_lsn),
        "xid": begin.xid,
        "commit_ts": commit.commit_ts.isoformat(),
    }
    for change in changes:
        for op, relation, payload in _describe(change):
            if op not in operations:
                continue
            index = len(messages)
            key = payload.get("key") or {}
            messages.append(
                Message(
                    id=f"{base['lsn']}/{index}",
                    payload={"op": op, "table": relation.qualified_name, **base, **payload},
                    key=f"{relation.qualified_name}:" + ",".join(str(v) for v in key.values()),
                    source=source,
                    position=f"{commit.commit_lsn}.{index}",
                )
            )
    return messages


def _describe(change: Any) -> list[tuple[str, Relation, dict[str, Any]]]:
    def key_of(row: dict[str, Any] | None, relation: Relation) -> dict[str, Any]:
        return {c.name: (row or {}).get(c.name) for c in relation.columns if c.is_key}

    if isinstance(change, Insert):
        return [("insert", change.relation, {"new": change.new, "key": key_of(change.new, change.relation)})]
    if isinstance(change, Update):
        payload: dict[str, Any] = {"new": change.new, "key": key_of(change.new, change.relation)}
        if change.old is not None:
            payload["old"] = change.old
        if change.key is not None:
            payload["old_key"] = change.key
        return [("update", change.relation, payload)]
    if isinstance(change, Delete):
        payload = {"key": change.key or key_of(change.old, change.relation)}
        if change.old is not None:
            payload["old"] = change.old
        return [("delete", change.relation, payload)]
    if isinstance(change, Truncate):
        return [("truncate", relation, {}) for relation in change.relations]
    return []


class PostgresCdcSource:
    def __init__(self, config: PostgresCdcConfig, services: FlowServices | None = None) -> None:
        self.name = f"{services.flow}:source" if services is not None else f"postgres-cdc:{config.slot}"
        self.config = config
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._decoder = PgOutputDecoder()
        self._txns: collections.deque[_Transaction] = collections.deque()
        self._ready: collections.deque[tuple[_Transaction, Message]] = collections.deque()
        self._retry: collections.deque[tuple[_Transaction, Message]] = collections.deque()
        self._read_upto = 0
        self._want = 0
        self._confirmed = 0
        self._closing = asyncio.Event()
        self._locked = False
        self._operations = frozenset(config.operations)

    @property
    def source_name(self) -> str:
        return f"postgres-cdc:{self.config.slot}"

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(
                self.config.dsn, autocommit=True, options=_SESSION_OPTIONS
            )
        except psycopg.OperationalError as exc:
            raise ConfigError(f"flow source {self.name!r}: cannot connect to Postgres: {exc}") from exc

    async def start(self) -> None:
        cfg = self.config
        conn = self._conn = await self._connect()
        level = await _scalar(conn, "SHOW wal_level")
        if level != "logical":
            raise ConfigError(
                f"flow source {self.name!r}: Postgres has wal_level={level}; change data capture needs "
                "`ALTER SYSTEM SET wal_level = logical` and a server restart"
            )
        if await _scalar(conn, "SELECT 1 FROM pg_publication WHERE pubname = %s", cfg.publication) is None:
            if not cfg.create_publication or not cfg.tables:
                raise ConfigError(
                    f"flow source {self.name!r}: publication {cfg.publication!r} does not exist — create it "
                    "or set create_publication: true with its tables"
                )
            tables = ", ".join(qualified(t) for t in cfg.tables)
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                await conn.execute(f"CREATE PUBLICATION {quote_ident(cfg.publication)} FOR TABLE {tables}")
        plugin = await _scalar(conn, "SELECT plugin FROM pg_replication_slots WHERE slot_name = %s", cfg.slot)
        if plugin is None:
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                await conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (cfg.slot,))
        elif plugin != "pgoutput":
            raise ConfigError(
                f"flow source {self.name!r}: replication slot {cfg.slot!r} uses plugin {plugin!r}, "
                "not pgoutput"
            )

    async def deliveries(self, *, max_in_flight: int) -> AsyncGenerator[Delivery, None]:
        if self._conn is None:
            raise RuntimeError("start() the source first")
        slots = Slots(max_in_flight)
        while not self._closing.is_set():
            await slots.wait_free()
            if self._retry:
                txn, message = self._retry.popleft()
                slots.take()
                yield CdcDelivery(self, txn, message, redelivered=True, slots=slots)
                continue
            if not self._locked:  # a new connection lost the session lock: take it again first
                await self._wait_for_lock()
                continue
            if not self._ready and not await self._read():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.config.poll_interval)
                continue
            if self._ready:
                txn, message = self._ready.popleft()
                slots.take()
                yield CdcDelivery(self, txn, message, redelivered=False, slots=slots)

    async def _wait_for_lock(self) -> None:
        """One reader per slot: the others wait here (hot standby) until it stops."""
        while not self._closing.is_set():
            try:
                async with self._lock:
                    got = await self._with_conn(
                        lambda c: _scalar(
                            c,
                            "SELECT pg_try_advisory_lock(hashtext(%s))",
                            f"interlace-cdc:{self.config.slot}",
                        )
                    )
            except (psycopg.Error, ConfigError) as exc:  # Postgres restarting: keep trying
                log.warning("flow source %s: reconnecting failed (%s); retrying", self.name, exc)
                got = False
            if got:
                self._locked = True
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), _STANDBY_PAUSE)

    async def _with_conn(self, action: Any) -> Any:
        if self._conn is None or self._conn.closed:
            self._locked = False
            self._conn = await self._connect()
        return await action(self._conn)

    async def _read(self) -> bool:
        """Decode the next transactions past those already handed out; whether any message came."""
        cfg = self.config
        if self._conn is None or self._conn.closed:
            self._locked = False  # the session lock went with the connection
            return False
        await self._confirm()  # one slot advance per read, however many acks came in between
        limit = cfg.max_changes + sum(t.pending for t in self._txns)
        try:
            async with self._lock:
                rows = await self._with_conn(
                    lambda c: _rows(
                        c,
                        "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
                        "'proto_version', '1', 'publication_names', %s)",
                        cfg.slot,
                        limit,
                        cfg.publication,
                    )
                )
        except psycopg.Error as exc:  # connection lost, or the slot briefly in use by a former reader
            log.warning("flow source %s: reading the slot failed (%s); retrying", self.name, exc)
            await asyncio.sleep(_RETRY_PAUSE)
            return False
        begin: Begin | None = None
        changes: list[Any] = []
        added = False
        for (data,) in rows:
            item = self._decoder.decode(data)
            if isinstance(item, Begin):
                begin, changes = item, []
            elif isinstance(item, Commit) and begin is not None:
                if item.end_lsn > self._read_upto:
                    messages = change_messages(
                        changes, begin, item, source=self.source_name, operations=self._operations
                    )
                    txn = _Transaction(item.end_lsn, len(messages))
                    self._txns.append(txn)
                    self._ready.extend((txn, m) for m in messages)
                    self._read_upto = item.end_lsn
                    added = added or bool(messages)
                begin = None
            elif isinstance(item, Insert | Update | Delete | Truncate):
                changes.append(item)
        self._collect()  # transactions with no delivered change are done at once
        return added

    async def _settle(self, txn: _Transaction) -> None:
        txn.pending -= 1
        self._collect()

    def _collect(self) -> None:
        """The leading transactions whose every change was acknowledged are done: confirm up to them."""
        while self._txns and self._txns[0].pending <= 0:
            self._want = max(self._want, self._txns.popleft().end_lsn)

    async def _confirm(self) -> None:
        """Move the slot to the confirmed position (before each read of the slot, and at close)."""
        self._collect()
        if self._want <= self._confirmed:
            return
        async with self._lock:
            target = self._want
            if target <= self._confirmed:
                return
            try:
                await self._with_conn(
                    lambda c: c.execute(
                        "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                        (self.config.slot, format_lsn(target)),
                    )
                )
            except psycopg.Error as exc:
                log.warning("flow source %s: confirming %s failed (%s); will retry", self.name, target, exc)
                return
            self._confirmed = target

    async def aclose(self) -> None:
        self._closing.set()
        with contextlib.suppress(psycopg.Error):
            await self._confirm()
        if self._conn is not None:
            await self._conn.close()
        self._conn = None


async def _scalar(conn: psycopg.AsyncConnection[Any], query: str, *params: Any) -> Any:
    row = await (await conn.execute(query, params or None)).fetchone()
    return None if row is None else row[0]


async def _rows(conn: psycopg.AsyncConnection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return await (await conn.execute(query, params)).fetchall()
