"""Native events from real devices through the real broker into TimescaleDB."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import UTC, datetime

import psycopg
import pytest

from core.events import DeviceKind
from tests.support.cli import nattero_cli
from tests.support.devices import DeviceClient, event_payload
from tests.support.store import unique
from tests.support.waiting import wait_until


def count(db: psycopg.Connection, sql: str, *params: object) -> int:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def test_event_from_cli_provisioned_device_published_with_mosquitto_pub_is_stored(
        site, db, stack, run_gateway) -> None:
    added = nattero_cli("device", "add", site, "door-1", "--room", "f1", "--kind", "door",
                        "--json")
    assert added.returncode == 0, added.stderr
    creds = json.loads(added.stdout)
    assert creds["client_id"] == creds["username"] == f"{site}.door-1"
    assert db.execute("SELECT actor LIKE 'cli:%%' FROM audit_log WHERE action = 'device.add' "
                      "AND site = %s AND target = 'door-1'", (site,)).fetchone() == (True,)
    run_gateway(site)
    ts = "2026-11-23T02:10:03.120Z"
    subprocess.run(["mosquitto_pub", "-h", stack.mqtt_host, "-p", str(stack.mqtt_port),
                    "-i", creds["client_id"], "-u", creds["username"], "-P", creds["password"],
                    "-q", "1", "-V", "mqttv5",
                    "-t", f"nattero/v1/{site}/door-1/events",
                    "-m", json.dumps({"id": "e-1", "ts": ts, "kind": "door.open", "battery": 87})],
                   check=True, timeout=10)
    assert wait_until(lambda: count(db, "SELECT count(*) FROM events WHERE site = %s", site) == 1)
    row = db.execute("SELECT site, device, room, kind, ts, battery FROM events WHERE site = %s",
                     (site,)).fetchone()
    assert row == (site, "door-1", "f1", "door.open",
                   datetime(2026, 11, 23, 2, 10, 3, 120000, tzinfo=UTC), 87)


def test_same_event_published_twice_is_stored_once(site, db, stack, add_device,
                                                   run_gateway) -> None:
    user, password = add_device(site, "door-1")
    run_gateway(site)
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    payload = event_payload("door.open", event_id="same-id")
    device.publish_many([(f"nattero/v1/{site}/door-1/events", payload)] * 2)
    device.publish_many([(f"nattero/v1/{site}/door-1/events", event_payload("door.closed"))])
    device.close()
    assert wait_until(lambda: count(db, "SELECT count(*) FROM events WHERE site = %s", site) == 2)
    assert count(db, "SELECT count(*) FROM events WHERE site = %s AND event_id = 'same-id'",
                 site) == 1


@pytest.mark.slow
def test_ten_thousand_events_from_fifty_devices_are_all_stored(site, db, stack, add_device,
                                                               run_gateway) -> None:
    run_gateway(site)
    devices = []
    for n in range(50):
        user, password = add_device(site, f"m-{n}", "lounge", DeviceKind.MOTION)
        devices.append((f"m-{n}", DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)))

    def send(device_id: str, client: DeviceClient) -> None:
        client.publish_many((f"nattero/v1/{site}/{device_id}/events", event_payload("motion"))
                            for _ in range(200))

    threads = [threading.Thread(target=send, args=pair) for pair in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _, client in devices:
        client.close()
    assert wait_until(
        lambda: count(db, "SELECT count(*) FROM events WHERE site = %s", site) == 10_000, 60)
    assert count(db, "SELECT count(DISTINCT device) FROM events WHERE site = %s", site) == 50


def test_status_messages_update_the_devices_presence(site, db, stack, add_device,
                                                     run_gateway) -> None:
    user, password = add_device(site, "bed-1", "f1", DeviceKind.BED)
    run_gateway(site)
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    device.publish_many([(f"nattero/v1/{site}/bed-1/status", b"offline")])
    assert wait_until(lambda: db.execute(
        "SELECT presence FROM devices WHERE site = %s AND id = 'bed-1'", (site,)
    ).fetchone()[0] == "offline")
    device.publish_many([(f"nattero/v1/{site}/bed-1/status", b"online")])
    device.close()
    assert wait_until(lambda: db.execute(
        "SELECT presence FROM devices WHERE site = %s AND id = 'bed-1'", (site,)
    ).fetchone()[0] == "online")


GOOD_TS = "2026-11-23T02:10:03Z"
# case -> (reason, payload): every way a native event can break the contract.
BAD_PAYLOADS = {
    "invalid_json": ("invalid_json", b'{"id": "x", "ts": '),
    "nan_battery": ("invalid_json",
                    b'{"id": "x", "ts": "2026-11-23T02:10:03Z", "kind": "motion", '
                    b'"battery": NaN}'),
    "not_utf8": ("not_utf8", b'{"id": "\xff\xfe", "ts": "2026-11-23T02:10:03Z", "kind": "motion"}'),
    "too_large": ("too_large", json.dumps({"id": "x", "ts": GOOD_TS, "kind": "motion",
                                           "pad": "x" * 5000}).encode()),
    "missing_id": ("missing_id", json.dumps({"ts": GOOD_TS, "kind": "motion"}).encode()),
    "bad_ts": ("bad_ts", json.dumps({"id": "x", "ts": "23/11/2026 02:10",
                                     "kind": "motion"}).encode()),
    "epoch_ts": ("bad_ts", json.dumps({"id": "x", "ts": 1795400000, "kind": "motion"}).encode()),
    "naive_ts": ("bad_ts", json.dumps({"id": "x", "ts": "2026-11-23T02:10:03",
                                       "kind": "motion"}).encode()),
    "duplicate_key": ("duplicate_key",
                      b'{"id": "x", "ts": "2026-11-23T02:10:03Z", "kind": "door.open", '
                      b'"kind": "door.closed"}'),
    "ansi_escape_in_id": ("bad_id", json.dumps({"id": "x\u001b[2J\u001b[31mok", "ts": GOOD_TS,
                                                "kind": "motion"}).encode()),
    "newline_in_id": ("bad_id", json.dumps({"id": "a\nb", "ts": GOOD_TS,
                                            "kind": "motion"}).encode()),
    "unknown_kind": ("unknown_kind", json.dumps({"id": "x", "ts": GOOD_TS,
                                                 "kind": "door.ajar"}).encode()),
    "bad_battery": ("bad_battery", json.dumps({"id": "x", "ts": GOOD_TS, "kind": "motion",
                                               "battery": 250}).encode()),
}


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_bad_payload_is_dead_lettered_with_its_reason_and_not_stored(
        case, site, db, stack, add_device, run_gateway) -> None:
    reason, payload = BAD_PAYLOADS[case]
    user, password = add_device(site, "m-1", "lounge", DeviceKind.MOTION)
    run_gateway(site)
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    topic = f"nattero/v1/{site}/m-1/events"
    device.publish_many([(topic, payload)])
    device.close()
    assert wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters WHERE topic = %s",
                                    topic) == 1)
    stored = db.execute("SELECT reason, detail, payload, payload_length, truncated "
                        "FROM dead_letters WHERE topic = %s", (topic,)).fetchone()
    assert stored[0] == reason
    assert "expected" in stored[1]  # says what was wrong and what the contract expects
    assert bytes(stored[2]) == payload[:4096]  # at most the first 4 KiB are kept
    assert stored[3:] == (len(payload), len(payload) > 4096)
    assert count(db, "SELECT count(*) FROM events WHERE site = %s", site) == 0


def test_status_in_capitals_is_dead_lettered_and_presence_unchanged(
        site, db, stack, add_device, run_gateway) -> None:
    user, password = add_device(site, "bed-1", "f1", DeviceKind.BED)
    run_gateway(site)
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    topic = f"nattero/v1/{site}/bed-1/status"
    device.publish_many([(topic, b"offline"), (topic, b"ONLINE")])
    device.close()
    assert wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters WHERE topic = %s "
                                        "AND reason = 'bad_status'", topic) == 1)
    detail = db.execute("SELECT detail FROM dead_letters WHERE topic = %s",
                        (topic,)).fetchone()[0]
    assert "'ONLINE'" in detail and "exactly 'online' or 'offline'" in detail
    assert db.execute("SELECT presence FROM devices WHERE site = %s AND id = 'bed-1'",
                      (site,)).fetchone() == ("offline",)


def _bridge_publisher(stack, topics: list[str]) -> DeviceClient:
    """A broker account allowed to publish on arbitrary topics, to play a rogue device."""
    from provisioning.broker_accounts import BrokerAccounts

    name, password = unique("rogue"), unique("pw")
    with BrokerAccounts(stack.mqtt_host, stack.mqtt_port, stack.broker_admin) as accounts:
        accounts.create_bridge_account(name, password, topics, client_id=name)
    return DeviceClient(stack.mqtt_host, stack.mqtt_port, name, password)


def test_event_from_unknown_device_is_dead_lettered(site, db, stack, run_gateway) -> None:
    run_gateway(site)
    rogue = _bridge_publisher(stack, [f"nattero/v1/{site}/#"])
    topic = f"nattero/v1/{site}/ghost/events"
    rogue.publish_many([(topic, event_payload("motion"))])
    rogue.close()
    assert wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters WHERE topic = %s "
                                        "AND reason = 'unknown_device'", topic) == 1)
    assert count(db, "SELECT count(*) FROM events WHERE site = %s", site) == 0


def test_device_publishing_under_another_site_is_dead_lettered(
        site, db, stack, add_device, run_gateway) -> None:
    import provisioning
    from core.settings import get_settings

    other = unique("t")
    provisioning.add_site(get_settings(), other, "Andet hjem")
    add_device(site, "door-9")
    run_gateway(site, other)
    rogue = _bridge_publisher(stack, [f"nattero/v1/{other}/#"])
    topic = f"nattero/v1/{other}/door-9/events"
    rogue.publish_many([(topic, event_payload("door.open"))])
    rogue.close()
    assert wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters WHERE topic = %s "
                                        "AND reason = 'wrong_site'", topic) == 1)
    assert count(db, "SELECT count(*) FROM events WHERE site IN (%s, %s)", site, other) == 0


def test_gateway_with_a_wrong_password_stops_with_a_clear_error(migrated) -> None:
    from core.settings import Settings
    from gateway.service import Gateway, GatewayAuthError

    gateway = Gateway(Settings(gateway_username="nattero-gateway", gateway_password="wrong",
                               gateway_client_id=unique("gw"), gateway_bridges=False))
    with pytest.raises(GatewayAuthError, match="refused the gateway account"):
        gateway.start()
    gateway.stop()


def test_event_ids_with_backslashes_quotes_and_spaces_are_stored_exactly(
        site, db, stack, add_device, run_gateway) -> None:
    user, password = add_device(site, "m-1", "lounge", DeviceKind.MOTION)
    run_gateway(site)
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    odd = 'a b\\c\\td"e\'ø'  # printable, but special to COPY's text format and to SQL
    device.publish_many([(f"nattero/v1/{site}/m-1/events", event_payload("motion",
                                                                          event_id=odd))])
    device.close()
    assert wait_until(lambda: count(db, "SELECT count(*) FROM events WHERE site = %s", site) == 1)
    assert db.execute("SELECT event_id FROM events WHERE site = %s", (site,)).fetchone() == (odd,)
