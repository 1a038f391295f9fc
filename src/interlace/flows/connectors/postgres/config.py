"""The YAML sections of the Postgres sources (change data capture, outbox) and the table sink.

.. code-block:: yaml

    source:
      type: postgres-cdc
      dsn: postgresql://postgres@127.0.0.1:5432/app
      slot: tickets_flow              # a logical replication slot (pgoutput); one reader at a time
      publication: tickets_flow
      tables: [public.tickets]        # published when create_publication is true
      create_publication: true

    source:
      type: postgres-outbox
      dsn: postgresql://postgres@127.0.0.1:5432/app
      table: public.outbox            # id bigserial, payload jsonb (, key text, headers jsonb)
      notify_channel: outbox          # LISTEN wakes the reader; the table is the truth
      on_ack: delete                  # or: mark (sets processed_at)

    sink:
      type: postgres
      dsn: postgresql://postgres@127.0.0.1:5432/app
      table: public.ticket_triage
      key: [ticket_id]                # ON CONFLICT (ticket_id) DO UPDATE
      replay_guard: id                # or: position (monotonic sources written in order)
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from interlace.config._flow_parts import ConnectorConfig

__all__ = [
    "PostgresCdcConfig",
    "PostgresOutboxConfig",
    "PostgresSinkConfig",
    "check_identifier",
    "qualified",
    "quote_ident",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
Operation = Literal["insert", "update", "delete", "truncate"]


def _row_changes() -> list[Operation]:
    return ["insert", "update", "delete"]


DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str) -> str:
    """``schema.table`` (or ``table``) as quoted SQL identifiers."""
    return ".".join(quote_ident(part) for part in name.split(".", 1))


def check_identifier(value: str) -> str:
    """``value`` if it is a plain SQL name (``schema.name`` allowed), else ``ValueError``."""
    if not all(_IDENT.match(part) for part in value.split(".", 1)):
        msg = f"{value!r} is not a plain SQL name (letters, digits, _ and $; schema.name allowed)"
        raise ValueError(msg)
    return value


class PostgresCdcConfig(ConnectorConfig):
    type: Literal["postgres-cdc"] = "postgres-cdc"
    dsn: str = DEFAULT_DSN
    """The database (a libpq connection string or URL); the role needs the REPLICATION attribute."""
    slot: str
    """The logical replication slot (``pgoutput``), created when missing. Its position advances only
    past transactions whose every change was acknowledged. Drop it when the flow is retired: a slot
    left behind keeps WAL forever."""
    publication: str
    """The publication whose tables are captured."""
    tables: list[str] = Field(default_factory=list)
    """``schema.table`` names published when ``create_publication`` creates the publication."""
    create_publication: bool = False
    operations: list[Operation] = Field(default_factory=_row_changes)
    """The changes delivered (the publication's own ``publish`` setting applies first)."""
    poll_interval: float = Field(default=0.2, gt=0, le=60)
    """Seconds between reads of the slot when nothing new arrived."""
    max_changes: int = Field(default=1000, ge=1)
    """Changes decoded per read (whole transactions are always read)."""

    @field_validator("slot", "publication")
    @classmethod
    def _names(cls, value: str) -> str:
        return check_identifier(value)

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: list[str]) -> list[str]:
        return [check_identifier(t) for t in value]


class PostgresOutboxConfig(ConnectorConfig):
    type: Literal["postgres-outbox"] = "postgres-outbox"
    dsn: str = DEFAULT_DSN
    table: str
    """The outbox table: ``id`` (increasing), ``payload`` (jsonb) and the optional columns below."""
    create_table: bool = False
    """Create the table (``id bigserial``, ``payload jsonb``, ``key text``, ``headers jsonb``,
    ``created_at``, ``processed_at``) when it does not exist."""
    id_column: str = "id"
    payload_column: str = "payload"
    key_column: str | None = "key"
    headers_column: str | None = "headers"
    on_ack: Literal["delete", "mark"] = "delete"
    """``delete`` the row, or ``mark`` it (sets ``processed_column``; marked rows are not read again)."""
    processed_column: str = "processed_at"
    notify_channel: str | None = None
    """LISTEN on this channel to wake the reader at once (a trigger or the writer sends NOTIFY)."""
    poll_interval: float = Field(default=1.0, gt=0, le=300)
    """Seconds between reads of the table when nothing woke the reader."""
    batch_size: int = Field(default=100, ge=1, le=10_000)
    """Rows claimed per read (at most the free in-flight slots)."""

    @field_validator("table", "id_column", "payload_column", "processed_column")
    @classmethod
    def _names(cls, value: str) -> str:
        return check_identifier(value)

    @field_validator("key_column", "headers_column", "notify_channel")
    @classmethod
    def _optional(cls, value: str | None) -> str | None:
        return None if value is None else check_identifier(value)


class PostgresSinkConfig(ConnectorConfig):
    type: Literal["postgres"] = "postgres"
    dsn: str = DEFAULT_DSN
    table: str
    """The target table (it must exist, with a unique constraint on ``key``)."""
    key: list[str] = Field(min_length=1)
    """The conflict target columns: a message whose key exists updates that row."""
    columns: list[str] | None = None
    """The payload fields written (each a column); all the payload's fields when unset."""
    replay_guard: Literal["id", "position", "none"] = "id"
    """``id``: record each ``Message.id`` in ``flow_applied`` in the output's transaction and skip ids
    already there (right for every source). ``position``: keep the highest ``Message.position`` per
    flow and source in ``flow_positions`` and skip messages at or below it (only for sources whose
    positions grow — CDC, JetStream, Redis Streams — and a flow that writes in order)."""
    applied_retention: float = Field(default=7 * 86400.0, gt=0)
    """Seconds an applied id stays in ``flow_applied`` (``replay_guard: id``); it must outlast any
    redelivery (a source's ack wait, a stopped flow's restart). Older ids are pruned as the sink writes."""
    state_schema: str = "public"
    """Where ``flow_positions`` / ``flow_applied`` live (created when missing)."""

    @field_validator("table", "state_schema")
    @classmethod
    def _names(cls, value: str) -> str:
        return check_identifier(value)

    @field_validator("key", "columns")
    @classmethod
    def _columns(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_identifier(c) for c in value]
