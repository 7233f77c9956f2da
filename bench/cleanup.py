"""Remove a benchmark's sites (events, devices, broker accounts) so they do not linger."""

from __future__ import annotations

import psycopg

from nattero import provisioning
from nattero.settings import Settings


def remove_site(settings: Settings, site: str) -> None:
    for device in provisioning.list_devices(settings, site):
        if device.revoked_at is None:
            provisioning.revoke_device(settings, site, device.id)
    with psycopg.connect(settings.resolved_database_url(), autocommit=True) as conn:
        conn.execute("DELETE FROM events WHERE site = %s", (site,))
        conn.execute("DELETE FROM devices WHERE site = %s", (site,))
        conn.execute("DELETE FROM sites WHERE id = %s", (site,))
