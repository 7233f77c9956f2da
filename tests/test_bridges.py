"""Zigbee2MQTT and ChirpStack through the real broker and gateway into the real database.

Each test publishes the real bridge payloads (tests/fixtures) with a bridge account made by
``provisioning.bridges.add_bridge``. Bridges publish under one shared tree (``zigbee2mqtt/#``,
``application/#``), so every test uses its own friendly names and DevEUIs, and its gateway
serves only its own site. "Nothing else arrived" is checked with a sentinel: the gateway
handles messages in order, so once a later message is stored, the earlier ones were handled.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import provisioning
from core.events import DeviceKind, DeviceSource, RoomKind
from core.settings import Settings, StackInfo, get_settings
from gateway.bridges import ChirpStackBridge, EventHistory, Zigbee2MqttBridge
from gateway.service import Gateway
from provisioning import ProvisioningError, bridges, names
from rules.runtime import RulesRuntime
from tests.support.devices import DeviceClient, event_payload
from tests.support.store import unique
from tests.support.waiting import wait_until

FIXTURES = Path(__file__).parent / "fixtures"
NIGHT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 02:00 in Copenhagen


# -- payloads ---------------------------------------------------------------------------

def zigbee_messages(name: str) -> list[bytes]:
    """A Zigbee2MQTT fixture's messages as the bridge publishes them (compact JSON or text)."""
    messages = json.loads((FIXTURES / "zigbee2mqtt" / name).read_text())["messages"]
    return [m["payload"].encode() if isinstance(m["payload"], str)
            else json.dumps(m["payload"], separators=(",", ":")).encode() for m in messages]


def zigbee_state(**values: Any) -> bytes:
    """The door fixture's first message with some values changed (the shape is never made up)."""
    body = json.loads(zigbee_messages("door_sequence.json")[0])
    body.update(values)
    return json.dumps(body, separators=(",", ":")).encode()


def chirpstack_payload(name: str, dev_eui: str, **values: Any) -> bytes:
    """A ChirpStack fixture for this test's DevEUI (v3 payloads carry no deviceInfo)."""
    body = json.loads((FIXTURES / "chirpstack" / name).read_text())
    if "deviceInfo" in body:
        body["deviceInfo"]["devEui"] = dev_eui
    body.update(values)
    return json.dumps(body).encode()


def uplink_topic(dev_eui: str, event: str = "up") -> str:
    return f"application/17c82e96-be03-4f38-aef3-f83d48582d97/device/{dev_eui}/event/{event}"


def new_dev_eui() -> str:
    return uuid.uuid4().hex[:16]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- store queries ----------------------------------------------------------------------

def stored(db: psycopg.Connection, site: str, device: str) -> list[tuple[str, datetime, Any]]:
    return db.execute("SELECT kind, ts, battery FROM events WHERE site = %s AND device = %s "
                      "ORDER BY ts, kind", (site, device)).fetchall()


def kinds(db: psycopg.Connection, site: str, device: str) -> list[str]:
    return [row[0] for row in stored(db, site, device)]


def dead_letters(db: psycopg.Connection, topic: str) -> list[tuple[str, str]]:
    return db.execute("SELECT reason, detail FROM dead_letters WHERE topic = %s ORDER BY id",
                      (topic,)).fetchall()


def presence(db: psycopg.Connection, site: str, device: str) -> str:
    row = db.execute("SELECT presence FROM devices WHERE site = %s AND id = %s",
                     (site, device)).fetchone()
    assert row is not None
    return str(row[0])


# -- fixtures ---------------------------------------------------------------------------

def add_bridged_device(site: str, device: str, room: str, kind: DeviceKind,
                       source: DeviceSource, external_id: str, mapping: str | None = None,
                       heartbeat_s: int = 300) -> None:
    provisioning.add_device(get_settings(), site, device, room, kind, heartbeat_s,
                            source=source, external_id=external_id, mapping=mapping)


def with_bridges(gateway: Gateway, sites: list[str]) -> EventHistory | None:
    """Add both bridges to a gateway not yet started, unless the gateway added them itself.

    Returns the history to close after the gateway stopped (None: the gateway closes its own).
    """
    if getattr(gateway, "bridge_history", None) is not None:
        return None
    history = EventHistory(get_settings().resolved_database_url())
    gateway.router.add_bridge(Zigbee2MqttBridge(gateway.registry, history, sites=sites))
    gateway.router.add_bridge(ChirpStackBridge(gateway.registry, history, sites=sites))
    return history


def bridged_settings(site: str, client_id: str | None = None) -> Settings:
    return Settings(gateway_sites=[site], gateway_client_id=client_id or unique("gw"),
                    gateway_session_expiry_s=600, gateway_bridges=True)


class BridgedGateways:
    """Gateways with the bridges, serving one site each; stopped at teardown."""

    def __init__(self) -> None:
        self.running: list[tuple[Gateway, EventHistory | None]] = []

    def start(self, site: str, client_id: str | None = None) -> Gateway:
        gateway = Gateway(bridged_settings(site, client_id))
        history = with_bridges(gateway, [site])
        gateway.start()
        self.running.append((gateway, history))
        return gateway

    def stop(self, gateway: Gateway) -> None:
        for entry in [e for e in self.running if e[0] is gateway]:
            entry[0].stop()
            if entry[1] is not None:
                entry[1].close()
            self.running.remove(entry)

    def stop_all(self) -> None:
        for gateway, _ in list(self.running):
            self.stop(gateway)


@pytest.fixture
def gateways(migrated: StackInfo) -> Iterator[BridgedGateways]:
    made = BridgedGateways()
    yield made
    made.stop_all()


@pytest.fixture
def bridge(stack: StackInfo) -> Iterator[Callable[[DeviceSource], DeviceClient]]:
    """Connect as a new bridge account of the given source; the accounts are revoked after."""
    names: list[str] = []
    clients: list[DeviceClient] = []

    def connect(source: DeviceSource) -> DeviceClient:
        name = unique("bridge")
        credentials = bridges.add_bridge(get_settings(), name, source)
        names.append(name)
        client = DeviceClient(stack.mqtt_host, stack.mqtt_port, credentials.username,
                              credentials.password)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
    for name in names:
        bridges.revoke_bridge(get_settings(), name)


def publish(client: DeviceClient, topic: str, *payloads: bytes) -> None:
    client.publish_many([(topic, payload) for payload in payloads])


# -- Zigbee2MQTT ------------------------------------------------------------------------

def test_zigbee_door_opened_and_closed_becomes_door_events_and_a_repeat_only_a_heartbeat(
        site, db, gateways, bridge) -> None:
    name = unique("hall door")
    add_bridged_device(site, "hall-door", "f1", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, name)
    gateways.start(site)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    closed, opened, opened_again, closed_again = zigbee_messages("door_sequence.json")
    # The last message twice: an MQTT redelivery of one report is stored once.
    publish(zigbee, f"zigbee2mqtt/{name}", closed, opened, opened_again, closed_again,
            closed_again)
    publish(zigbee, f"zigbee2mqtt/{name}/availability", b"online")  # the sentinel
    assert wait_until(lambda: presence(db, site, "hall-door") == "online")
    assert stored(db, site, "hall-door") == [
        ("door.closed", utc("2019-03-08T19:50:47+03:00"), 100),
        # contact false means open: the reed contact is broken.
        ("door.open", utc("2019-03-08T19:52:10+03:00"), 100),
        # The full state republished on a link-quality report: proof of life, no new open.
        ("heartbeat", utc("2019-03-08T19:52:40+03:00"), 100),
        ("door.closed", utc("2019-03-08T19:55:02+03:00"), 99),
    ]


def test_zigbee_motion_sequence_becomes_motion_and_presence_events(
        site, db, gateways, bridge) -> None:
    name = unique("lounge pir")
    add_bridged_device(site, "lounge-pir", "lounge", DeviceKind.MOTION,
                       DeviceSource.ZIGBEE2MQTT, name)
    gateways.start(site)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    before = datetime.now(UTC)
    publish(zigbee, f"zigbee2mqtt/{name}", *zigbee_messages("motion_sequence.json"))
    assert wait_until(lambda: len(kinds(db, site, "lounge-pir")) == 5)
    rows = stored(db, site, "lounge-pir")
    assert [row[0] for row in rows] == [
        "presence.off", "motion", "presence.on", "heartbeat", "presence.off"]
    assert rows[1][1] == rows[2][1] == utc("2019-03-08T23:12:04+03:00")
    # The bridge cleared occupancy itself (last_seen did not move): it happened on receipt.
    assert rows[4][1] >= before - timedelta(seconds=1)


@pytest.mark.parametrize(("style", "online", "offline"), [
    ("plain text before Zigbee2MQTT 2.0", 0, 1),
    ("JSON object since Zigbee2MQTT 2.0", 2, 3),
])
def test_zigbee_availability_sets_the_devices_presence(
        site, db, gateways, bridge, style, online, offline) -> None:
    name = unique("hall door")
    add_bridged_device(site, "hall-door", "f1", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, name)
    gateways.start(site)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    messages = zigbee_messages("availability.json")
    topic = f"zigbee2mqtt/{name}/availability"
    publish(zigbee, topic, messages[online])
    assert wait_until(lambda: presence(db, site, "hall-door") == "online")
    publish(zigbee, topic, messages[offline])
    assert wait_until(lambda: presence(db, site, "hall-door") == "offline")
    assert dead_letters(db, topic) == []
    assert kinds(db, site, "hall-door") == []


def test_zigbee_door_already_open_before_a_gateway_restart_is_not_opened_again(
        site, db, gateways, bridge) -> None:
    name = unique("hall door")
    add_bridged_device(site, "hall-door", "f1", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, name)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    first = gateways.start(site)
    publish(zigbee, f"zigbee2mqtt/{name}",
            zigbee_state(contact=False, last_seen="2026-11-23T01:00:00.000Z"))
    assert wait_until(lambda: kinds(db, site, "hall-door") == ["door.open"])
    gateways.stop(first)
    gateways.start(site)  # a new process: the adapter's memory comes from the store
    publish(zigbee, f"zigbee2mqtt/{name}",
            zigbee_state(contact=False, last_seen="2026-11-23T01:00:30.000Z"),
            zigbee_state(contact=True, last_seen="2026-11-23T01:01:00.000Z"))
    assert wait_until(lambda: len(kinds(db, site, "hall-door")) == 3)
    assert kinds(db, site, "hall-door") == ["door.open", "heartbeat", "door.closed"]


def test_zigbee_bridge_messages_and_commands_are_dropped_without_a_dead_letter(
        site, db, gateways, bridge) -> None:
    name = unique("hall door")
    add_bridged_device(site, "hall-door", "f1", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, name)
    gateways.start(site)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    publish(zigbee, f"zigbee2mqtt/bridge/{name}", b'{"state":"online"}')
    publish(zigbee, f"zigbee2mqtt/{name}/set", b'{"state":"ON"}')
    publish(zigbee, f"zigbee2mqtt/{name}", zigbee_state(contact=True))  # the sentinel
    assert wait_until(lambda: kinds(db, site, "hall-door") == ["door.closed"])
    assert dead_letters(db, f"zigbee2mqtt/bridge/{name}") == []
    assert dead_letters(db, f"zigbee2mqtt/{name}/set") == []


def test_zigbee_message_from_an_unmapped_friendly_name_is_dead_lettered_never_guessed(
        site, db, gateways, bridge) -> None:
    name = unique("unknown door")
    gateways.start(site)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    publish(zigbee, f"zigbee2mqtt/{name}", zigbee_state(contact=False))
    assert wait_until(lambda: dead_letters(db, f"zigbee2mqtt/{name}") != [])
    # Every gateway with the bridges on hears it (other tests' too): one letter each.
    _, detail = dead_letters(db, f"zigbee2mqtt/{name}")[0]
    assert {r for r, _ in dead_letters(db, f"zigbee2mqtt/{name}")} == {"unmapped_external_id"}
    assert f"--source zigbee2mqtt --external-id '{name}'" in detail
    assert "nattero device add" in detail


def test_zigbee_message_for_a_revoked_device_is_dead_lettered(site, db, gateways,
                                                               bridge) -> None:
    name = unique("hall door")
    add_bridged_device(site, "hall-door", "f1", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, name)
    provisioning.revoke_device(get_settings(), site, "hall-door")
    gateways.start(site)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    publish(zigbee, f"zigbee2mqtt/{name}", zigbee_state(contact=False))
    assert wait_until(lambda: dead_letters(db, f"zigbee2mqtt/{name}") != [])
    assert [r for r, _ in dead_letters(db, f"zigbee2mqtt/{name}")] == ["revoked_device"]
    assert kinds(db, site, "hall-door") == []


# -- ChirpStack -------------------------------------------------------------------------

def test_chirpstack_ws301_open_close_and_periodic_uplink_become_door_events_and_a_heartbeat(
        site, db, gateways, bridge) -> None:
    dev_eui = new_dev_eui()
    # Installers copy the DevEUI from ChirpStack in upper case; it is stored in lower case.
    external_id = names.check_external_id(DeviceSource.CHIRPSTACK, dev_eui.upper())
    assert external_id == dev_eui
    add_bridged_device(site, "f1-door", "f1", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
                       external_id, "milesight-ws301")
    gateways.start(site)
    lora = bridge(DeviceSource.CHIRPSTACK)
    publish(lora, uplink_topic(dev_eui), *(chirpstack_payload(name, dev_eui) for name in (
        "up_ws301_open.json", "up_ws301_closed.json", "up_ws301_closed_periodic.json")))
    assert wait_until(lambda: len(kinds(db, site, "f1-door")) == 3)
    assert stored(db, site, "f1-door") == [
        ("door.open", utc("2026-11-23T02:10:03.120514+00:00"), 100),
        ("door.closed", utc("2026-11-23T02:14:41.551200+00:00"), 100),
        ("heartbeat", utc("2026-11-23T08:14:41.902200+00:00"), 100),
    ]


def test_chirpstack_ws202_trigger_and_normal_become_motion_and_presence_events(
        site, db, gateways, bridge) -> None:
    dev_eui = new_dev_eui()
    add_bridged_device(site, "lounge-pir", "lounge", DeviceKind.MOTION,
                       DeviceSource.CHIRPSTACK, dev_eui, "milesight-ws202")
    gateways.start(site)
    lora = bridge(DeviceSource.CHIRPSTACK)
    publish(lora, uplink_topic(dev_eui), chirpstack_payload("up_ws202_trigger.json", dev_eui),
            chirpstack_payload("up_ws202_normal.json", dev_eui))
    assert wait_until(lambda: len(kinds(db, site, "lounge-pir")) == 3)
    assert kinds(db, site, "lounge-pir") == ["motion", "presence.on", "presence.off"]


def test_chirpstack_status_event_is_a_heartbeat_with_the_battery_level(
        site, db, gateways, bridge) -> None:
    dev_eui = new_dev_eui()
    add_bridged_device(site, "f1-door", "f1", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
                       dev_eui, "milesight-ws301")
    gateways.start(site)
    lora = bridge(DeviceSource.CHIRPSTACK)
    publish(lora, uplink_topic(dev_eui, "status"), chirpstack_payload("status.json", dev_eui))
    assert wait_until(lambda: kinds(db, site, "f1-door") == ["heartbeat"])
    assert stored(db, site, "f1-door")[0][2] == 88


def test_chirpstack_retry_with_the_same_deduplication_id_is_stored_once_even_after_a_restart(
        site, db, gateways, bridge) -> None:
    dev_eui = new_dev_eui()
    add_bridged_device(site, "f1-door", "f1", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
                       dev_eui, "milesight-ws301")
    lora = bridge(DeviceSource.CHIRPSTACK)
    uplink = chirpstack_payload("up_ws301_open.json", dev_eui)
    first = gateways.start(site)
    publish(lora, uplink_topic(dev_eui), uplink, uplink)
    publish(lora, uplink_topic(dev_eui, "status"), chirpstack_payload("status.json", dev_eui))
    assert wait_until(lambda: "heartbeat" in kinds(db, site, "f1-door"))
    gateways.stop(first)
    gateways.start(site)
    # The same uplink once more, after the restart (a broker redelivery looks like this).
    publish(lora, uplink_topic(dev_eui), uplink,
            chirpstack_payload("up_ws301_closed.json", dev_eui))  # then the sentinel
    assert wait_until(lambda: "door.closed" in kinds(db, site, "f1-door"))
    # (The status fixture is from 2022, so its heartbeat sorts first.)
    assert kinds(db, site, "f1-door") == ["heartbeat", "door.open", "door.closed"]


@pytest.mark.parametrize(("fixture", "reason"), [
    ("up_without_codec.json", "missing_codec"),
    ("v3_up.json", "chirpstack_v3_payload"),
])
def test_chirpstack_uplink_that_cannot_be_read_is_dead_lettered_with_its_own_reason(
        site, db, gateways, bridge, fixture, reason) -> None:
    dev_eui = new_dev_eui()
    add_bridged_device(site, "f1-door", "f1", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
                       dev_eui, "milesight-ws301")
    gateways.start(site)
    lora = bridge(DeviceSource.CHIRPSTACK)
    publish(lora, uplink_topic(dev_eui), chirpstack_payload(fixture, dev_eui))
    assert wait_until(lambda: dead_letters(db, uplink_topic(dev_eui)) != [])
    assert [r for r, _ in dead_letters(db, uplink_topic(dev_eui))] == [reason]
    assert kinds(db, site, "f1-door") == []


def test_chirpstack_uplink_stamped_in_the_future_is_dead_lettered_not_stored(
        site, db, gateways, bridge) -> None:
    # A bridge carries the device's (or network server's) time: the same skew rule applies.
    dev_eui = new_dev_eui()
    add_bridged_device(site, "f1-door", "f1", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
                       dev_eui, "milesight-ws301")
    gateways.start(site)
    lora = bridge(DeviceSource.CHIRPSTACK)
    publish(lora, uplink_topic(dev_eui), chirpstack_payload(
        "up_ws301_open.json", dev_eui, time="2099-11-23T02:10:03.120514+00:00"))
    assert wait_until(lambda: dead_letters(db, uplink_topic(dev_eui)) != [])
    [(reason, detail)] = dead_letters(db, uplink_topic(dev_eui))
    assert reason == "future_ts"
    assert "2099-11-23" in detail
    assert kinds(db, site, "f1-door") == []


def test_chirpstack_uplink_from_an_unmapped_dev_eui_is_dead_lettered(site, db, gateways,
                                                                     bridge) -> None:
    dev_eui = new_dev_eui()
    gateways.start(site)
    lora = bridge(DeviceSource.CHIRPSTACK)
    publish(lora, uplink_topic(dev_eui), chirpstack_payload("up_ws301_open.json", dev_eui))
    assert wait_until(lambda: dead_letters(db, uplink_topic(dev_eui)) != [])
    _, detail = dead_letters(db, uplink_topic(dev_eui))[0]
    assert {r for r, _ in dead_letters(db, uplink_topic(dev_eui))} == {"unmapped_external_id"}
    assert f"--source chirpstack --external-id {dev_eui}" in detail


def test_chirpstack_join_event_stores_nothing_and_is_no_dead_letter(site, db, gateways,
                                                                    bridge) -> None:
    dev_eui = new_dev_eui()
    add_bridged_device(site, "f1-door", "f1", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
                       dev_eui, "milesight-ws301")
    gateways.start(site)
    lora = bridge(DeviceSource.CHIRPSTACK)
    publish(lora, uplink_topic(dev_eui, "join"), chirpstack_payload("join.json", dev_eui))
    publish(lora, uplink_topic(dev_eui), chirpstack_payload("up_ws301_open.json", dev_eui))
    assert wait_until(lambda: kinds(db, site, "f1-door") == ["door.open"])
    assert dead_letters(db, uplink_topic(dev_eui, "join")) == []


# -- broker accounts --------------------------------------------------------------------

def test_bridge_account_cannot_publish_as_a_native_device_or_as_the_other_bridge(
        site, db, gateways, bridge, add_device) -> None:
    add_device(site, "native-door", "f1", DeviceKind.DOOR)
    dev_eui, name = new_dev_eui(), unique("hall door")
    add_bridged_device(site, "lora-door", "f1", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
                       dev_eui, "milesight-ws301")
    add_bridged_device(site, "zigbee-door", "f1", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT,
                       name)
    gateways.start(site)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    publish(zigbee, f"nattero/v1/{site}/native-door/events", event_payload("door.open"))
    publish(zigbee, uplink_topic(dev_eui), chirpstack_payload("up_ws301_open.json", dev_eui))
    # The broker keeps one client's messages in order: once this one is stored, a forgery
    # the broker had let through would have been stored before it.
    publish(zigbee, f"zigbee2mqtt/{name}", zigbee_state(contact=True))
    assert wait_until(lambda: kinds(db, site, "zigbee-door") == ["door.closed"])
    assert kinds(db, site, "native-door") == []
    assert kinds(db, site, "lora-door") == []


def test_revoked_bridge_cannot_connect_again(stack) -> None:
    name = unique("bridge")
    credentials = bridges.add_bridge(get_settings(), name, DeviceSource.CHIRPSTACK)
    DeviceClient(stack.mqtt_host, stack.mqtt_port, credentials.username,
                 credentials.password).close()
    bridges.revoke_bridge(get_settings(), name)
    with pytest.raises(ConnectionRefusedError):
        DeviceClient(stack.mqtt_host, stack.mqtt_port, credentials.username,
                     credentials.password)
    with pytest.raises(ProvisioningError, match="no bridge"):
        bridges.revoke_bridge(get_settings(), name)


def test_bridge_of_a_native_source_or_twice_the_same_name_is_refused(stack) -> None:
    with pytest.raises(ProvisioningError, match="zigbee2mqtt or chirpstack"):
        bridges.add_bridge(get_settings(), unique("bridge"), DeviceSource.NATIVE)
    name = unique("bridge")
    bridges.add_bridge(get_settings(), name, DeviceSource.ZIGBEE2MQTT)
    try:
        with pytest.raises(ProvisioningError, match="exists already"):
            bridges.add_bridge(get_settings(), name, DeviceSource.ZIGBEE2MQTT)
    finally:
        bridges.revoke_bridge(get_settings(), name)


@pytest.mark.pure
def test_unknown_mapping_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ProvisioningError) as refused:
        names.check_mapping(DeviceSource.CHIRPSTACK, "milesight-ws999")
    assert "milesight-ws301, milesight-ws301-legacy" in str(refused.value)
    with pytest.raises(ProvisioningError, match="needs --mapping"):
        names.check_mapping(DeviceSource.CHIRPSTACK, None)
    with pytest.raises(ProvisioningError, match="chirpstack devices only"):
        names.check_mapping(DeviceSource.ZIGBEE2MQTT, "elsys")
    assert names.check_mapping(DeviceSource.CHIRPSTACK, "elsys") == "elsys"


@pytest.mark.pure
@pytest.mark.parametrize("name", ["bridge", "door/availability", "door/set", "a//b", "door/#"])
def test_friendly_name_the_gateway_could_not_read_is_refused(name: str) -> None:
    with pytest.raises(ProvisioningError, match="friendly name"):
        names.check_external_id(DeviceSource.ZIGBEE2MQTT, name)


@pytest.mark.pure
def test_dev_eui_is_stored_in_lower_case_and_nonsense_refused() -> None:
    assert names.check_external_id(DeviceSource.CHIRPSTACK,
                                     "24E1-2413-6B31-6363") == "24e124136b316363"
    with pytest.raises(ProvisioningError, match="not a DevEUI"):
        names.check_external_id(DeviceSource.CHIRPSTACK, "flat-12-door")


# -- rules ------------------------------------------------------------------------------

@pytest.fixture
def bridged_pipeline(migrated: StackInfo) -> Iterator[Callable[[str], Gateway]]:
    """Gateway + rules for one site, like the run_pipeline fixture, with the bridges on."""
    started: list[tuple[Gateway, RulesRuntime, EventHistory | None]] = []

    def start(site: str) -> Gateway:
        settings = bridged_settings(site)
        rules = RulesRuntime(settings.resolved_database_url(), sites=[site])
        rules.load()
        gateway = Gateway(settings, hooks=[rules.on_batch])
        history = with_bridges(gateway, [site])
        rules.start()
        gateway.start()
        started.append((gateway, rules, history))
        return gateway

    yield start
    for gateway, rules, history in started:
        gateway.stop()
        rules.stop()
        if history is not None:
            history.close()


def left_flat(db: psycopg.Connection, site: str, room: str) -> list[tuple[Any, ...]]:
    return db.execute("SELECT rule, severity, status, escalated, count, late FROM alerts "
                      "WHERE site = %s AND room = %s AND rule = 'left_flat' ORDER BY id",
                      (site, room)).fetchall()


def test_zigbee_flat_door_raises_and_escalates_left_flat_like_a_native_door(
        site, db, stack, add_device, bridge, bridged_pipeline) -> None:
    settings = get_settings()
    provisioning.add_room(settings, site, "f2", RoomKind.FLAT, "Lejlighed 2")
    provisioning.record_basis(settings, site, "f2", consent=True,
                              valid_from=NIGHT.date() - timedelta(days=30))
    name = unique("flat 1 door")
    add_bridged_device(site, "f1-door", "f1", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, name,
                       heartbeat_s=3600)
    user, password = add_device(site, "f2-door", "f2", DeviceKind.DOOR, 3600)
    native = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    zigbee = bridge(DeviceSource.ZIGBEE2MQTT)
    bridged_pipeline(site)

    def both(kind: str, contact: bool, at: datetime) -> None:
        last_seen = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        publish(zigbee, f"zigbee2mqtt/{name}", zigbee_state(contact=contact, last_seen=last_seen))
        publish(native, f"nattero/v1/{site}/f2-door/events", event_payload(kind, ts=at))

    try:
        both("door.closed", True, NIGHT - timedelta(minutes=5))
        both("door.open", False, NIGHT)  # 02:00 in Copenhagen
        assert wait_until(lambda: left_flat(db, site, "f1") != [] and
                          left_flat(db, site, "f2") != [])
        assert left_flat(db, site, "f1") == left_flat(db, site, "f2") == [
            ("left_flat", "normal", "open", False, 1, False)]
        # Sixteen minutes later, still out: a repeated report of the open door (a heartbeat)
        # moves the site's clock past the 15-minute grace, as a native heartbeat does.
        both("heartbeat", False, NIGHT + timedelta(minutes=16))
        assert wait_until(lambda: left_flat(db, site, "f1")[0][3] is True and
                          left_flat(db, site, "f2")[0][3] is True)
        assert wait_until(lambda: kinds(db, site, "f1-door") == kinds(db, site, "f2-door") == [
            "door.closed", "door.open", "heartbeat"])
        assert left_flat(db, site, "f1") == left_flat(db, site, "f2") == [
            ("left_flat", "high", "open", True, 1, False)]
    finally:
        native.close()
