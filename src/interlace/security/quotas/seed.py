"""A budget's spend so far, read from the usage read model (``usage_daily``) of the state database.

The in-memory quota store calls it once per budget counter, so spend survives a restart without Redis:
``usage_daily`` holds each request's cost per UTC day, tenant and API key (shadow calls apart). One
fixed statement per scope, through the driver (no SQLAlchemy on the serving path); SQLite keeps days
as ``YYYY-MM-DD`` text, which compares as the dates do.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlace.security.quotas.store import SpendQuery
    from interlace.store.database import Database

__all__ = ["spent_nanos"]

_FIRST_DAY = date.min  # "all time"


async def spent_nanos(database: Database, query: SpendQuery) -> int:
    """Nano-dollars spent by the key or tenant of ``query`` since its period began."""
    column = "api_key_id" if query.scope == "key" else "tenant"
    since = query.since or _FIRST_DAY
    async with database.pool.connection() as connection:
        if database.pool.sqlite:
            statement = f"SELECT sum(cost_nanos) FROM usage_daily WHERE {column} = ? AND day >= ?"  # noqa: S608 - a fixed column name
            rows: Any = await connection.execute_fetchall(statement, (query.id, since.isoformat()))
            total = rows[0][0]
        else:
            statement = f"SELECT sum(cost_nanos) FROM usage_daily WHERE {column} = $1 AND day >= $2"  # noqa: S608
            total = await connection.fetchval(statement, query.id, since)
    return int(total or 0)
