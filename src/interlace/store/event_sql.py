"""The event log's writes as plain SQL, per dialect: a batch of events, and the read model's increments.

The statements are fixed strings (prepared once per connection by the drivers), run through the driver
(:mod:`interlace.store.direct`), and their parameters are what the columns hold, so no value goes
through SQLAlchemy's per-row type processing:

* SQLite (one statement, :meth:`~interlace.store.direct.Direct.insert_rows`): the events are
  inserted with ``ON CONFLICT DO NOTHING`` and the statement's row count says how many were new. When
  some were already logged, the new ones are the newest rows of the table, read back in the same
  transaction (SQLite gives each new row a ``seq`` above every existing one, and this transaction holds
  the write lock from its first insert). Times are stored as SQLAlchemy stores them there
  (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), days as ``YYYY-MM-DD``.
* Postgres: one ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`` of the whole batch
  (each column an array parameter, in the batch's order), which names the new events atomically even
  when two gateways append the same event at once (a spool both replay). (Passing the batch as one
  JSON document instead saves asyncpg's per-element checks on the client but costs the server more to
  parse.)

The read model is upserted with ``ON CONFLICT … DO UPDATE`` adding the increments, one row per key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from interlace.store.event_columns import USAGE_KEYS, USAGE_METRICS

if TYPE_CHECKING:
    from datetime import datetime

    from interlace.store.direct import Direct
    from interlace.store.event_store import EventRow, UsageKey

__all__ = ["add_usage", "insert_events", "sqlite_time", "usage_params", "usage_upsert"]

_EVENT_COLUMNS: Final = (
    "event_id",
    "request_id",
    "shadow",
    "occurred_at",
    "tenant",
    "api_key_id",
    "model",
    "status",
    "record",
)
_SQLITE_SKIP_LOGGED: Final = "ON CONFLICT (event_id) DO NOTHING"
_SQLITE_NEWEST_EVENTS: Final = "SELECT event_id FROM request_events ORDER BY seq DESC LIMIT ?"

_POSTGRES_INSERT_EVENTS: Final = (
    "INSERT INTO request_events "
    "(event_id, request_id, shadow, occurred_at, tenant, api_key_id, model, status, record) "
    "SELECT event_id, request_id, shadow, occurred_at, tenant, api_key_id, model, status, record::json "
    "FROM unnest($1::varchar[], $2::varchar[], $3::boolean[], $4::timestamptz[], $5::varchar[], "
    "$6::varchar[], $7::varchar[], $8::integer[], $9::text[]) WITH ORDINALITY "
    "AS batch(event_id, request_id, shadow, occurred_at, tenant, api_key_id, model, status, record, "
    "position) "
    "ORDER BY position ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def _upsert_usage(placeholders: list[str]) -> str:
    columns = (*USAGE_KEYS, *USAGE_METRICS)
    added = ", ".join(f"{name} = usage_daily.{name} + excluded.{name}" for name in USAGE_METRICS)
    return (
        f"INSERT INTO usage_daily ({', '.join(columns)}) VALUES ({', '.join(placeholders)}) "  # noqa: S608 - the table's own column names
        f"ON CONFLICT ({', '.join(USAGE_KEYS)}) DO UPDATE SET {added}"
    )


_COLUMN_COUNT: Final = len(USAGE_KEYS) + len(USAGE_METRICS)
_SQLITE_UPSERT_USAGE: Final = _upsert_usage(["?"] * _COLUMN_COUNT)
_POSTGRES_UPSERT_USAGE: Final = _upsert_usage([f"${n}" for n in range(1, _COLUMN_COUNT + 1)])


def sqlite_time(moment: datetime) -> str:
    """A UTC datetime as SQLAlchemy's SQLite ``DateTime`` stores it: ``2026-12-01 12:00:00.000000``."""
    return moment.isoformat(" ", "microseconds")[:26]


async def insert_events(sql: Direct, rows: list[EventRow]) -> list[EventRow]:
    """Insert ``rows`` (no two with the same key); returns those that were not logged yet."""
    if sql.sqlite:
        params = [_values(row, sqlite_time(row.occurred_at)) for row in rows]
        inserted = await sql.insert_rows("request_events", _EVENT_COLUMNS, params, _SQLITE_SKIP_LOGGED)
        if inserted == len(rows):
            return rows
        fresh = {str(row[0]) for row in await sql.fetch(_SQLITE_NEWEST_EVENTS, inserted)}
    else:
        columns = zip(*(_values(row, row.occurred_at) for row in rows), strict=True)
        fresh = {str(row[0]) for row in await sql.fetch(_POSTGRES_INSERT_EVENTS, *map(list, columns))}
        if len(fresh) == len(rows):
            return rows
    return [row for row in rows if row.event_id in fresh]


def _values(row: EventRow, occurred_at: str | datetime) -> tuple[Any, ...]:
    return (
        row.event_id,
        row.request_id,
        row.shadow,
        occurred_at,
        row.tenant,
        row.api_key_id,
        row.model,
        row.status,
        row.record,
    )


def usage_upsert(*, sqlite: bool) -> str:
    """The statement that adds one row of :func:`usage_params` to the read model."""
    return _SQLITE_UPSERT_USAGE if sqlite else _POSTGRES_UPSERT_USAGE


def usage_params(totals: dict[UsageKey, dict[str, int]], *, sqlite: bool) -> list[tuple[Any, ...]]:
    """``totals`` as the parameters of :func:`usage_upsert`, one row per key."""
    return [
        (day.isoformat() if sqlite else day, *names, *(metrics[name] for name in USAGE_METRICS))
        for (day, *names), metrics in totals.items()
    ]


async def add_usage(sql: Direct, totals: dict[UsageKey, dict[str, int]]) -> None:
    """Add ``totals`` to the read model's rows (creating those that do not exist yet)."""
    if totals:
        await sql.executemany(usage_upsert(sqlite=sql.sqlite), usage_params(totals, sqlite=sql.sqlite))
