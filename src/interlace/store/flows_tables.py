"""The tables of flows: the webhook inbox, the flow event log (and dead letters), each process's state.

``flow_inbox`` is the durable queue behind the webhook source: the gateway inserts an event and answers
``202`` only after the commit; a flow process leases rows (``lease_owner``, ``lease_expires``), deletes
a row on ack and clears its lease on nack. ``(flow, event_id)`` is unique: a producer retrying with
the same ``Idempotency-Key`` (or ``id``) is not queued twice. ``id`` orders events by arrival.

``flow_events`` is the event-log sink (and the default dead-letter destination): one row per message,
unique by ``(stream, message_id)`` so a redelivered message is not appended twice.

``flow_state`` holds what each running ``interlace flow run`` process last reported per flow
(its :class:`~interlace.flows.metrics.FlowStats`), for ``interlace flow status``.
Times are UNIX seconds (``Float``).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, String, Table, UniqueConstraint

from interlace.store.tables import metadata

__all__ = ["flow_events", "flow_inbox", "flow_state"]

_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

flow_inbox = Table(
    "flow_inbox",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("flow", String(64), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("key", String(255), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("principal", String(255), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_owner", String(96), nullable=True),
    Column("lease_expires", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("flow", "event_id", name="uq_flow_inbox_event"),
)
Index("ix_flow_inbox_claim", flow_inbox.c.flow, flow_inbox.c.lease_expires, flow_inbox.c.id)

flow_events = Table(
    "flow_events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("stream", String(128), nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("flow", String(64), nullable=False),
    Column("key", String(255), nullable=True),
    Column("source", String(255), nullable=False),
    Column("position", String(255), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("stream", "message_id", name="uq_flow_events_message"),
)

flow_state = Table(
    "flow_state",
    metadata,
    Column("flow", String(64), primary_key=True),
    Column("process", String(96), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("stats", JSON, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
