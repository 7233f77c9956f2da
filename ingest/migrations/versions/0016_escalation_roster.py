"""Escalation to people (issue 16 §3): who is on duty a night, how to reach them, and every
step an unacknowledged call took on its way to a person.

- ``user_contacts``: an account's e-mail address (the SMTP channel); accounts only, never
  residents.
- ``rosters``: per site and night (the local date the night starts on) the account on duty,
  the second person and the on-call coordinator.
- ``escalation_policies``: per site and severity, minutes unacknowledged before the call
  goes to the second person and to the coordinator (the settings' defaults otherwise).
- ``escalation_steps``: one row per alert, step and channel, claimed before it is sent (so
  two API processes never send it twice) and finished as sent or failed, with the tries.
- ``alerts.passed_on``: the steps as the board shows them on the card (JSON list).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _account(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text, sa.ForeignKey("users.username", ondelete="SET NULL"))


def upgrade() -> None:
    op.create_table(
        "user_contacts",
        sa.Column("username", sa.Text, sa.ForeignKey("users.username", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("email", sa.Text),
        sa.CheckConstraint("email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$'",
                           name="contact_email"),
    )
    op.create_table(
        "rosters",
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("night", sa.Date, nullable=False),
        _account("duty"), _account("second"), _account("coordinator"),
        sa.Column("set_by", sa.Text, nullable=False),
        sa.Column("set_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("site", "night"),
    )
    op.create_table(
        "escalation_policies",
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("second_after_minutes", sa.Float, nullable=False),
        sa.Column("coordinator_after_minutes", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("site", "severity"),
        sa.CheckConstraint("severity in ('normal','high')", name="policy_severity"),
        sa.CheckConstraint("0 < second_after_minutes AND second_after_minutes < "
                           "coordinator_after_minutes AND coordinator_after_minutes <= 720",
                           name="policy_order"),
    )
    op.create_table(
        "escalation_steps",
        sa.Column("alert_id", sa.BigInteger, sa.ForeignKey("alerts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="sending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("claimed_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TZ),
        sa.PrimaryKeyConstraint("alert_id", "step", "channel"),
        sa.CheckConstraint("step in ('second','coordinator')", name="step_kind"),
        sa.CheckConstraint("status in ('sending','sent','failed','nobody','unreachable')",
                           name="step_status"),
    )
    op.add_column("alerts", sa.Column("passed_on", JSONB, nullable=False,
                                      server_default=sa.text("'[]'::jsonb")))


def downgrade() -> None:
    op.drop_column("alerts", "passed_on")
    for table in ("escalation_steps", "escalation_policies", "rosters", "user_contacts"):
        op.drop_table(table)
