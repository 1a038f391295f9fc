"""The audit log's tables: ``audit_log`` (append-only, hash-chained) and its one-row ``audit_head``.

``audit_log`` holds one row per audited request, keyed by its sequence number in the chain: the entry
as hashed (JSON, :mod:`interlace.security.audit.entry`), the previous entry's hash and its own
(:mod:`interlace.security.audit.chain`), and the columns it is looked up by (tenant, time, request id).
``entry_id`` is unique, so an entry replayed from a spool is never appended twice.

``audit_head`` has exactly one row (``id = 1``): the sequence number and hash of the newest entry.
Appending locks it (``SELECT … FOR UPDATE`` on Postgres; SQLite has one writer at a time) in the same
transaction as the inserts, which keeps the chain linear across gateway instances; it also lets
``interlace audit verify`` notice a truncated tail (unless the row is rewritten too).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, String, Table, UniqueConstraint

from interlace.store.audit_columns import HEAD_ID
from interlace.store.tables import metadata

__all__ = ["HEAD_ID", "audit_head", "audit_log"]

#: One row per audited request, never updated nor deleted.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_id", String(32), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("tenant", String(128), nullable=True),
    Column("request_id", String(128), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("entry", JSON, nullable=False),
    UniqueConstraint("entry_id", name="uq_audit_log_entry_id"),
    Index("ix_audit_log_tenant_seq", "tenant", "seq"),
    Index("ix_audit_log_occurred_at", "occurred_at"),
)

#: The newest entry of the chain: locked by every append.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
