"""escalation_steps.status 'cancelled': a step whose call was taken while its channel was
still retrying stops there (issue 16 §3: an acknowledged call is never sent on).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("step_status", "escalation_steps", type_="check")
    op.create_check_constraint(
        "step_status", "escalation_steps",
        "status in ('sending','sent','failed','nobody','unreachable','cancelled')")


def downgrade() -> None:
    op.execute("UPDATE escalation_steps SET status = 'failed' WHERE status = 'cancelled'")
    op.drop_constraint("step_status", "escalation_steps", type_="check")
    op.create_check_constraint(
        "step_status", "escalation_steps",
        "status in ('sending','sent','failed','nobody','unreachable')")
