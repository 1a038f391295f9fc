"""shadow records

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _side(side: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"{side}_deployment", sa.String(255), nullable=True),
        sa.Column(f"{side}_text", sa.Text, nullable=False),
        sa.Column(f"{side}_finish", sa.String(32), nullable=True),
        sa.Column(f"{side}_latency_ms", sa.Float, nullable=False),
        sa.Column(f"{side}_prompt_tokens", sa.Integer, nullable=True),
        sa.Column(f"{side}_completion_tokens", sa.Integer, nullable=True),
        sa.Column(f"{side}_error", sa.String(64), nullable=True),
        sa.Column(f"{side}_cost_usd", sa.Float, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "shadow_records",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("candidate", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("exact_match", sa.Boolean, nullable=True),
        sa.Column("similarity", sa.Float, nullable=True),
        *_side("primary"),
        *_side("shadow"),
    )
    op.create_index("ix_shadow_records_pair_time", "shadow_records", ["alias", "candidate", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_shadow_records_pair_time", table_name="shadow_records")
    op.drop_table("shadow_records")
