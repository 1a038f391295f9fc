"""A budget's spend so far, read from the usage read model (``usage_daily``) of the state database.

The in-memory quota store calls it once per budget counter, so spend survives a restart without Redis:
``usage_daily`` holds each request's cost per UTC day, tenant and API key (shadow calls apart). One
fixed statement per scope, through the driver (no SQLAlchemy on the serving path); SQLite keeps days
as ``YYYY-MM-DD`` text, which compares as the dates do.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from interlace.security.quotas.store import SpendQuery
    from interlace.store.database import Database

__all__ = ["spent_nanos"]

_FIRST_DAY = date.min  # "all time"
_SPENT = "SELECT sum(cost_nanos) FROM usage_daily WHERE {column} = {id} AND day >= {since}"
# (scope, SQLite) -> the statement; the column is the scope's, never a caller's value
_STATEMENTS: Final = {
    (scope, sqlite): _SPENT.format(column=column, id="?" if sqlite else "$1", since="?" if sqlite else "$2")
    for scope, column in (("key", "api_key_id"), ("tenant", "tenant"))
    for sqlite in (True, False)
}


async def spent_nanos(database: Database, query: SpendQuery) -> int:
    """Nano-dollars spent by the key or tenant of ``query`` since its period began."""
    pool = database.pool
    since = query.since or _FIRST_DAY
    statement = _STATEMENTS[query.scope, pool.sqlite]
    ((total,),) = await pool.fetch(statement, query.id, since.isoformat() if pool.sqlite else since)
    return int(total or 0)
