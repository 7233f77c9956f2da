"""The layout version also moves when a device's source, external id or mapping changes.

The gateway's device registry (``gateway.registry``) reads the devices again only when the
layout version moved; it keeps those three columns too. Nattero sets them only when a
device is added (a new row, which moves the version already), but a change made by hand in
SQL must reach the gateway as well.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_BEFORE = "site, id, room, kind, heartbeat_s, revoked_at"
_NOW = _BEFORE + ", source, external_id, mapping"


def _trigger(columns: str) -> None:
    op.execute("DROP TRIGGER devices_layout_version ON devices")
    op.execute("CREATE TRIGGER devices_layout_version AFTER INSERT OR DELETE OR TRUNCATE OR "
               f"UPDATE OF {columns} ON devices FOR EACH STATEMENT "
               "EXECUTE FUNCTION bump_layout_version()")


def upgrade() -> None:
    _trigger(_NOW)


def downgrade() -> None:
    _trigger(_BEFORE)
