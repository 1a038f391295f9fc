"""The event log's tables: ``request_events`` (append-only) and its read model ``usage_daily``.

``request_events`` holds one immutable row per finished request: a sequence id (append order), the
whole :class:`~interlace.observability.record.RequestRecord` as JSON (less any captured prompt and
completion text), and the columns usage is looked up by. A record is logged once: its ``event_id``
(:attr:`~interlace.observability.record.RequestRecord.event_id`) is unique, so replaying a spool twice
appends nothing twice, while two requests that a client sent with the same ``x-request-id`` (and a
mirrored shadow call, which shares its primary's) are two events.

``usage_daily`` is a projection of the log, rebuilt at will by replaying it: per UTC day, tenant, API
key and served model alias, the counts and sums of :func:`interlace.store.event_store.project`.
Key columns are never NULL (Postgres forbids it in a primary key): no tenant or no API key is ``''``.
Costs are whole nano-dollars (1e-9 USD), so sums are exact.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from interlace.store.event_columns import EVENT_ID_LENGTH, USAGE_KEYS, USAGE_METRICS
from interlace.store.tables import metadata

__all__ = ["EVENT_ID_LENGTH", "USAGE_KEYS", "USAGE_METRICS", "request_events", "usage_daily"]

#: SQLite autoincrements only an ``INTEGER PRIMARY KEY`` (which is 64-bit there).
_SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")

#: One row per finished request, never updated nor deleted.
request_events = Table(
    "request_events",
    metadata,
    Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
    Column("event_id", String(EVENT_ID_LENGTH), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("shadow", Boolean, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("tenant", String(128), nullable=True),
    Column("api_key_id", String(128), nullable=True),
    Column("model", String(128), nullable=True),
    Column("status", Integer, nullable=False),
    Column("record", JSON, nullable=False),
    UniqueConstraint("event_id", name="uq_request_events_event"),
    Index("ix_request_events_request_id", "request_id"),
    Index("ix_request_events_occurred_at", "occurred_at"),
    Index("ix_request_events_tenant_time", "tenant", "occurred_at"),
    Index("ix_request_events_api_key_id", "api_key_id"),
    Index("ix_request_events_model", "model"),
    Index("ix_request_events_status", "status"),
)

#: Usage and cost per UTC day, tenant, API key and served model: a projection of ``request_events``.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("tenant", String(128), primary_key=True),
    Column("api_key_id", String(128), primary_key=True),
    Column("model", String(128), primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in USAGE_METRICS),
    Index("ix_usage_daily_tenant_day", "tenant", "day"),
)
