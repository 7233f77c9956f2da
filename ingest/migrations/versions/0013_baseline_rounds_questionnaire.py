"""The measured baseline and the qualitative effects of the benefit evaluation (issue 15).

- ``baseline_periods``: per site, the dates (inclusive) of the baseline period before the
  sensors went live, set by an admin; the report compares rounds in it with rounds after.
- ``rounds``: one row per round staff logged on the board ("Runde gået"): a flat, a floor
  (the flats on one corridor) or the whole site, and how many flats it covered then (the
  flats change; a round counts what was walked). Who logged it is in the audit log only.
  Erasing a room's history (a resident moved out) unlinks its rounds from the room.
- ``shift_answers``: the anonymous end-of-shift questionnaire. No user, board or time of
  day is stored: only the site, the night and the answers, so an answer cannot be joined
  back to a login or an audit row.
- ``resident_outcomes``: the coordinator's note per flat (room id only, never a name):
  self-reliance and quality of life on a 1-5 scale, on a date.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
SCALE = "BETWEEN 1 AND 5"


def upgrade() -> None:
    op.create_table(
        "baseline_periods",
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("first_night", sa.Date, nullable=False),
        sa.Column("last_night", sa.Date, nullable=False),
        sa.Column("set_by", sa.Text, nullable=False),
        sa.Column("set_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("first_night <= last_night", name="baseline_order"),
    )
    op.create_table(
        "rounds",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("room", sa.Text),
        sa.Column("flats", sa.Integer, nullable=False),
        sa.Column("walked_at", TZ, nullable=False),
        sa.CheckConstraint("scope in ('flat','floor','site')", name="round_scope"),
        # A round of the whole site names no room. A flat's or floor's round loses its
        # room when that room's history is erased (ingest.erasure) and keeps its count.
        sa.CheckConstraint("scope <> 'site' OR room IS NULL", name="round_room"),
        sa.CheckConstraint("flats >= 0", name="round_flats"),
    )
    op.create_index("rounds_site_walked", "rounds", ["site", "walked_at"])
    op.create_table(
        "shift_answers",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("night", sa.Date, nullable=False),
        sa.Column("calm", sa.SmallInteger),
        sa.Column("workload", sa.SmallInteger),
        sa.Column("trust", sa.SmallInteger),
        sa.Column("residents_rest", sa.SmallInteger),
        sa.Column("comment", sa.Text),
        *[sa.CheckConstraint(f"{q} {SCALE}", name=f"answer_{q}")
          for q in ("calm", "workload", "trust", "residents_rest")],
    )
    op.create_index("shift_answers_site_night", "shift_answers", ["site", "night"])
    op.create_table(
        "resident_outcomes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("noted_on", sa.Date, nullable=False),
        sa.Column("self_reliance", sa.SmallInteger, nullable=False),
        sa.Column("quality_of_life", sa.SmallInteger, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(["site", "room"], ["rooms.site", "rooms.id"],
                                ondelete="CASCADE"),
        sa.CheckConstraint(f"self_reliance {SCALE}", name="outcome_self_reliance"),
        sa.CheckConstraint(f"quality_of_life {SCALE}", name="outcome_quality_of_life"),
    )


def downgrade() -> None:
    op.drop_table("resident_outcomes")
    op.drop_table("shift_answers")
    op.drop_table("rounds")
    op.drop_table("baseline_periods")
