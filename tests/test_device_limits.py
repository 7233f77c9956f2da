"""One device cannot fill the store or replay itself: retained events are refused and a
flood of bad messages is stored only a few times a minute, while other devices' events flow."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import psycopg

from core.events import DeviceKind
from core.settings import StackInfo
from tests.support.devices import DeviceClient, event_payload
from tests.support.waiting import wait_until

PER_MINUTE = 20  # core.settings.Settings.dead_letters_per_minute's default


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
