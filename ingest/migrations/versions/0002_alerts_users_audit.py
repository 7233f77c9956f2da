"""Alerts with their change stream, rule settings, users, audit log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("device", sa.Text),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("episode_key", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("escalated", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("escalated_at", TZ),
        sa.Column("reannounced_at", TZ),
        sa.Column("late", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("first_ts", TZ, nullable=False),
        sa.Column("last_ts", TZ, nullable=False),
        sa.Column("raised_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("acknowledged_at", TZ),
        sa.Column("resolved_by", sa.Text),
        sa.Column("resolved_at", TZ),
        sa.Column("outcome", sa.Text),
        sa.Column("outcome_note", sa.Text),
        sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.CheckConstraint("status in ('open','acknowledged','resolved')", name="alert_status"),
        sa.CheckConstraint("severity in ('notice','normal','high')", name="alert_severity"),
    )
    op.create_index("alerts_site_status", "alerts", ["site", "status"])
    op.create_index("alerts_site_first_ts", "alerts", ["site", "first_ts"])
    op.create_table(
        "alert_triggers",
        sa.Column("episode_key", sa.Text, nullable=False),
        sa.Column("event_key", sa.Text, nullable=False),
        sa.Column("ts", TZ, nullable=False),
        sa.PrimaryKeyConstraint("episode_key", "event_key"),
    )
    # Every change of an alert, in commit order: the board's WebSocket replays from here.
    op.create_table(
        "alert_changes",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.BigInteger, sa.ForeignKey("alerts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("alert", postgresql.JSONB, nullable=False),
    )
    op.create_index("alert_changes_site_seq", "alert_changes", ["site", "seq"])
    op.create_table(
        "rule_settings",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("room", sa.Text),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean),
        sa.Column("minutes", sa.Integer),
        sa.Column("severity", sa.Text),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("minutes is null or minutes between 1 and 720", name="rule_minutes"),
    )
    op.create_index("rule_settings_key", "rule_settings",
                    ["site", sa.text("coalesce(room, '')"), "rule"], unique=True)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("sites", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", TZ),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("role in ('admin','staff','evaluator')", name="user_role"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("site", sa.Text),
        sa.Column("target", sa.Text),
        sa.Column("detail", postgresql.JSONB, nullable=False, server_default="{}"),
    )
    op.create_index("audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    for table in ("audit_log", "users", "rule_settings", "alert_changes", "alert_triggers",
                  "alerts"):
        op.drop_table(table)
