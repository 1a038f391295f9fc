"""events: each event its own id, so a client's repeated x-request-id is two events, not one

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

``request_events`` was unique on ``(request_id, shadow)``: a client that sent the same
``x-request-id`` twice had its second request left out of the log and of the usage read model.
Events now carry their own ``event_id`` (unique); the rows already logged get the id a spool of
theirs would be replayed with (``request_id``, plus ``:shadow`` for a mirrored call), so replaying an
old spool after the upgrade still appends nothing twice. On SQLite the table is rebuilt (batch mode).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_events") as batch:
        batch.add_column(sa.Column("event_id", sa.String(160), nullable=True))
    op.execute(
        "UPDATE request_events SET event_id = "
        "CASE WHEN shadow THEN request_id || ':' || 'shadow' ELSE request_id END"  # ':shadow' would bind
    )
    with op.batch_alter_table("request_events") as batch:
        batch.alter_column("event_id", existing_type=sa.String(160), nullable=False)
        batch.drop_constraint("uq_request_events_request", type_="unique")
        batch.create_unique_constraint("uq_request_events_event", ["event_id"])
    op.create_index("ix_request_events_request_id", "request_events", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_events_request_id", table_name="request_events")
    with op.batch_alter_table("request_events") as batch:
        batch.drop_constraint("uq_request_events_event", type_="unique")
        batch.create_unique_constraint("uq_request_events_request", ["request_id", "shadow"])
        batch.drop_column("event_id")
