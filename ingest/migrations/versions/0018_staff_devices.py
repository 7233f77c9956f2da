"""devices.kind 'staff': a staff-room door contact or a staff tag reader (issue 13 §3).

Any event from such a device is staff on the floor, not a resident: it quiets what staff
cause in its room for a while (``rules.staff``), as a round announced on the board does.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("device_kind", "devices", type_="check")
    op.create_check_constraint("device_kind", "devices",
                               "kind in ('door','bed','motion','exit','staff')")


def downgrade() -> None:
    op.execute("DELETE FROM devices WHERE kind = 'staff'")
    op.drop_constraint("device_kind", "devices", type_="check")
    op.create_check_constraint("device_kind", "devices", "kind in ('door','bed','motion','exit')")
