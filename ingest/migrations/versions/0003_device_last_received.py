"""devices.last_received_at: when the device's newest message arrived (wall clock).

``last_event_at`` is the device's own event time; silence ("no data for 2x heartbeat") is
about arrival, which differs from event time for buffered, skewed or replayed devices.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("last_received_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("devices", "last_received_at")
