"""The event-log sink: each message appended to ``flow_events`` in one transaction per write.

Idempotent: a message already in the stream (same ``Message.id``) is skipped, so a redelivery after a
crash never appends it twice. Read it back with :func:`read_events` (``interlace flow status`` shows
the dead letters of each flow from here).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from interlace.store.flows_tables import flow_events

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.connectors.event_log.config import EventLogSinkConfig
    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices
    from interlace.store.database import Database

__all__ = ["EventLogSink", "count_events", "read_events"]


class EventLogSink:
    def __init__(self, config: EventLogSinkConfig, services: FlowServices) -> None:
        self.database = services.need(services.database, "the state database", "run it with a runtime")
        self.flow = services.flow
        self.stream = config.stream or services.flow
        self.name = f"event_log:{self.stream}"

    async def start(self) -> None:
        return None

    async def write(self, messages: Sequence[Message]) -> None:
        rows = [
            {
                "stream": self.stream,
                "message_id": m.id,
                "flow": self.flow,
                "key": m.key,
                "source": m.source,
                "position": m.position,
                "payload": m.payload,
                "headers": dict(m.headers),
                "created_at": time.time(),
            }
            for m in messages
        ]
        if not rows:
            return
        engine = self.database.engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(flow_events)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["stream", "message_id"])
        )
        async with self.database.begin() as connection:
            await connection.execute(statement)

    async def aclose(self) -> None:
        return None


async def read_events(database: Database, stream: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest ``limit`` events of ``stream``, oldest first."""
    async with database.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(flow_events)
                .where(flow_events.c.stream == stream)
                .order_by(flow_events.c.id.desc())
                .limit(limit)
            )
        ).mappings()
        return [dict(row) for row in reversed(list(rows))]


async def count_events(database: Database, stream: str) -> int:
    async with database.engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(flow_events).where(flow_events.c.stream == stream)
        )
    return int(count or 0)
