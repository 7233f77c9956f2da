"""Web Push and the boards' presence (issue 16: installable, awake, audible; no deaf site).

- ``push_subscriptions``: one row per browser subscribed to Web Push (RFC 8030), with its
  RFC 8291 keys, the account that subscribed it and optionally the one site its board
  shows (NULL: every site the account sees, read at send time, so a changed account
  changes its pushes at once).
- ``push_deliveries``: each push tried (the key names what was pushed: an alert's change,
  a site without a board), its attempts, outcome and last error: a failing push is
  retried and recorded, never silently dropped. The key also makes a push go out once
  when several API processes see the same change.
- ``board_presence``: when a board of a site last had a live WebSocket (written by the API
  processes); ``board_silences``: nights where no board of a site was connected for too
  long, from when, and when a board came back.

The VAPID key pair lives in ``installation_secrets`` (name ``vapid``), made on first use.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.Text, nullable=False, unique=True),
        sa.Column("p256dh", sa.Text, nullable=False),
        sa.Column("auth", sa.Text, nullable=False),
        sa.Column("username", sa.Text,
                  sa.ForeignKey("users.username", ondelete="CASCADE", onupdate="CASCADE"),
                  nullable=False),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("last_sent_at", TZ),
    )
    op.create_table(
        "push_deliveries",
        sa.Column("subscription_id", sa.BigInteger,
                  sa.ForeignKey("push_subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="sending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("subscription_id", "key"),
        sa.CheckConstraint("status in ('sending','sent','failed')", name="push_status"),
    )
    op.create_table(
        "board_presence",
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("last_live_at", TZ, nullable=False),
    )
    op.create_table(
        "board_silences",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("silent_since", TZ, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("ended_at", TZ),
        sa.Column("detail", postgresql.JSONB, nullable=False, server_default="{}"),
    )
    # At most one ongoing silence per site.
    op.create_index("board_silences_open", "board_silences", ["site"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"))


def downgrade() -> None:
    op.drop_table("board_silences")
    op.drop_table("board_presence")
    op.drop_table("push_deliveries")
    op.drop_table("push_subscriptions")
