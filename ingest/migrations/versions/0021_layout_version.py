"""A version number of the sites' layouts, bumped by every change the rules read.

The rules engine picks up layout changes made by other processes (the admin page, the
CLI) by reading the layouts again every few seconds. Read whole, for 200 sites that is
~0.3 s of work, a sixth of it holding the engine's lock, every 5 s: the alerts waiting
behind it were the worst latencies of ``bench/scale.py``. Now it reads this one number
and the layouts only when it changed.

Statement triggers bump it on every change of what ``ingest.rule_layouts.read_layouts``
reads: sites (time zone, night window), rooms, bases, rule settings, and devices' room,
kind, heartbeat and revocation (not the writer's presence, battery and last-seen
columns, which change with every batch).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_WATCHED = {
    "sites": "UPDATE OF tz, night_start, night_end",
    "rooms": "UPDATE",
    "room_bases": "UPDATE",
    "rule_settings": "UPDATE",
    "devices": "UPDATE OF site, id, room, kind, heartbeat_s, revoked_at",
}


def upgrade() -> None:
    op.execute("CREATE TABLE layout_version ("
               "one boolean PRIMARY KEY DEFAULT true CHECK (one), "
               "version bigint NOT NULL DEFAULT 0)")
    op.execute("INSERT INTO layout_version DEFAULT VALUES")
    op.execute("""
        CREATE FUNCTION bump_layout_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE layout_version SET version = version + 1;
            RETURN NULL;
        END $$""")
    for table, update in _WATCHED.items():
        op.execute(f"CREATE TRIGGER {table}_layout_version AFTER INSERT OR DELETE OR "
                   f"TRUNCATE OR {update} ON {table} FOR EACH STATEMENT "
                   "EXECUTE FUNCTION bump_layout_version()")


def downgrade() -> None:
    for table in _WATCHED:
        op.execute(f"DROP TRIGGER {table}_layout_version ON {table}")
    op.execute("DROP FUNCTION bump_layout_version()")
    op.execute("DROP TABLE layout_version")
