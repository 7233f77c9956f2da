"""A flat's corridor: ``rooms.corridor``, the common room its door opens onto.

Someone coming home walks through that corridor just before the flat's door opens; when
it saw nobody, a door-only flat's opening is a departure, never a homecoming (the rules
read it so: ``rules.rooms``). NULL where it is not known (no evidence either way).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rooms", sa.Column("corridor", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("rooms", "corridor")
