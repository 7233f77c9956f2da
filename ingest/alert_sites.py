"""Which site an alert belongs to: the API checks it before showing or changing an alert.

Kept apart from ``ingest.alerts`` (the lifecycle and its change stream) because it is a
plain lookup, used for access control.
"""

from __future__ import annotations

import psycopg

__all__ = ["site_of_alert"]


def site_of_alert(conn: psycopg.Connection, alert_id: int) -> str | None:
    """The alert's site, or None when there is no such alert."""
    row = conn.execute("SELECT site FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    if row is None:
        return None
    site: str = row[0]
    return site
