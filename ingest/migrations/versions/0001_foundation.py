"""Foundation: sites, rooms, monitoring bases, devices, events hypertable, dead letters.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.create_table(
        "sites",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tz", sa.Text, nullable=False, server_default="Europe/Copenhagen"),
        sa.Column("night_start", sa.Time, nullable=False, server_default="22:00"),
        sa.Column("night_end", sa.Time, nullable=False, server_default="07:00"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name="site_slug"),
    )
    op.create_table(
        "rooms",
        sa.Column("site", sa.Text, sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.CheckConstraint("kind in ('flat','common','exit')", name="room_kind"),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'", name="room_slug"),
    )
    op.create_table(
        "room_bases",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reference", sa.Text),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(["site", "room"], ["rooms.site", "rooms.id"], ondelete="CASCADE"),
        sa.CheckConstraint("kind in ('consent','decision')", name="basis_kind"),
        sa.CheckConstraint("kind = 'consent' or reference is not null",
                           name="decision_has_reference"),
        sa.CheckConstraint("valid_to is null or valid_to >= valid_from", name="basis_period"),
    )
    op.create_table(
        "devices",
        sa.Column("site", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("heartbeat_s", sa.Integer, nullable=False, server_default="300"),
        sa.Column("source", sa.Text, nullable=False, server_default="native"),
        sa.Column("external_id", sa.Text),
        sa.Column("mapping", sa.Text),
        sa.Column("mqtt_username", sa.Text),
        sa.Column("presence", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("presence_at", TZ),
        sa.Column("battery", sa.SmallInteger),
        sa.Column("last_event_at", TZ),
        sa.Column("revoked_at", TZ),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(["site", "room"], ["rooms.site", "rooms.id"]),
        sa.CheckConstraint("kind in ('door','bed','motion','exit')", name="device_kind"),
        sa.CheckConstraint("source in ('native','zigbee2mqtt','chirpstack')", name="device_source"),
        sa.CheckConstraint("heartbeat_s between 10 and 86400", name="heartbeat_range"),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'", name="device_slug"),
        sa.UniqueConstraint("source", "external_id", name="device_external_id"),
    )
    op.create_table(
        "events",
        sa.Column("site", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("room", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("battery", sa.SmallInteger),
        sa.Column("received_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("site", "device", "event_id", "ts", name="events_pkey"),
    )
    op.execute(
        "SELECT create_hypertable('events', 'ts', chunk_time_interval => interval '1 day')")
    op.create_index("events_site_ts", "events", ["site", sa.text("ts DESC")])
    op.create_index("events_site_room_ts", "events", ["site", "room", sa.text("ts DESC")])
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False, server_default="false"),
    )
    op.create_index("dead_letters_received_at", "dead_letters", ["received_at"])


def downgrade() -> None:
    for table in ("dead_letters", "events", "devices", "room_bases", "rooms", "sites"):
        op.drop_table(table)
