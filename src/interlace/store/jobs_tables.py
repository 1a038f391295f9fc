"""The tables of asynchronous work: jobs, webhook messages and their delivery log, files, batches.

``jobs`` is the durable queue (:mod:`interlace.jobs.store`): one row per accepted job, written before
the ``202`` is sent. A worker claims a row by setting its lease (``lease_owner``, ``lease_expires``);
a row whose lease expired is claimable again. Times are UNIX seconds (``Float``), compared the same
way on SQLite and Postgres. ``tenant`` is ``''`` for the operator (no tenant), never NULL, so the
``(tenant, idempotency_key)`` uniqueness holds for everyone.

``webhook_messages`` is a transactional outbox: a job's terminal transition inserts its message in
the same transaction (transitions are guarded by the lease, so once); the message id is the
``webhook-id`` of every delivery attempt (logged in ``webhook_attempts``). ``webhook_secrets``
holds each tenant's signing secret. ``files`` and ``batches`` back the OpenAI Files and Batch APIs;
a batch's lines are jobs.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from interlace.store.tables import metadata

__all__ = ["batches", "files", "jobs", "webhook_attempts", "webhook_messages", "webhook_secrets"]

_SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("principal", JSON, nullable=False),
    Column("operation", String(32), nullable=False),
    Column("model", String(128), nullable=False),
    Column("request", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires", Float, nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("callback_url", String(2048), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("batch_id", String(40), nullable=True),
    Column("batch_index", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_idempotency"),
    Index("ix_jobs_claim", "status", "run_after"),
    Index("ix_jobs_tenant_created", "tenant", "created_at"),
    Index("ix_jobs_batch", "batch_id", "status"),
)

webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("secret", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)

webhook_messages = Table(
    "webhook_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("job_id", String(40), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("event", String(32), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float, nullable=True),
    Index("ix_webhook_messages_job", "job_id"),
    Index("ix_webhook_messages_due", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
    Column("message_id", String(40), nullable=False),
    Column("attempted_at", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(1024), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("manual", Boolean, nullable=False),
    Index("ix_webhook_attempts_message", "message_id"),
)

files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("filename", String(512), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_files_tenant_created", "tenant", "created_at"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("input_file_id", String(40), nullable=False),
    Column("completion_window", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("output_file_id", String(40), nullable=True),
    Column("error_file_id", String(40), nullable=True),
    Column("total", Integer, nullable=False),
    Column("completed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("metadata", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("in_progress_at", Float, nullable=True),
    Column("finalizing_at", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    Column("cancelling_at", Float, nullable=True),
    Column("cancelled_at", Float, nullable=True),
    Column("expires_at", Float, nullable=False),
    Index("ix_batches_tenant_created", "tenant", "created_at"),
)
