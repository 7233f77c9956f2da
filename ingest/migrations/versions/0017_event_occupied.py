"""events.occupied: a bed sensor's state as its heartbeat reports it (issue 13 §4).

A lost ``bed.exit`` left the rules believing a resident in bed while they lay on the
floor; a lost ``bed.enter`` called staff to a resident asleep. A bed heartbeat that says
``"occupied": true|false`` (protocol v1's optional field) is the evidence that outlives
both. NULL: not reported (most heartbeats, every other kind).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("occupied", sa.Boolean))


def downgrade() -> None:
    op.drop_column("events", "occupied")
