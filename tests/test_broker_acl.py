"""Device accounts may publish as themselves only; the gateway hears them; revoking bites."""

from __future__ import annotations

import queue
import secrets
import subprocess
import threading
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.settings import BrokerAccount, StackInfo
from provisioning.broker_accounts import BrokerAccounts

WAIT_S = 5.0


class Peer:
    """A paho MQTT v5 client whose callbacks land in events and queues a test can wait on."""

    def __init__(self, stack: StackInfo, username: str, password: str,
                 client_id: str | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"test-{uuid.uuid4().hex}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.connect(stack.mqtt_host, stack.mqtt_port)
        self.client.loop_start()
        assert self.connected.wait(WAIT_S), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _f: object, reason: ReasonCode,
                    _p: object) -> None:
        self.connack = reason
        self.connected.set()

    def _on_disconnect(self, _c: object, _u: object, _f: object, _reason: ReasonCode,
                       _p: object) -> None:
        self.disconnected.set()

    def _on_subscribe(self, _c: object, _u: object, _mid: int, reasons: list[ReasonCode],
                      _p: object) -> None:
        self.subacks.put(reasons)

    def subscribe(self, topic: str) -> ReasonCode:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=WAIT_S)[0]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def accounts(stack: StackInfo) -> Iterator[BrokerAccounts]:
    with BrokerAccounts(stack.mqtt_host, stack.mqtt_port, stack.broker_admin) as accounts:
        yield accounts


@pytest.fixture
def site() -> str:
    return f"s1-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def device(accounts: BrokerAccounts, site: str) -> Iterator[BrokerAccount]:
    account = BrokerAccount(username=f"{site}-d1", password=secrets.token_urlsafe(16))
    accounts.create_device_account(account.username, account.password, f"nattero/v1/{site}/d1",
                                   client_id=account.username)
    yield account
    if accounts.account_exists(account.username):
        accounts.delete_account(account.username)


@pytest.fixture
def gateway(stack: StackInfo) -> Iterator[Peer]:
    peer = Peer(stack, stack.gateway.username, stack.gateway.password)
    assert not peer.subscribe("nattero/v1/#").is_failure
    yield peer
    peer.close()


@pytest.fixture
def device_peer(stack: StackInfo, device: BrokerAccount) -> Iterator[Peer]:
    peer = Peer(stack, device.username, device.password, device.username)
    assert peer.connack is not None and not peer.connack.is_failure
    yield peer
    peer.close()


def next_message_on(gateway: Peer, prefix: str) -> mqtt.MQTTMessage:
    """The next message the gateway receives under ``prefix`` (other tests share the broker)."""
    while True:
        message = gateway.messages.get(timeout=WAIT_S)
        if message.topic.startswith(prefix):
            return message


def test_device_publishes_its_own_events_and_the_gateway_receives_them(
        gateway: Peer, device_peer: Peer, site: str) -> None:
    device_peer.publish(f"nattero/v1/{site}/d1/events", '{"kind": "door.open"}')
    message = next_message_on(gateway, f"nattero/v1/{site}/")
    assert message.topic == f"nattero/v1/{site}/d1/events"
    assert message.payload == b'{"kind": "door.open"}'


def test_device_cannot_publish_as_another_device(
        gateway: Peer, device_peer: Peer, site: str) -> None:
    device_peer.publish(f"nattero/v1/{site}/d2/events", "forged")
    # The broker keeps one client's messages in order: once the allowed one arrives, a
    # delivered forgery would already have arrived before it.
    device_peer.publish(f"nattero/v1/{site}/d1/events", "own")
    message = next_message_on(gateway, f"nattero/v1/{site}/")
    assert (message.topic, message.payload) == (f"nattero/v1/{site}/d1/events", b"own")


def test_device_may_not_subscribe_to_everything(device_peer: Peer) -> None:
    assert device_peer.subscribe("#").is_failure


def test_wrong_password_is_refused_at_connect(
        stack: StackInfo, device: BrokerAccount) -> None:
    peer = Peer(stack, device.username, "not-" + device.password, device.username)
    try:
        assert peer.connack is not None
        assert peer.connack.value in (134, 135)
    finally:
        peer.close()


def test_deleted_device_is_disconnected_at_once_and_cannot_reconnect(
        stack: StackInfo, accounts: BrokerAccounts, device: BrokerAccount,
        device_peer: Peer) -> None:
    device_peer.client.reconnect_delay_set(60, 120)  # keep paho from reconnecting by itself
    accounts.delete_account(device.username)
    assert device_peer.disconnected.wait(WAIT_S), "broker kept the deleted device connected"
    assert not accounts.account_exists(device.username)
    again = Peer(stack, device.username, device.password, device.username)
    try:
        assert again.connack is not None and again.connack.is_failure
    finally:
        again.close()


def test_mosquitto_pub_with_a_wrong_password_fails(
        stack: StackInfo, device: BrokerAccount, site: str) -> None:
    def mosquitto_pub(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["mosquitto_pub", "-h", stack.mqtt_host, "-p", str(stack.mqtt_port), "-V", "mqttv5",
             "-q", "1", "-i", device.username, "-u", device.username, "-P", password,
             "-t", f"nattero/v1/{site}/d1/events", "-m", "{}"],
            capture_output=True, text=True, timeout=30, check=False)

    assert mosquitto_pub(device.password).returncode == 0
    refused = mosquitto_pub("wrong")
    assert refused.returncode != 0
    assert "bad user name or password" in refused.stderr.lower() or \
        "not authori" in refused.stderr.lower()


def retained_under(stack: StackInfo, prefix: str) -> dict[str, int]:
    """What a new subscriber to ``prefix/#`` is handed as retained: topic -> payload size.
    The device's own ``status`` is retained last in each test, as a sentinel."""
    reader = Peer(stack, stack.gateway.username, stack.gateway.password)
    try:
        assert not reader.subscribe(f"{prefix}/#").is_failure
        seen: dict[str, int] = {}
        while f"{prefix}/status" not in seen or not reader.messages.empty():
            message = reader.messages.get(timeout=WAIT_S)
            if message.retain:
                seen[message.topic] = len(message.payload)
        return seen
    finally:
        reader.close()
        # Break the Peer <-> paho cycle (bound-method callbacks) so paho's __del__ closes
        # its socket pair now, not a cyclic collection in the middle of a later test.
        reader.client.on_connect = reader.client.on_disconnect = None
        reader.client.on_subscribe = reader.client.on_message = None


def test_device_cannot_park_a_retained_message_outside_its_status_topic(
        stack: StackInfo, device_peer: Peer, site: str) -> None:
    prefix = f"nattero/v1/{site}/d1"
    device_peer.client.publish(f"{prefix}/junk", b"x" * 1000, qos=1, retain=True) \
        .wait_for_publish(WAIT_S)
    device_peer.client.publish(f"{prefix}/status", b"online", qos=1, retain=True) \
        .wait_for_publish(WAIT_S)
    assert retained_under(stack, prefix) == {f"{prefix}/status": 6}


@pytest.mark.parametrize(("channel", "size"), [("junk", 5_000_000), ("status", 2_000_000)])
def test_oversized_retained_message_disconnects_the_device_and_is_not_kept(
        stack: StackInfo, device: BrokerAccount, site: str, channel: str, size: int) -> None:
    prefix = f"nattero/v1/{site}/d1"

    def publish_retained(topic: str, payload: bytes) -> subprocess.CompletedProcess[bytes]:
        # MQTT 3.1.1: an MQTT 5 client learns the limit at CONNACK and would not even send.
        # The account's own client id (its username): the one a bound account may use.
        return subprocess.run(
            ["mosquitto_pub", "-h", stack.mqtt_host, "-p", str(stack.mqtt_port),
             "-V", "mqttv311", "-i", device.username, "-u", device.username,
             "-P", device.password, "-q", "1", "-r", "-t", topic, "-s"],
            input=payload, capture_output=True, timeout=30, check=False)

    assert publish_retained(f"{prefix}/{channel}", b"x" * size).returncode != 0, \
        "the broker took an oversized packet"
    assert publish_retained(f"{prefix}/status", b"online").returncode == 0
    assert retained_under(stack, prefix) == {f"{prefix}/status": 6}
