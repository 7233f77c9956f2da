"""The snapshot of the last rollup refresh, so the next one skips what it already counted.

``rollup_state.refreshed_snapshot`` (``pg_current_snapshot()`` as text, taken before the
refresh read any event): of the events in the overlap below the watermark, the next refresh
re-counts only those of transactions this snapshot could not see. Without it a burst of
arrivals was re-counted by every round for the whole 15-minute overlap (``ingest.rollups``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollup_state", sa.Column("refreshed_snapshot", sa.Text))


def downgrade() -> None:
    op.drop_column("rollup_state", "refreshed_snapshot")
