"""One device cannot fill the store or replay itself: retained events are refused and a
flood of bad messages is stored only a few times a minute, while other devices' events flow.
A bridge, which may use any device name of its prefix, and all senders together have limits
of their own."""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from core.events import DeviceKind
from core.settings import StackInfo
from tests.support.devices import DeviceClient, event_payload
from tests.support.waiting import wait_until

PER_MINUTE = 20  # core.settings.Settings.dead_letters_per_minute's default
PER_BRIDGE = 100  # core.settings.Settings.dead_letters_per_minute_per_bridge's default


def count(db: psycopg.Connection, query: str, *params: object) -> int:
    row = db.execute(query, params).fetchone()
    assert row is not None
    return int(row[0] or 0)


def test_retained_event_replayed_on_subscription_is_dead_lettered_not_stored(
        site: str, db: psycopg.Connection, stack: StackInfo,
        add_device: Callable[..., tuple[str, str]], run_gateway: Callable[..., object]) -> None:
    user, password = add_device(site, "door-1")
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    topic = f"nattero/v1/{site}/door-1/events"
    device.publish(topic, event_payload("door.open", event_id="kept-by-broker"), retain=True)
    device.flush()
    try:
        run_gateway(site)  # subscribes: the broker hands it the retained event
        assert wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters WHERE topic = %s "
                                            "AND reason = 'retained_event'", topic) == 1)
        run_gateway(site)  # a second subscription (a restarted gateway) gets it again
        assert wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters WHERE topic = %s "
                                            "AND reason = 'retained_event'", topic) == 2)
        detail = db.execute("SELECT detail FROM dead_letters WHERE topic = %s LIMIT 1",
                            (topic,)).fetchone()
        assert detail is not None and "retain=false" in detail[0]
        assert count(db, "SELECT count(*) FROM events WHERE site = %s", site) == 0
    finally:
        device.publish(topic, b"", retain=True)  # clears the retained message
        device.close()


def test_dead_letter_flood_from_one_device_is_capped_while_another_device_is_stored(
        site: str, db: psycopg.Connection, stack: StackInfo,
        add_device: Callable[..., tuple[str, str]], run_gateway: Callable[..., object]) -> None:
    flooder_creds = add_device(site, "m-bad", "lounge", DeviceKind.MOTION)
    good_creds = add_device(site, "m-good", "lounge", DeviceKind.MOTION)
    run_gateway(site)
    flooder = DeviceClient(stack.mqtt_host, stack.mqtt_port, *flooder_creds)
    good = DeviceClient(stack.mqtt_host, stack.mqtt_port, *good_creds)
    bad_topic = f"nattero/v1/{site}/m-bad/events"
    junk = json.dumps({"id": "x", "ts": 1795400000, "kind": "motion", "pad": "x" * 3000})
    flood = threading.Thread(target=flooder.publish_many,
                             args=([(bad_topic, junk)] * 500,))
    flood.start()
    good.publish_many((f"nattero/v1/{site}/m-good/events", event_payload("motion"))
                      for _ in range(100))
    flood.join()
    flooder.close()
    good.close()

    assert wait_until(lambda: count(db, "SELECT sum(received) FROM dead_letter_minutes "
                                        "WHERE sender = %s", f"nattero/v1/{site}/m-bad") == 500)
    assert count(db, "SELECT count(*) FROM events WHERE site = %s AND device = 'm-good'",
                 site) == 100
    per_minute = db.execute(
        "SELECT date_trunc('minute', received_at), count(*) FROM dead_letters WHERE topic = %s "
        "GROUP BY 1", (bad_topic,)).fetchall()
    assert per_minute and all(rows <= PER_MINUTE for _, rows in per_minute)
    stored, suppressed = db.execute(
        "SELECT sum(stored), sum(suppressed) FROM dead_letter_minutes WHERE sender = %s",
        (f"nattero/v1/{site}/m-bad",)).fetchone() or (0, 0)
    assert stored == sum(rows for _, rows in per_minute)
    assert suppressed == 500 - stored


def test_bridge_flooding_under_many_device_names_is_capped_per_bridge(
        site: str, db: psycopg.Connection, stack: StackInfo, migrated: StackInfo,
        add_device: Callable[..., tuple[str, str]]) -> None:
    """A bridge account may publish under any device name of its prefix: per-device limits
    alone would let it store 20 dead letters per made-up name and minute."""
    from core.events import DeviceSource
    from core.settings import Settings, get_settings
    from gateway.service import Gateway
    from provisioning import bridges
    from tests.support.store import unique

    application = str(uuid.uuid4())
    name = unique("bridge")
    credentials = bridges.add_bridge(get_settings(), name, DeviceSource.CHIRPSTACK,
                                     application_id=application)
    good_creds = add_device(site, "m-good", "lounge", DeviceKind.MOTION)
    gateway = Gateway(Settings(gateway_sites=[site], gateway_client_id=unique("gw"),
                               gateway_session_expiry_s=600, gateway_bridges=True))
    gateway.start()
    lora = DeviceClient(stack.mqtt_host, stack.mqtt_port, credentials.username,
                        credentials.password)
    good = DeviceClient(stack.mqtt_host, stack.mqtt_port, *good_creds)
    try:
        junk = b'{"not": "an uplink"}'
        flood = threading.Thread(target=lora.publish_many, args=(
            [(f"application/{application}/device/{uuid.uuid4().hex[:16]}/event/up", junk)
             for _ in range(400)],))
        flood.start()
        good.publish_many((f"nattero/v1/{site}/m-good/events", event_payload("motion"))
                          for _ in range(50))
        flood.join()
        counter = f"bridge:application/{application}"
        assert wait_until(lambda: count(db, "SELECT sum(received) FROM dead_letter_minutes "
                                            "WHERE sender = %s", counter) == 400)
        assert count(db, "SELECT count(*) FROM events WHERE site = %s AND device = 'm-good'",
                     site) == 50
        per_minute = db.execute(
            "SELECT date_trunc('minute', received_at), count(*) FROM dead_letters "
            "WHERE topic LIKE %s GROUP BY 1", (f"application/{application}/%",)).fetchall()
        assert per_minute and all(rows <= PER_BRIDGE for _, rows in per_minute)
        assert count(db, "SELECT sum(stored) FROM dead_letter_minutes WHERE sender = %s",
                     counter) == sum(rows for _, rows in per_minute)
    finally:
        lora.close()
        good.close()
        gateway.stop()
        bridges.revoke_bridge(get_settings(), name)


def test_dead_letters_stored_per_minute_are_capped_for_the_whole_installation(
        migrated: StackInfo, db: psycopg.Connection) -> None:
    """Many senders at once (each under its own limit) still store no more than the total;
    every message is counted. A minute of its own keeps the test apart from the others."""
    from ingest.writer import TOTAL_SENDER, Batch, DeadLetterRecord, EventWriter

    minute = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(500_000))
    writer = EventWriter(migrated.database_url, dead_letters_per_minute=3,
                         dead_letters_per_minute_total=25)
    senders = [f"junk/{uuid.uuid4().hex}" for _ in range(20)]
    try:
        for _ in range(2):  # two batches: the limit holds across transactions
            writer.write(Batch(dead_letters=[
                DeadLetterRecord(minute, sender, b"x", "not_json", "test", sender=sender)
                for sender in senders for _ in range(4)]))
    finally:
        writer.close()
    assert count(db, "SELECT count(*) FROM dead_letters WHERE received_at = %s", minute) == 25
    assert count(db, "SELECT received FROM dead_letter_minutes WHERE minute = %s "
                     "AND sender = %s", minute, TOTAL_SENDER) == 160
    per_sender = db.execute("SELECT max(stored) FROM dead_letter_minutes WHERE minute = %s "
                            "AND sender <> %s", (minute, TOTAL_SENDER)).fetchone()
    assert per_sender is not None and per_sender[0] <= 3
