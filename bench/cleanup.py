"""Remove a benchmark's sites (events, devices, broker accounts) so they do not linger."""

from __future__ import annotations

import psycopg

import provisioning
from core.settings import Settings


def remove_session(settings: Settings, client_id: str) -> None:
    """Delete a benchmark gateway's persistent broker session (a clean connect ends it), so
    the broker does not keep queueing for a client that will never return."""
    import time

    import paho.mqtt.client as mqtt

    account = settings.gateway_account()
    for host, port in settings.central_brokers():  # a session on each
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=True)
        client.username_pw_set(account.username, account.password)
        client.connect(host, port)
        client.loop_start()
        time.sleep(0.5)
        client.disconnect()
        client.loop_stop()


def remove_site(settings: Settings, site: str) -> None:
    for device in provisioning.list_devices(settings, site):
        if device.revoked_at is None:
            provisioning.revoke_device(settings, site, device.id)
    with psycopg.connect(settings.resolved_database_url(), autocommit=True) as conn:
        conn.execute("DELETE FROM events WHERE site = %s", (site,))
        # Keyed by episode (site first), not linked to the site: alerts cascade, these not.
        conn.execute("DELETE FROM alert_triggers WHERE episode_key LIKE %s", (f"{site}/%",))
        conn.execute("DELETE FROM devices WHERE site = %s", (site,))
        conn.execute("DELETE FROM sites WHERE id = %s", (site,))
