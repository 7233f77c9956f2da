"""Calls vs quiet situations: ``alerts.called_at``.

``called_at`` is the event-time instant an alert became a *call to go*: raised at a calling
level, or escalated (its allowed time passed, or it was left unacknowledged). NULL for a
situation that stayed quiet (shown quietly on the board, never sounded or re-announced).
Existing alerts were all announced as calls: they get ``first_ts``.

``rule_settings.minutes`` may be 0 for ``building_exit``: "building exits always call" (a
hard safety limit, e.g. at a dementia or autism site); other rules keep 1-720.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("called_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE alerts SET called_at = first_ts")
    op.drop_constraint("rule_minutes", "rule_settings", type_="check")
    op.create_check_constraint(
        "rule_minutes", "rule_settings",
        "minutes is null or minutes between 1 and 720 "
        "or (rule = 'building_exit' and minutes = 0)")


def downgrade() -> None:
    op.execute("UPDATE rule_settings SET minutes = NULL WHERE minutes = 0")
    op.drop_constraint("rule_minutes", "rule_settings", type_="check")
    op.create_check_constraint("rule_minutes", "rule_settings",
                               "minutes is null or minutes between 1 and 720")
    op.drop_column("alerts", "called_at")
