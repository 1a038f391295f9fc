"""request events and the usage read model

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_METRICS = (
    "requests",
    "errors",
    "partial",
    "estimated",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "shadow_requests",
    "shadow_cost_nanos",
)


def upgrade() -> None:
    op.create_table(
        "request_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("api_key_id", sa.String(128), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.UniqueConstraint("request_id", "shadow", name="uq_request_events_request"),
    )
    op.create_index("ix_request_events_occurred_at", "request_events", ["occurred_at"])
    op.create_index("ix_request_events_tenant_time", "request_events", ["tenant", "occurred_at"])
    op.create_index("ix_request_events_api_key_id", "request_events", ["api_key_id"])
    op.create_index("ix_request_events_model", "request_events", ["model"])
    op.create_index("ix_request_events_status", "request_events", ["status"])
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("api_key_id", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in _METRICS),
    )
    op.create_index("ix_usage_daily_tenant_day", "usage_daily", ["tenant", "day"])


def downgrade() -> None:
    op.drop_index("ix_usage_daily_tenant_day", table_name="usage_daily")
    op.drop_table("usage_daily")
    for name in ("status", "model", "api_key_id", "tenant_time", "occurred_at"):
        op.drop_index(f"ix_request_events_{name}", table_name="request_events")
    op.drop_table("request_events")
