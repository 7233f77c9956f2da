"""Every device and bridge account connects only with its own client id (issue 12).

Without the binding, any device account could connect with the gateway's client id and a
clean start, and the broker would drop the gateway's persistent session with every queued
event; or with another device's id, kicking that device off and firing its Last Will.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from core.errors import NotConfigured
from core.events import DeviceKind, DeviceSource
from core.settings import Settings, StackInfo, get_settings
from gateway.service import Gateway
from provisioning import bridges
from tests.support.cli import nattero_cli
from tests.support.devices import DeviceClient, event_payload
from tests.support.store import unique
from tests.support.waiting import wait_until

NOT_AUTHORISED = "Not authorized"  # paho's name of CONNACK reason code 135


def stored(db: psycopg.Connection, site: str) -> tuple[int, int]:
    """(events, distinct event ids) stored for ``site``."""
    row = db.execute("SELECT count(*), count(DISTINCT event_id) FROM events WHERE site = %s",
                     (site,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def presence(db: psycopg.Connection, site: str, device: str) -> str | None:
    row = db.execute("SELECT presence FROM devices WHERE site = %s AND id = %s",
                     (site, device)).fetchone()
    return None if row is None else str(row[0])


def offline_alerts(db: psycopg.Connection, site: str) -> int:
    row = db.execute("SELECT count(*) FROM alerts WHERE site = %s AND rule = 'sensor_offline'",
                     (site,)).fetchone()
    return int(row[0]) if row else 0


def status_topic(site: str, device: str) -> str:
    return f"nattero/v1/{site}/{device}/status"


def come_online(device: DeviceClient, db: psycopg.Connection, site: str,
                device_id: str) -> None:
    """Publish the retained ``online`` and wait until a gateway stored it."""
    device.publish(status_topic(site, device_id), b"online", retain=True)
    device.flush()
    assert wait_until(lambda: presence(db, site, device_id) == "online", 30), \
        "no gateway stored the device's online status"


class BrokerLog:
    """What Mosquitto logged since this object was made."""

    def __init__(self) -> None:
        self.path = get_settings().state_dir.resolve() / "mosquitto" / "mosquitto.log"
        self.start = self.path.stat().st_size

    def since(self) -> str:
        with Path(self.path).open("rb") as log:
            log.seek(self.start)
            return log.read().decode(errors="replace")


def take_over(stack: StackInfo, username: str, password: str, client_id: str) -> str:
    """Connect ``username`` with ``client_id`` and a clean start, then leave: the broker's
    refusal, or "accepted" (the takeover happened)."""
    try:
        DeviceClient(stack.mqtt_host, stack.mqtt_port, username, password, client_id).close()
    except ConnectionRefusedError as refusal:
        return str(refusal)
    return "accepted"


class Gateways:
    """In-process gateways that a test may stop and start again; stopped at teardown."""

    def __init__(self) -> None:
        self.running: list[Gateway] = []

    def start(self, settings: Settings) -> Gateway:
        gateway = Gateway(settings)
        gateway.start()
        self.running.append(gateway)
        return gateway

    def stop(self, gateway: Gateway) -> None:
        self.running.remove(gateway)
        gateway.stop()


@pytest.fixture
def gateways(migrated: StackInfo) -> Iterator[Gateways]:
    made = Gateways()
    yield made
    for gateway in list(made.running):
        made.stop(gateway)


def gateway_settings(site: str) -> Settings:
    """A gateway of its own for ``site``: tests side by side never share a session."""
    return Settings(gateway_sites=[site], gateway_client_id=unique("gw"),
                    gateway_session_expiry_s=600, gateway_bridges=False)


def test_device_with_the_gateways_client_id_is_refused_and_queued_events_are_stored_once(
        site, db, stack, add_device, gateways) -> None:
    user, password = add_device(site, "m-1", "lounge", DeviceKind.MOTION)
    intruder, intruder_password = add_device(site, "m-2", "lounge", DeviceKind.MOTION)
    settings = gateway_settings(site)
    gateway = gateways.start(settings)  # creates the persistent session, its subscriptions
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    come_online(device, db, site, "m-1")
    gateways.stop(gateway)

    topic = f"nattero/v1/{site}/m-1/events"
    device.publish_many((topic, event_payload("motion", event_id=f"q{n}")) for n in range(50))
    log = BrokerLog()
    # The takeover of the finding: a device account, the gateway's id, a clean start.
    answer = take_over(stack, intruder, intruder_password, settings.resolved_gateway_client_id())

    gateways.start(settings)  # the same client id: resumes the session the broker kept
    assert wait_until(lambda: stored(db, site) == (50, 50), 20), stored(db, site)
    assert answer == NOT_AUTHORISED
    assert "not authorised" in log.since()
    device.close()


def test_device_with_the_gateways_client_id_is_refused_while_the_gateway_runs(
        site, db, stack, add_device, gateways) -> None:
    user, password = add_device(site, "m-1", "lounge", DeviceKind.MOTION)
    intruder, intruder_password = add_device(site, "m-2", "lounge", DeviceKind.MOTION)
    settings = gateway_settings(site)
    gateway = gateways.start(settings)
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    come_online(device, db, site, "m-1")
    topic = f"nattero/v1/{site}/m-1/events"
    answers = []
    for batch in range(4):
        device.publish_many((topic, event_payload("motion", event_id=f"b{batch}-{n}"))
                            for n in range(50))
        answers.append(take_over(stack, intruder, intruder_password,
                                 settings.resolved_gateway_client_id()))
    assert wait_until(lambda: stored(db, site) == (200, 200), 20), stored(db, site)
    assert answers == [NOT_AUTHORISED] * 4
    assert gateway.connected
    device.close()


def test_device_with_another_devices_client_id_is_refused_and_raises_no_offline_alert(
        site, db, stack, add_device, run_pipeline) -> None:
    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    intruder, intruder_password = add_device(site, "f1-bed", "f1", DeviceKind.BED)
    run_pipeline(site)
    door = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password,
                        will=(status_topic(site, "f1-door"), "offline"))
    come_online(door, db, site, "f1-door")

    answer = take_over(stack, intruder, intruder_password, user)

    # The broker keeps one client's messages in order, and a Last Will fired by a takeover
    # would go out before the kicked device could publish again: once this event is
    # stored, an `offline` would have been stored too.
    door.publish_many([(f"nattero/v1/{site}/f1-door/events", event_payload("heartbeat"))])
    assert wait_until(lambda: stored(db, site)[0] == 1, 20)
    assert offline_alerts(db, site) == 0
    assert presence(db, site, "f1-door") == "online"
    assert door.disconnects == 0, "the broker kicked the device off"
    assert answer == NOT_AUTHORISED
    door.close()


def test_device_with_its_own_client_id_publishes_and_is_stored(
        site, db, stack, add_device, run_gateway) -> None:
    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    run_gateway(site)
    door = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password, client_id=user)
    door.publish_many([(f"nattero/v1/{site}/f1-door/events", event_payload("door.open"))])
    assert wait_until(lambda: stored(db, site)[0] == 1, 20)
    door.close()


def test_bridge_may_connect_only_with_its_own_client_id(
        site, db, stack, add_device, gateways) -> None:
    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    settings = gateway_settings(site)
    gateway = gateways.start(settings)
    door = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password,
                        will=(status_topic(site, "f1-door"), "offline"))
    come_online(door, db, site, "f1-door")
    gateways.stop(gateway)
    door.publish_many((f"nattero/v1/{site}/f1-door/events", event_payload("heartbeat"))
                      for _ in range(20))
    name = unique("zigbee")
    bridge = bridges.add_bridge(get_settings(), name, DeviceSource.ZIGBEE2MQTT)
    try:
        answers = [take_over(stack, bridge.username, bridge.password, foreign)
                   for foreign in (settings.resolved_gateway_client_id(), user)]
        gateways.start(settings)
        assert wait_until(lambda: stored(db, site) == (20, 20), 20), stored(db, site)
        assert door.disconnects == 0, "the broker kicked the device off"
        assert answers == [NOT_AUTHORISED] * 2
        assert bridge.client_id == bridge.username
        own = DeviceClient(stack.mqtt_host, stack.mqtt_port, bridge.username, bridge.password,
                           client_id=bridge.client_id)
        own.publish_many([(f"zigbee2mqtt/{name}-door", json.dumps({"contact": True}))])
        own.close()
    finally:
        door.close()
        bridges.revoke_bridge(get_settings(), name)


def test_bind_client_ids_binds_an_account_made_before_the_binding(
        site, stack, add_device) -> None:
    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    # An account from before this release: dynsec's setClientId without an id unbinds it.
    subprocess.run(["mosquitto_ctrl", "-h", stack.mqtt_host, "-p", str(stack.mqtt_port),
                    "-u", stack.broker_admin.username, "-P", stack.broker_admin.password,
                    "dynsec", "setClientId", user], check=True, capture_output=True, timeout=30)
    DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password, unique("any")).close()

    result = nattero_cli("broker", "bind-client-ids", "--json")
    assert result.returncode == 0, result.stderr
    assert user in json.loads(result.stdout)["bound"]
    assert take_over(stack, user, password, unique("any")) == NOT_AUTHORISED
    DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password, client_id=user).close()

    again = nattero_cli("broker", "bind-client-ids", "--json")
    assert user not in json.loads(again.stdout)["bound"]


@pytest.mark.pure
def test_production_refuses_the_old_guessable_gateway_client_id() -> None:
    with pytest.raises(ValidationError, match="NATTERO_GATEWAY_CLIENT_ID is the guessable"):
        Settings(mode="production", secret_key="s" * 48, gateway_client_id="nattero-gateway")


@pytest.mark.pure
def test_gateway_without_a_client_id_or_local_stack_is_told_to_set_one(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, gateway_username="gw", gateway_password="pw")
    with pytest.raises(NotConfigured, match="NATTERO_GATEWAY_CLIENT_ID"):
        settings.resolved_gateway_client_id()
