"""The event log in the state database: append events, project them into ``usage_daily``, replay, read.

An *event* is a :class:`~interlace.observability.record.RequestRecord` as JSON (a ``dict``). The same
function, :func:`project`, turns events into read-model increments whether they arrive live
(:func:`append`, which writes the events and their increments in one transaction) or from the log
(:func:`replay`, which recomputes ``usage_daily`` from ``request_events``), so both give the same rows.

:func:`append` takes :class:`EventRow` s: each event's columns, its JSON text and its increments,
computed once (by :func:`event_row` from a dict, or by the event log straight from a record). It
writes them with plain SQL per dialect through the driver (:mod:`interlace.store.event_sql`,
:mod:`interlace.store.direct`), so a batch costs one statement for the events and one for the read
model.

Upserts use the dialect's ``INSERT … ON CONFLICT``: SQLite and Postgres are supported. Appending
needs no SQLAlchemy (the serving path never imports it); :func:`replay` and :func:`usage` build their
queries with it and import it when they run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from interlace.observability.cost import nanos_to_usd, usd_to_nanos
from interlace.observability.record import Usage
from interlace.store.direct import transaction
from interlace.store.event_columns import EVENT_ID_LENGTH, USAGE_METRICS
from interlace.store.event_sql import add_usage, insert_events, usage_params, usage_upsert

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from interlace.observability.record import RequestRecord
    from interlace.store.database import Database

__all__ = [
    "GROUP_BY",
    "EventRow",
    "GroupBy",
    "ReplayResult",
    "UsageKey",
    "UsageRow",
    "aggregate",
    "append",
    "event_row",
    "legacy_event_id",
    "project",
    "record_row",
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


def _event_id(value: Any) -> str:
    return value[:EVENT_ID_LENGTH] if isinstance(value, str) else ""


def legacy_event_id(request_id: str, *, shadow: bool) -> str:
    """The id of an event logged before events had their own (a spool written then, and the rows the
    migration to ``event_id`` gave one): its request id, and ``:shadow`` for a mirrored call's."""
    return f"{request_id}:shadow" if shadow else request_id


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _moment(event: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(event.get("started_at") or 0.0), UTC)


def project(event: dict[str, Any]) -> tuple[UsageKey, dict[str, int]]:
    """The read-model row an event counts in and what it adds to it.

    The day is the UTC date the request arrived; the model is the alias that served it (else the one
    asked for). Errors are statuses of 400 and above. A shadow call adds only to ``shadow_requests``
    and ``shadow_cost_nanos``: it is never billed to the caller.
    """
    return _project(event, _moment(event).date())


def _project(event: dict[str, Any], day: date) -> tuple[UsageKey, dict[str, int]]:
    model = _text(event.get("served_model")) or _text(event.get("requested_model"))
    key = (day, _text(event.get("tenant")), _text(event.get("api_key_id")), model)
    cost = float(event.get("cost_usd") or 0.0)
    nanos = usd_to_nanos(cost) if cost else 0
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
        _add(totals, *project(event))
    return totals


def _add(totals: dict[UsageKey, dict[str, int]], key: UsageKey, increments: dict[str, int]) -> None:
    row = totals.get(key)
    if row is None:
        row = totals[key] = dict.fromkeys(USAGE_METRICS, 0)
    for name, value in increments.items():
        row[name] += value


@dataclass(slots=True)
class EventRow:
    """An event ready to append: its columns, its JSON text and what it adds to the read model."""

    event_id: str
    """Unique per event: what makes appending it twice (a spool replayed again) harmless."""
    request_id: str
    shadow: bool
    occurred_at: datetime
    """When the request arrived (UTC)."""
    tenant: str | None
    api_key_id: str | None
    model: str | None
    status: int
    record: str
    """The event as JSON text, stored as it is."""
    usage_key: UsageKey
    increments: dict[str, int]
    """What the event adds to the ``usage_key`` row of the read model (:func:`project`)."""


def event_row(event: dict[str, Any], record: str | None = None) -> EventRow:
    """The row of an event; ``record`` is its JSON text when the caller has it already."""
    moment = _moment(event)
    key, increments = _project(event, moment.date())
    _, tenant, api_key_id, model = key
    request_id, shadow = _text(event["request_id"]), bool(event.get("shadow"))
    return EventRow(
        event_id=_event_id(event.get("event_id")) or legacy_event_id(request_id, shadow=shadow),
        request_id=request_id,
        shadow=shadow,
        occurred_at=moment,
        tenant=tenant or None,
        api_key_id=api_key_id or None,
        model=model or None,
        status=int(event.get("status") or 0),
        record=orjson.dumps(event).decode() if record is None else record,
        usage_key=key,
        increments=increments,
    )


_PLAIN: Final = frozenset({str, int, bool, float, type(None)})
"""Types JSON gives back as they were (floats when finite)."""


def _finite(value: Any) -> bool:
    return type(value) is not float or math.isfinite(value)


def _count(value: int | bool) -> int:
    """:func:`_int` of a plain value."""
    return value if type(value) is int and value > 0 else 0


def record_row(record: RequestRecord, text: str) -> EventRow | None:
    """:func:`event_row` of ``record``'s event (``text``), read from the record without parsing ``text``.

    Returns ``None`` when a field it reads is not a plain JSON value — a NaN, an object JSON writes as
    its ``repr`` … — which JSON would change: then ``event_row(orjson.loads(text), text)`` is the row.
    """
    usage = record.usage
    started, cost = record.started_at, record.cost_usd
    texts = (record.request_id, record.tenant, record.api_key_id, record.served_model, record.requested_model)
    if type(usage) is not Usage or type(record.event_id) is not str or not record.event_id:
        return None
    values = (
        *texts,
        started,
        cost,
        record.shadow,
        record.partial,
        record.status,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
        usage.estimated,
    )
    if not {type(value) for value in values} <= _PLAIN or not (_finite(started) and _finite(cost)):
        return None
    request_id, tenant, api_key_id, served, requested = [
        v[:_KEY_LENGTH] if type(v) is str else "" for v in texts
    ]
    moment = datetime.fromtimestamp(float(started or 0.0), UTC)
    model = served or requested
    key = (moment.date(), tenant, api_key_id, model)
    nanos = usd_to_nanos(float(cost)) if cost else 0
    status = int(record.status or 0)
    if record.shadow:
        increments = {"shadow_requests": 1, "shadow_cost_nanos": nanos}
    else:
        increments = {
            "requests": 1,
            "errors": int(status >= 400),  # noqa: PLR2004 - as in project()
            "partial": int(bool(record.partial)),
            "estimated": int(bool(usage.estimated)),
            "prompt_tokens": _count(usage.prompt_tokens),
            "completion_tokens": _count(usage.completion_tokens),
            "cached_tokens": _count(usage.cached_tokens),
            "reasoning_tokens": _count(usage.reasoning_tokens),
            "cost_nanos": nanos,
        }
    return EventRow(
        event_id=_event_id(record.event_id),
        request_id=request_id,
        shadow=bool(record.shadow),
        occurred_at=moment,
        tenant=tenant or None,
        api_key_id=api_key_id or None,
        model=model or None,
        status=status,
        record=text,
        usage_key=key,
        increments=increments,
    )


async def append(database: Database, events: Sequence[EventRow]) -> int:
    """Append events and add them to the read model, in one transaction; returns how many were new.

    An event whose ``event_id`` is already logged (or repeated in the batch) is skipped and not counted
    again.
    """
    rows: dict[str, EventRow] = {}
    for event in events:
        rows.setdefault(event.event_id, event)
    if not rows:
        return 0
    async with transaction(database) as sql:
        fresh = await insert_events(sql, list(rows.values()))
        totals: dict[UsageKey, dict[str, int]] = {}
        for row in fresh:
            _add(totals, row.usage_key, row.increments)
        await add_usage(sql, totals)
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
    from sqlalchemy import delete, func, select, text  # noqa: PLC0415 - SQLAlchemy only for the reads

    from interlace.store.events_tables import request_events, usage_daily  # noqa: PLC0415

    began = time.perf_counter()
    totals: dict[UsageKey, dict[str, int]] = {}
    done = 0
    async with database.begin() as connection:
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
        if totals:
            sqlite = connection.dialect.name == "sqlite"
            await connection.exec_driver_sql(usage_upsert(sqlite=sqlite), usage_params(totals, sqlite=sqlite))
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
    from sqlalchemy import func, select  # noqa: PLC0415 - SQLAlchemy only for the reads

    from interlace.store.events_tables import usage_daily  # noqa: PLC0415

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
