"""Rollups of events per 15-minute bucket, their watermark, and indexes for maintenance.

- ``event_rollup``: events per (site, room, 15-minute UTC bucket, kind);
  ``event_rollup_1h``: the same per UTC hour.
- ``event_rollup_out``: seconds out of flat per (site, room, 15-minute bucket), from the
  door/bed sequence (door closed -> next door open, no bed event between, at most 3 h).
- ``rollup_state``: one row; how far the rollups are complete (``refreshed_to``, on
  ``events.received_at``) and from when raw events still exist (``raw_kept_from``).
- ``events_received_at``: finds the buckets that received events since the last refresh
  (late and out-of-order events included).
- ``rollup_backdated`` + trigger ``events_backdated``: buckets of events stored more than
  5 minutes after their ``received_at`` (the watermark alone would miss them).
- ``events_door_bed``: a partial index for the minutes-out sequence (door/bed events only).

Both rollups are plain tables maintained by ``ingest.rollups.refresh`` (also in the full
TimescaleDB edition: minutes out of flat needs a window function, which a continuous
aggregate cannot hold, and one mechanism keeps both tables consistent).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


# Events stored well after they arrived (a batch the gateway held through a database outage,
# a bulk load with historical arrival times) would slip past the received_at watermark: a row
# trigger, whose WHEN clause is false for everything the writer stores live, marks their
# buckets. Plain inserts (no unique key): a refresh deletes exactly the marks it read.
BACKDATED_UP = """
CREATE TABLE rollup_backdated (
    id bigserial PRIMARY KEY,
    site text NOT NULL,
    bucket timestamptz NOT NULL
);
CREATE INDEX rollup_backdated_site_bucket ON rollup_backdated (site, bucket);
CREATE FUNCTION rollup_mark_backdated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_backdated (site, bucket)
    VALUES (NEW.site, time_bucket('15 minutes', NEW.ts));
    RETURN NULL;
END $$;
CREATE TRIGGER events_backdated AFTER INSERT ON events FOR EACH ROW
    WHEN (NEW.received_at < now() - interval '5 minutes')
    EXECUTE FUNCTION rollup_mark_backdated();
"""
BACKDATED_DOWN = """
DROP TRIGGER IF EXISTS events_backdated ON events;
DROP FUNCTION IF EXISTS rollup_mark_backdated();
DROP TABLE IF EXISTS rollup_backdated;
"""


def upgrade() -> None:
    op.create_table(
        "event_rollup",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("bucket", TZ, nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("site", "bucket", "room", "kind", name="event_rollup_pkey"),
    )
    # The same per UTC hour (summed from event_rollup): hourly and daily exports in zones
    # with whole-hour offsets read a quarter of the rows.
    op.create_table(
        "event_rollup_1h",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("bucket", TZ, nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("site", "bucket", "room", "kind", name="event_rollup_1h_pkey"),
    )
    op.create_table(
        "event_rollup_out",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("bucket", TZ, nullable=False),
        sa.Column("seconds", sa.Numeric, nullable=False),
        sa.PrimaryKeyConstraint("site", "room", "bucket", name="event_rollup_out_pkey"),
    )
    op.create_index("event_rollup_out_site_bucket", "event_rollup_out", ["site", "bucket"])
    op.create_table(
        "rollup_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("initialized", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("refreshed_to", TZ),
        sa.Column("refreshed_at", TZ),
        sa.Column("raw_kept_from", TZ),
        sa.Column("reconciled_at", TZ),
        sa.CheckConstraint("id = 1", name="rollup_state_single_row"),
    )
    op.execute("INSERT INTO rollup_state (id) VALUES (1)")
    op.execute(BACKDATED_UP)
    op.create_index("events_received_at", "events", ["received_at"])
    op.create_index("events_door_bed", "events", ["site", "room", "ts"],
                    postgresql_where=sa.text(
                        "kind IN ('door.open', 'door.closed', 'bed.exit', 'bed.enter')"))


def downgrade() -> None:
    op.drop_index("events_door_bed", table_name="events")
    op.drop_index("events_received_at", table_name="events")
    op.execute(BACKDATED_DOWN)
    for table in ("rollup_state", "event_rollup_out", "event_rollup_1h", "event_rollup"):
        op.drop_table(table)
