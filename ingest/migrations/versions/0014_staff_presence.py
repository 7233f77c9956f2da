"""Staff on the floor (issue 13 §3): when night staff said they are going round.

``staff_presence``: one row per "going round" a member of staff started on the board, for
the site's common rooms (``room`` NULL) or one flat (``room``), from ``starts_at`` to
``ends_at``. The rules read them (``rules.staff``): motion in the common rooms during a
round is staff, not someone nobody knows; a flat's door opening while staff go into it is
not its resident leaving. Who pressed it is in the audit log only.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_presence",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("room", sa.Text),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name="staff_presence_order"),
    )
    # The rules read every site's recent rounds once a second (``ends_at > since``), and
    # the rows are never deleted: the index leads with the end.
    op.create_index("staff_presence_ends", "staff_presence", ["ends_at"])


def downgrade() -> None:
    op.drop_table("staff_presence")
