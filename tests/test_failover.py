"""The database's primary dies under a running pipeline: nothing acknowledged is lost.

Issue 18 §1, on the real parts: pg_auto_failover's monitor and two PostgreSQL+TimescaleDB
nodes with synchronous replication (``deploy.ha``, what `nattero up --ha` starts), a real
`nattero pipeline` process connected with the multi-host URL, and devices publishing
through the test stack's broker. The primary is killed with SIGKILL (server and keeper, as
a machine that dies) while events stream in and a building exit opens: every event the
broker acknowledged is stored exactly once on the new primary, the exit's alert is raised,
a night board connected to an API process on the same database gets the exit's alert, and
the old primary rejoins as the secondary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

import provisioning
from api.users import create_user
from core.events import DeviceKind, RoomKind
from core.settings import Settings, StackInfo, get_settings
from deploy import ha
from tests.support import REPO
from tests.support.api import PASSWORD
from tests.support.board import ApiProcess
from tests.support.devices import DeviceClient, event_payload
from tests.support.pipeline import gateway_env
from tests.support.replicated import Board, count, replicated_database
from tests.support.store import night_around_now, unique
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

EVENTS = 3000
PER_SECOND = 150.0


@pytest.fixture(scope="module")
def replicated(migrated: StackInfo) -> Iterator[tuple[Settings, str]]:
    """A monitor and two nodes beside the test stack (own directory, own ports)."""
    with replicated_database("failover", 200) as found:
        yield found


def _publish_paced(device: DeviceClient, topic: str) -> None:
    started = time.monotonic()
    for n in range(EVENTS):
        pause = started + n / PER_SECOND - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        device.publish(topic, event_payload("motion", event_id=f"m{n}"))
    device.publish_many([])  # waits for every PUBACK: the broker has them all


def test_a_killed_primary_loses_no_acknowledged_event_and_no_alert(
        replicated: tuple[Settings, str], stack: StackInfo) -> None:
    settings, url = replicated
    on_replicated = get_settings().model_copy(update={"database_url": url})
    site = unique("ha")
    provisioning.add_site(on_replicated, site, "Failover")
    provisioning.add_room(on_replicated, site, "lounge", RoomKind.COMMON, "Dagligstue")
    provisioning.add_room(on_replicated, site, "exit", RoomKind.EXIT, "Hoveddør")
    motion = provisioning.add_device(on_replicated, site, "m-1", "lounge", DeviceKind.MOTION)
    door = provisioning.add_device(on_replicated, site, "exit-1", "exit", DeviceKind.EXIT)
    nurse = unique("nurse")
    with psycopg.connect(url, autocommit=True) as conn:
        night_around_now(conn, site)
        create_user(conn, nurse, PASSWORD, "staff", [site])
    api = ApiProcess(env={"NATTERO_DATABASE_URL": url})
    api.start()
    login = httpx.post(f"{api.url}/api/v1/auth/token", timeout=10,
                       data={"username": nurse, "password": PASSWORD})
    assert login.status_code == 200, login.text
    board = Board(f"ws://127.0.0.1:{api.port}", login.json()["access_token"])

    env = {**os.environ, **gateway_env(site), "NATTERO_DATABASE_URL": url,
           "NATTERO_MAINTENANCE": "off"}
    log = (settings.state_dir / "pipeline.log").open("ab")
    pipeline = subprocess.Popen([sys.executable, "-m", "nattero.cli", "pipeline"], env=env,
                                cwd=REPO, stdout=log, stderr=log)
    sensor = DeviceClient(stack.mqtt_host, stack.mqtt_port, motion.username, motion.password)
    exit_door = DeviceClient(stack.mqtt_host, stack.mqtt_port, door.username, door.password)
    try:
        sensor.publish(f"nattero/v1/{site}/m-1/status", b"online", retain=True)
        sensor.flush()
        assert wait_until(lambda: count(
            url, "SELECT count(*) FROM devices WHERE site = %s AND presence = 'online'",
            site) == 1, 60), "the pipeline never subscribed"
        publisher = threading.Thread(target=_publish_paced,
                                     args=(sensor, f"nattero/v1/{site}/m-1/events"))
        publisher.start()
        assert wait_until(lambda: count(
            url, "SELECT count(*) FROM events WHERE site = %s", site) >= 300, 60)
        old_primary = ha.primary(settings)
        assert old_primary is not None
        ha.kill_node(settings, old_primary)
        killed_at = time.monotonic()
        # A resident walks out while the database fails over.
        exit_door.publish(f"nattero/v1/{site}/exit-1/events", event_payload(
            "door.open", ts=datetime.now(UTC), event_id="out-during-failover"))
        exit_door.publish_many([])
        assert wait_until(lambda: ha.primary(settings) not in (None, old_primary), 60)
        promoted_after = time.monotonic() - killed_at
        publisher.join()
        assert wait_until(lambda: count(
            url, "SELECT count(*) FROM events WHERE site = %s", site) == EVENTS + 1, 120), \
            count(url, "SELECT count(*) FROM events WHERE site = %s", site)
        assert wait_until(lambda: count(
            url, "SELECT count(*) FROM alerts WHERE site = %s AND rule = 'building_exit'",
            site) == 1, 30), "the alert raised during the failover was lost"
        assert pipeline.poll() is None, "the pipeline exited during the failover"
        # On the night board too: the API's listener found the new primary.
        assert wait_until(lambda: len(board.raised("building_exit")) == 1, 60), board.changes
        board_after = time.monotonic() - killed_at
    finally:
        board.stop()
        api.stop()
        pipeline.terminate()
        try:
            pipeline.wait(15)
        except subprocess.TimeoutExpired:
            pipeline.kill()
            pipeline.wait(10)
        log.close()
        sensor.close()
        exit_door.close()
    # Exactly once, each: the same ids as published, no doubles, nothing missing.
    assert count(url, "SELECT count(DISTINCT event_id) FROM events WHERE site = %s "
                  "AND device = 'm-1'", site) == EVENTS
    print(f"failover: new primary after {promoted_after:.1f} s, the exit's alert on the "
          f"board {board_after:.1f} s after the kill")

    # The old primary comes back as the secondary of the new one (pg_rewind).
    ha.start_node(settings, old_primary)
    assert wait_until(lambda: ha.node_state(settings).get(old_primary)
                      == ("secondary", "secondary"), 120), (
        ha.node_state(settings),
        ha.paths(settings).log(old_primary).read_text()[-3000:])
