"""flows: the webhook inbox, the flow event log, per-process flow state

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "flow_inbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(96), nullable=True),
        sa.Column("lease_expires", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("flow", "event_id", name="uq_flow_inbox_event"),
    )
    op.create_index("ix_flow_inbox_claim", "flow_inbox", ["flow", "lease_expires", "id"])
    op.create_table(
        "flow_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("position", sa.String(255), nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("stream", "message_id", name="uq_flow_events_message"),
    )
    op.create_table(
        "flow_state",
        sa.Column("flow", sa.String(64), primary_key=True),
        sa.Column("process", sa.String(96), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stats", sa.JSON, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("flow_state")
    op.drop_table("flow_events")
    op.drop_index("ix_flow_inbox_claim", table_name="flow_inbox")
    op.drop_table("flow_inbox")
