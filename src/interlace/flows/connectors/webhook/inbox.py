"""The flow inbox: webhook events, durable before the ``202``, leased by flow processes until acked.

``accept`` inserts an event in its own transaction (a repeated ``event_id`` for the same flow is a
duplicate, not a second event). ``lease`` hands out up to N events whose lease is free or expired, by
arrival order, with one guarded ``UPDATE`` (a row another process leased in the meantime is skipped),
so N processes share an inbox without handing one event to two of them while its lease holds.
``attempts`` counts the times an event was handed out. ``ack`` deletes the row, ``nack`` frees it,
``renew`` extends the leases a process still holds. A process that dies leaves its leases to expire:
the events are handed out again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from interlace.store.flows_tables import flow_inbox

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from interlace.store.database import Database

__all__ = ["Inbox", "InboxEvent"]

_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class InboxEvent:
    row: int
    event_id: str
    key: str | None
    payload: Any
    headers: dict[str, str]
    attempts: int
    created_at: float


class Inbox:
    __slots__ = ("database",)

    def __init__(self, database: Database) -> None:
        self.database = database

    async def accept(
        self,
        flow: str,
        event_id: str,
        payload: Any,
        *,
        headers: Mapping[str, str],
        key: str | None,
        principal: str,
        tenant: str | None,
    ) -> bool:
        """Store the event (committed when this returns); False when ``event_id`` was already accepted."""
        try:
            async with self.database.begin() as connection:
                await connection.execute(
                    insert(flow_inbox).values(
                        flow=flow,
                        event_id=event_id,
                        key=key,
                        payload=payload,
                        headers=dict(headers),
                        principal=principal,
                        tenant=tenant or "",
                        attempts=0,
                        created_at=time.time(),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def lease(self, flow: str, owner: str, *, limit: int, seconds: float) -> list[InboxEvent]:
        """Up to ``limit`` free events of ``flow``, leased to ``owner`` for ``seconds``."""
        now = time.time()
        free = and_(
            flow_inbox.c.flow == flow,
            or_(flow_inbox.c.lease_expires.is_(None), flow_inbox.c.lease_expires < now),
        )
        claimed: list[Any] = []
        async with self.database.begin() as connection:
            for _ in range(_ROUNDS):  # rows another process took between select and update: look again
                ids = list(
                    (
                        await connection.execute(
                            select(flow_inbox.c.id)
                            .where(free)
                            .order_by(flow_inbox.c.id)
                            .limit(limit - len(claimed))
                        )
                    ).scalars()
                )
                if not ids:
                    break
                await connection.execute(
                    update(flow_inbox)
                    .where(free, flow_inbox.c.id.in_(ids))
                    .values(
                        lease_owner=owner, lease_expires=now + seconds, attempts=flow_inbox.c.attempts + 1
                    )
                )
                claimed += (
                    await connection.execute(
                        select(flow_inbox)
                        .where(flow_inbox.c.id.in_(ids), flow_inbox.c.lease_owner == owner)
                        .order_by(flow_inbox.c.id)
                    )
                ).mappings()
                if len(claimed) >= limit:
                    break
            rows = sorted(claimed, key=lambda row: row["id"])
            return [
                InboxEvent(
                    row=row["id"],
                    event_id=row["event_id"],
                    key=row["key"],
                    payload=row["payload"],
                    headers=dict(row["headers"] or {}),
                    attempts=row["attempts"],
                    created_at=row["created_at"],
                )
                for row in rows
            ]

    async def ack(self, row: int, owner: str) -> None:
        async with self.database.begin() as connection:
            await connection.execute(
                delete(flow_inbox).where(flow_inbox.c.id == row, flow_inbox.c.lease_owner == owner)
            )

    async def nack(self, row: int, owner: str) -> None:
        async with self.database.begin() as connection:
            await connection.execute(
                update(flow_inbox)
                .where(flow_inbox.c.id == row, flow_inbox.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires=None)
            )

    async def renew(self, rows: Sequence[int], owner: str, *, seconds: float) -> None:
        if not rows:
            return
        async with self.database.begin() as connection:
            await connection.execute(
                update(flow_inbox)
                .where(flow_inbox.c.id.in_(list(rows)), flow_inbox.c.lease_owner == owner)
                .values(lease_expires=time.time() + seconds)
            )

    async def pending(self, flow: str) -> int:
        """Events of ``flow`` not yet acknowledged (the source's lag)."""
        from sqlalchemy import func  # noqa: PLC0415

        async with self.database.engine.connect() as connection:
            count = await connection.scalar(
                select(func.count()).select_from(flow_inbox).where(flow_inbox.c.flow == flow)
            )
        return int(count or 0)
