"""virtual API keys (hashes only) and their scopes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("team", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=True),
        sa.Column("previous_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("models", sa.JSON, nullable=True),
        sa.Column("endpoints", sa.JSON, nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.BigInteger, nullable=True),
        sa.Column("budget_usd", sa.Float, nullable=True),
        sa.Column("soft_budget_usd", sa.Float, nullable=True),
        sa.Column("budget_period", sa.String(8), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_updated_at", "api_keys", ["updated_at"])
    op.create_index("ix_api_keys_tenant_team", "api_keys", ["tenant", "team"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_tenant_team", table_name="api_keys")
    op.drop_index("ix_api_keys_updated_at", table_name="api_keys")
    op.drop_table("api_keys")
