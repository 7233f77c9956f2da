"""GDPR: free-text resolve notes are off per site unless an admin turns them on.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Off by default: a free-text note is where a resident's name slips in. Outcome codes
    # (help_given, no_action_needed, false_alarm) carry what the evaluation needs.
    op.add_column("sites", sa.Column("resolve_notes", sa.Boolean, nullable=False,
                                     server_default="false"))


def downgrade() -> None:
    op.drop_column("sites", "resolve_notes")
