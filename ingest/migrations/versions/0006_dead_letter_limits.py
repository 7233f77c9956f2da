"""Dead letters limited per sender and minute: the senders' counts, and what was cut.

- ``dead_letter_minutes``: per (UTC minute, sender) how many dead letters arrived and how
  many were stored; ``suppressed`` = received - stored. A device that floods the gateway
  with bad messages costs one row per minute, not one per message.
- ``dead_letters.sender``: the device (or topic) a dead letter is charged to.
- ``dead_letters.payload_length``: the payload's length as received (the stored payload is
  cut to ``NATTERO_DEAD_LETTER_PAYLOAD_BYTES``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("sender", sa.Text))
    op.add_column("dead_letters", sa.Column("payload_length", sa.Integer))
    op.create_table(
        "dead_letter_minutes",
        sa.Column("minute", TZ, nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("received", sa.Integer, nullable=False),
        sa.Column("stored", sa.Integer, nullable=False),
        sa.Column("suppressed", sa.Integer, sa.Computed("received - stored", persisted=True)),
        sa.PrimaryKeyConstraint("minute", "sender", name="dead_letter_minutes_pkey"),
    )


def downgrade() -> None:
    op.drop_table("dead_letter_minutes")
    op.drop_column("dead_letters", "payload_length")
    op.drop_column("dead_letters", "sender")
