"""The event log in the state database: append events, project them into ``usage_daily``, replay, read.

An *event* is a :class:`~interlace.observability.record.RequestRecord` as JSON (a ``dict``). The same
function, :func:`project`, turns events into read-model increments whether they arrive live
(:func:`append`, which writes the events and their increments in one transaction) or from the log
(:func:`replay`, which recomputes ``usage_daily`` from ``request_events``), so both give the same rows.

Upserts use the dialect's ``INSERT … ON CONFLICT``: SQLite and Postgres are supported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from interlace.observability.cost import nanos_to_usd, usd_to_nanos
from interlace.store.events_tables import USAGE_KEYS, USAGE_METRICS, request_events, usage_daily

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncConnection

    from interlace.store.database import Database

__all__ = [
    "GROUP_BY",
    "GroupBy",
    "ReplayResult",
    "UsageKey",
    "UsageRow",
    "aggregate",
    "append",
    "project",
    "replay",
    "usage",
]

GroupBy = Literal["day", "model", "api_key"]
GROUP_BY: tuple[GroupBy, ...] = ("day", "model", "api_key")

UsageKey = tuple[date, str, str, str]
"""``(day, tenant, api_key_id, model)``; ``''`` stands for none."""

_KEY_LENGTH = 128


def _text(value: Any) -> str:
    return value[:_KEY_LENGTH] if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def project(event: dict[str, Any]) -> tuple[UsageKey, dict[str, int]]:
    """The read-model row an event counts in and what it adds to it.

    The day is the UTC date the request arrived; the model is the alias that served it (else the one
    asked for). Errors are statuses of 400 and above. A shadow call adds only to ``shadow_requests``
    and ``shadow_cost_nanos``: it is never billed to the caller.
    """
    day = datetime.fromtimestamp(float(event.get("started_at") or 0.0), UTC).date()
    model = _text(event.get("served_model")) or _text(event.get("requested_model"))
    key = (day, _text(event.get("tenant")), _text(event.get("api_key_id")), model)
    nanos = usd_to_nanos(float(event.get("cost_usd") or 0.0))
    if event.get("shadow"):
        return key, {"shadow_requests": 1, "shadow_cost_nanos": nanos}
    tokens = event.get("usage") or {}
    return key, {
        "requests": 1,
        "errors": int(int(event.get("status") or 0) >= 400),  # noqa: PLR2004 - HTTP client/server errors
        "partial": int(bool(event.get("partial"))),
        "estimated": int(bool(tokens.get("estimated"))),
        "prompt_tokens": _int(tokens.get("prompt_tokens")),
        "completion_tokens": _int(tokens.get("completion_tokens")),
        "cached_tokens": _int(tokens.get("cached_tokens")),
        "reasoning_tokens": _int(tokens.get("reasoning_tokens")),
        "cost_nanos": nanos,
    }


def aggregate(
    events: Iterable[dict[str, Any]], into: dict[UsageKey, dict[str, int]] | None = None
) -> dict[UsageKey, dict[str, int]]:
    """Sum the projections of ``events`` per read-model row (into ``into`` when given)."""
    totals = {} if into is None else into
    for event in events:
        key, increments = project(event)
        row = totals.get(key)
        if row is None:
            row = totals[key] = dict.fromkeys(USAGE_METRICS, 0)
        for name, value in increments.items():
            row[name] += value
    return totals


def _insert(connection: AsyncConnection, table: Table) -> sqlite.Insert | postgresql.Insert:
    name = connection.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    msg = f"the event log supports SQLite and Postgres, not {name}"
    raise NotImplementedError(msg)


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": _text(event["request_id"]),
        "shadow": bool(event.get("shadow")),
        "occurred_at": datetime.fromtimestamp(float(event.get("started_at") or 0.0), UTC),
        "tenant": _text(event.get("tenant")) or None,
        "api_key_id": _text(event.get("api_key_id")) or None,
        "model": _text(event.get("served_model")) or _text(event.get("requested_model")) or None,
        "status": int(event.get("status") or 0),
        "record": event,
    }


async def _add_usage(connection: AsyncConnection, totals: dict[UsageKey, dict[str, int]]) -> None:
    if not totals:
        return
    statement = _insert(connection, usage_daily)
    statement = statement.on_conflict_do_update(
        index_elements=list(USAGE_KEYS),
        set_={name: usage_daily.c[name] + statement.excluded[name] for name in USAGE_METRICS},
    )
    rows = [dict(zip(USAGE_KEYS, key, strict=True)) | metrics for key, metrics in totals.items()]
    await connection.execute(statement, rows)


async def append(database: Database, events: Sequence[dict[str, Any]]) -> int:
    """Append events and add them to the read model, in one transaction; returns how many were new.

    An event whose ``(request_id, shadow)`` is already logged is skipped and not counted again.
    """
    rows: dict[tuple[str, bool], dict[str, Any]] = {}
    for event in events:
        row = _event_row(event)
        rows.setdefault((row["request_id"], row["shadow"]), row)
    if not rows:
        return 0
    async with database.engine.begin() as connection:
        statement = (
            _insert(connection, request_events)
            .on_conflict_do_nothing(index_elements=["request_id", "shadow"])
            .returning(request_events.c.request_id, request_events.c.shadow)
        )
        result = await connection.execute(statement, list(rows.values()))
        fresh = [rows[(request_id, shadow)]["record"] for request_id, shadow in result]
        await _add_usage(connection, aggregate(fresh))
    return len(fresh)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did."""

    events: int
    rows: int
    """``usage_daily`` rows written."""
    duration_s: float


async def replay(
    database: Database, *, batch_size: int = 2000, progress: Callable[[int, int], None] | None = None
) -> ReplayResult:
    """Rebuild ``usage_daily`` from ``request_events``: delete it and recompute it, in one transaction.

    Idempotent, and the same rows as the live projection. Readers see the old rows until the commit;
    on Postgres live writers wait for it (the read model is locked), on SQLite the database is.
    ``progress(done, total)`` is called before the first batch of events and after each.
    """
    began = time.perf_counter()
    totals: dict[UsageKey, dict[str, int]] = {}
    done = 0
    async with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("LOCK TABLE usage_daily IN EXCLUSIVE MODE"))
        await connection.execute(delete(usage_daily))
        total = int(await connection.scalar(select(func.count()).select_from(request_events)) or 0)
        if progress is not None:
            progress(0, total)
        last: int | None = None
        while True:
            query = select(request_events.c.seq, request_events.c.record).order_by(request_events.c.seq)
            if last is not None:
                query = query.where(request_events.c.seq > last)
            batch = (await connection.execute(query.limit(batch_size))).all()
            if not batch:
                break
            aggregate((record for _, record in batch), into=totals)
            last, done = batch[-1][0], done + len(batch)
            if progress is not None:
                progress(done, max(total, done))
        await _add_usage(connection, totals)
    return ReplayResult(events=done, rows=len(totals), duration_s=time.perf_counter() - began)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Usage of one group (a day, a model or an API key) over the asked window."""

    key: str | None
    """The day (``YYYY-MM-DD``), the model alias or the API key id; ``None`` for no key / no model."""
    requests: int
    errors: int
    partial: int
    """Streams cut short, billed for what was produced."""
    estimated: int
    """Requests whose usage the gateway counted because the provider reported none."""
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_nanos: int
    shadow_requests: int
    shadow_cost_nanos: int

    @classmethod
    def combined(cls, rows: Iterable[UsageRow], key: str | None = None) -> UsageRow:
        """The sum of ``rows`` as one row (e.g. the total of a report)."""
        names = [f.name for f in fields(cls) if f.name != "key"]
        sums = dict.fromkeys(names, 0)
        for row in rows:
            for name in names:
                sums[name] += getattr(row, name)
        return cls(key, **sums)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)

    @property
    def shadow_cost_usd(self) -> float:
        return nanos_to_usd(self.shadow_cost_nanos)


async def usage(
    database: Database, *, tenant: str | None, start: date, end: date, group_by: GroupBy = "day"
) -> list[UsageRow]:
    """The tenant's usage from ``start`` to ``end`` (UTC days, both included), one row per group.

    ``tenant=None`` is the single default tenant: it sees only requests that had no tenant.
    Rows are sorted by their key.
    """
    column = {"day": usage_daily.c.day, "model": usage_daily.c.model, "api_key": usage_daily.c.api_key_id}[
        group_by
    ]
    query = (
        select(column, *(func.sum(usage_daily.c[name]) for name in USAGE_METRICS))
        .where(usage_daily.c.tenant == (tenant or ""))
        .where(usage_daily.c.day >= start, usage_daily.c.day <= end)
        .group_by(column)
        .order_by(column)
    )
    async with database.engine.connect() as connection:
        result = (await connection.execute(query)).all()
    rows: list[UsageRow] = []
    for key, *sums in result:
        label = key.isoformat() if isinstance(key, date) else (key or None)
        rows.append(UsageRow(label, *(int(value or 0) for value in sums)))
    return rows
