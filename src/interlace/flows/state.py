"""What each ``interlace flow run`` process reports: its flows' counters, for ``interlace flow status``.

A row per (flow, process) in ``flow_state``, upserted every few seconds while the flow runs and once
more with status ``stopped`` when it ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from interlace.store.flows_tables import flow_state

if TYPE_CHECKING:
    from interlace.flows.metrics import FlowStats
    from interlace.store.database import Database

__all__ = ["FlowStateStore"]


class FlowStateStore:
    __slots__ = ("database",)

    def __init__(self, database: Database) -> None:
        self.database = database

    async def report(self, flow: str, process: str, status: str, stats: FlowStats) -> None:
        engine = self.database.engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        values = {
            "flow": flow,
            "process": process,
            "status": status,
            "stats": stats.to_json(),
            "started_at": stats.started_at,
            "updated_at": time.time(),
        }
        statement = dialect.insert(flow_state).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["flow", "process"],
            set_={"status": status, "stats": values["stats"], "updated_at": values["updated_at"]},
        )
        async with self.database.begin() as connection:
            await connection.execute(statement)

    async def read(self) -> list[dict[str, Any]]:
        async with self.database.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(flow_state).order_by(flow_state.c.flow, flow_state.c.updated_at)
                )
            ).mappings()
            return [dict(row) for row in rows]
