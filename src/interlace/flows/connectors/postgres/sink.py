"""Postgres table sink: upsert by key, with the replay guard in the same transaction as the rows.

Each :meth:`write` is one transaction: ``INSERT … ON CONFLICT (key) DO UPDATE`` for every message
(its payload's fields are the columns; objects and lists are written as ``jsonb``), plus the replay
guard, so the output and the record of what was applied commit or roll back together:

- ``replay_guard: id`` — ``flow_applied(flow, source, message_id)`` gets one row per message; a message
  whose id is already there was applied before (a redelivery after a crash) and is skipped.
- ``replay_guard: position`` — ``flow_positions(flow, source, position)`` keeps the highest
  ``Message.position`` per source; messages at or below it are skipped. Positions compare as the
  sequence of integers in them (``"42"``, ``"1700000000000-3"``, ``"1244793984.2"``), so it is for sources
  whose positions grow (Postgres CDC, JetStream, Redis Streams) in a flow that writes in order.
- ``replay_guard: none`` — the upsert alone (replaying re-applies the same rows).

Writes share the sink's one connection with group commit: writes that arrive while a transaction
is running wait for it, then commit together in the next one (a commit's fsync, not the statements,
is what a message costs). When the table refuses a row in such a group, each write of the group is
retried in a transaction of its own, so only the write that holds the bad row fails. A message the table
refuses for good — not an object, no key value, a field that is no column, a constraint or type
violation — raises :class:`~interlace.core.errors.MessageRejected`, so the flow dead-letters it
instead of retrying; a lost connection is an ordinary (retried) error.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from interlace.core.errors import ConfigError, MessageRejected
from interlace.flows.connectors.postgres.config import qualified, quote_ident

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.connectors.postgres.config import PostgresSinkConfig
    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices

__all__ = ["PostgresTableSink", "position_order"]

_DIGITS = re.compile(r"\d+")
_REFUSALS = (
    psycopg.errors.DataError,  # a value of the wrong type or out of range
    psycopg.errors.IntegrityConstraintViolation,  # NOT NULL, CHECK, a foreign key
    psycopg.errors.UndefinedColumn,  # a payload field that is not a column
)
_PRUNE_EVERY = 1000
"""Messages written between two prunes of ``flow_applied``."""


def position_order(position: str) -> tuple[int, ...]:
    """How positions compare: the integers in them, in order."""
    return tuple(int(part) for part in _DIGITS.findall(position))


class PostgresTableSink:
    def __init__(self, config: PostgresSinkConfig, services: FlowServices | None = None) -> None:
        self.flow = services.flow if services is not None else f"postgres:{config.table}"
        """The flow whose replays are guarded (the guard tables are keyed by flow and source)."""
        self.name = f"{self.flow}:{services.part}" if services is not None and services.part else self.flow
        self.config = config
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._since_prune = 0
        self._writing = asyncio.Lock()
        """One transaction at a time on the connection: concurrent writes would nest as savepoints."""
        self._waiting: list[_Write] = []
        """Writes that arrived while a transaction was running: the next one commits them together."""
        schema = quote_ident(config.state_schema)
        self._positions = f"{schema}.flow_positions"
        self._applied = f"{schema}.flow_applied"

    async def start(self) -> None:
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.config.dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"flow sink {self.name!r}: cannot connect to Postgres: {exc}") from exc
        if self.config.replay_guard == "position":
            await self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._positions} (flow text NOT NULL, source text NOT NULL, "
                "position text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (flow, source))"
            )
        elif self.config.replay_guard == "id":
            await self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._applied} (flow text NOT NULL, source text NOT NULL, "
                "message_id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (flow, source, message_id))"
            )

    async def write(self, messages: Sequence[Message]) -> None:
        write = _Write(messages, asyncio.get_running_loop().create_future())
        self._waiting.append(write)
        async with self._writing:
            if not write.done.done():  # not committed by the group before: commit the waiting group now
                group, self._waiting = self._waiting, []
                try:
                    await self._commit_group(group)
                finally:  # cancelled mid-way: the others must not wait for a commit that never comes
                    for other in group:
                        if not other.done.done():
                            other.done.set_exception(
                                ConnectionError(f"flow sink {self.name!r}: the transaction was interrupted")
                            )
        await write.done

    async def _commit_group(self, group: list[_Write]) -> None:
        try:
            await self._commit([message for write in group for message in write.messages])
        except MessageRejected as refusal:
            if len(group) == 1:
                group[0].done.set_exception(refusal)
                return
            for write in group:  # find the write that holds the refused row: each alone
                try:
                    await self._commit(write.messages)
                except Exception as exc:  # handed to that write's caller
                    write.done.set_exception(exc)
                else:
                    write.done.set_result(None)
            return
        except Exception as exc:  # the whole group rolled back: every caller sees it
            for write in group:
                write.done.set_exception(exc)
            return
        for write in group:
            write.done.set_result(None)
        self._since_prune += sum(len(write.messages) for write in group)
        if self.config.replay_guard == "id" and self._since_prune >= _PRUNE_EVERY:
            await self.prune()

    async def _commit(self, messages: Sequence[Message]) -> None:
        """One transaction: the replay guard and the upserts of ``messages``."""
        if self._conn is None or self._conn.closed:
            await self.start()
        conn = self._conn
        assert conn is not None
        try:
            async with conn.transaction():
                for message in await self._fresh(conn, messages):
                    await self._upsert(conn, message)
        except _REFUSALS as exc:  # the table refuses these rows: retrying cannot cure it
            raise MessageRejected(f"flow sink {self.name!r}: {type(exc).__name__}: {exc}") from exc

    async def prune(self) -> int:
        """Forget this flow's applied ids older than ``applied_retention``; how many were removed."""
        self._since_prune = 0
        if self._conn is None or self.config.replay_guard != "id":
            return 0
        cursor = await self._conn.execute(
            f"DELETE FROM {self._applied} WHERE flow = %s "  # noqa: S608 — identifiers validated and quoted
            "AND applied_at < now() - make_interval(secs => %s)",
            (self.flow, self.config.applied_retention),
        )
        return cursor.rowcount

    async def _fresh(self, conn: psycopg.AsyncConnection[Any], messages: Sequence[Message]) -> list[Message]:
        """The messages not applied before, recording them as applied (same transaction)."""
        guard = self.config.replay_guard
        if guard == "none":
            return list(messages)
        fresh: list[Message] = []
        if guard == "id":
            for message in messages:
                cursor = await conn.execute(
                    f"INSERT INTO {self._applied} (flow, source, message_id) VALUES (%s, %s, %s) "  # noqa: S608 — identifiers validated and quoted
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    (self.flow, message.source, message.id),
                )
                if await cursor.fetchone() is not None:
                    fresh.append(message)
            return fresh
        highest: dict[str, tuple[int, ...] | None] = {}
        for message in messages:
            if message.position is None:
                raise MessageRejected(
                    f"flow sink {self.name!r}: replay_guard 'position' needs positions, and a message from "
                    f"{message.source!r} has none — use replay_guard: id"
                )
            if message.source not in highest:
                row = await (
                    await conn.execute(
                        f"SELECT position FROM {self._positions} WHERE flow = %s AND source = %s FOR UPDATE",  # noqa: S608 — identifiers validated and quoted
                        (self.flow, message.source),
                    )
                ).fetchone()
                highest[message.source] = None if row is None else position_order(row[0])
            order = position_order(message.position)
            stored = highest[message.source]
            if stored is not None and order <= stored:
                continue
            highest[message.source] = order
            fresh.append(message)
            await conn.execute(
                f"INSERT INTO {self._positions} (flow, source, position) VALUES (%s, %s, %s) "  # noqa: S608 — identifiers validated and quoted
                "ON CONFLICT (flow, source) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
                (self.flow, message.source, message.position),
            )
        return fresh

    async def _upsert(self, conn: psycopg.AsyncConnection[Any], message: Message) -> None:
        cfg = self.config
        payload = message.payload
        if not isinstance(payload, dict):
            raise MessageRejected(
                f"flow sink {self.name!r}: the payload must be an object, got {type(payload).__name__}"
            )
        names = cfg.columns if cfg.columns is not None else list(payload)
        missing = [k for k in cfg.key if payload.get(k) is None]
        if missing:
            raise MessageRejected(
                f"flow sink {self.name!r}: the payload has no value for key field(s) {missing}"
            )
        for column in names:
            if not isinstance(column, str) or not column:
                raise MessageRejected(f"flow sink {self.name!r}: {column!r} is not a column name")
        values = [_adapt(payload.get(column)) for column in names]
        columns = ", ".join(quote_ident(c) for c in names)
        updates = [c for c in names if c not in cfg.key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        conflict = ", ".join(quote_ident(k) for k in cfg.key)
        await conn.execute(
            f"INSERT INTO {qualified(cfg.table)} ({columns}) VALUES ({', '.join(['%s'] * len(names))}) "  # noqa: S608 — identifiers validated and quoted
            f"ON CONFLICT ({conflict}) {action}",
            values,
        )

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = None


@dataclass(slots=True)
class _Write:
    """One caller's write, waiting for the transaction that commits it."""

    messages: Sequence[Message]
    done: asyncio.Future[None]


def _adapt(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value
