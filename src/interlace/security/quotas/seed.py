"""A budget's spend so far, read from the usage read model (``usage_daily``) of the state database.

The in-memory quota store calls it once per budget counter, so spend survives a restart without Redis:
``usage_daily`` holds each request's cost per UTC day, tenant and API key (shadow calls apart).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from interlace.store.events_tables import usage_daily

if TYPE_CHECKING:
    from interlace.security.quotas.store import SpendQuery
    from interlace.store.database import Database

__all__ = ["spent_nanos"]


async def spent_nanos(database: Database, query: SpendQuery) -> int:
    """Nano-dollars spent by the key or tenant of ``query`` since its period began."""
    column = usage_daily.c.api_key_id if query.scope == "key" else usage_daily.c.tenant
    statement = select(func.sum(usage_daily.c.cost_nanos)).where(column == query.id)
    if query.since is not None:
        statement = statement.where(usage_daily.c.day >= query.since)
    async with database.engine.connect() as connection:
        return int(await connection.scalar(statement) or 0)
