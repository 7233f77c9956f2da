"""Shift-long boards and a lockout that a stranger cannot turn on the night shift.

- ``login_locks``: wrong passwords counted per (account, client), with the lock's end. A
  client is a login key the account's own successful login handed out (a tablet that
  has logged in before), else the address. One client's guesses lock only that client.
  The old per-account counter (``users.failed_logins``, ``locked_until``) is no longer read.
- ``boards``: tablets enrolled by an admin as the board of one site. Only hashes of the
  board's secret and of its device id are kept; ``revoked_at`` ends it (and its stream).
- ``board_pairings``: short-lived, single-use pairing codes (hashed) an admin makes for
  a tablet to enrol with.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_locks",
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", TZ),
        sa.Column("last_failed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "client"),
    )
    op.create_table(
        "boards",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
        sa.Column("device_hash", sa.Text, nullable=False),
        sa.Column("enrolled_by", sa.Text, nullable=False),
        sa.Column("enrolled_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ),
        sa.Column("revoked_at", TZ),
        sa.Column("revoked_by", sa.Text),
    )
    op.create_table(
        "board_pairings",
        sa.Column("code_hash", sa.Text, primary_key=True),
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("board_id", sa.BigInteger, sa.ForeignKey("boards.id", ondelete="CASCADE")),
    )


def downgrade() -> None:
    for table in ("board_pairings", "boards", "login_locks"):
        op.drop_table(table)
