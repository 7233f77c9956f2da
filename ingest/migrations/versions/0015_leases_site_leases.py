"""Site leases (issue 18 §2): several `nattero pipeline` workers, each site owned by one.

- ``site_leases``: one row per site that a worker has ever owned: the ``owner`` (a worker
  id), until when the lease holds (``expires_at``, on the database's clock, so the
  workers' clocks never matter) and the ``token`` of the current tenure.
- ``site_lease_token``: the sequence tokens are drawn from. Every takeover draws a new,
  larger one (a renewal keeps it), so a token names one tenure of one owner and an old
  owner's token is never valid again, even if the row was deleted and made anew.

The writing transaction of a leased worker locks its sites' rows ``FOR SHARE`` and
compares the tokens (``ingest.leases.LeaseFence``): a paused old owner whose lease was
taken over cannot commit. A worker without leases (the default single worker) never
reads this table.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE site_lease_token AS bigint")
    op.create_table(
        "site_leases",
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("site_leases")
    op.execute("DROP SEQUENCE site_lease_token")
