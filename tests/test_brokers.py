"""No single broker between a sensor and the database (issue 18 §3).

Real Mosquittos as `nattero up --ha` starts them (``deploy.brokers``): two central brokers
and a site hub bridged to each, beside the test stack's database. Devices publish to the
hub; a gateway listens on both central brokers. Killed -9 one at a time (or both central
brokers at once, a WAN outage seen from the site), no event a device had acknowledged is
lost, and each is stored once although the gateway hears it twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import provisioning
from core import metrics
from core.events import DeviceKind, RoomKind
from core.settings import Settings, StackInfo
from gateway.service import Gateway
from provisioning.broker_accounts import BrokerAccountError, BrokerAccounts
from tests.support.api import Account, ApiServer
from tests.support.brokers import RedundantBrokers, redundant_brokers
from tests.support.devices import DeviceClient, event_payload
from tests.support.pipeline import gateway_env
from tests.support.store import unique
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def topology(migrated: StackInfo) -> Iterator[RedundantBrokers]:
    with redundant_brokers("brokers", 56700) as found:
        yield found


@pytest.fixture
def site_device(topology: RedundantBrokers, settings: Settings
                ) -> tuple[str, provisioning.DeviceCredentials]:
    site = unique("hub")
    on_brokers = topology.provisioning(settings)
    provisioning.add_site(on_brokers, site, "Hub")
    provisioning.add_room(on_brokers, site, "lounge", RoomKind.COMMON, "Dagligstue")
    device = provisioning.add_device(on_brokers, site, "m-1", "lounge", DeviceKind.MOTION)
    return site, device


@pytest.fixture
def gateway(topology: RedundantBrokers, settings: Settings,
            site_device: tuple[str, provisioning.DeviceCredentials]) -> Iterator[Gateway]:
    site, _ = site_device
    env = gateway_env(site)
    service = Gateway(topology.gateway(settings).model_copy(update={
        "gateway_sites": [site], "gateway_client_id": env["NATTERO_GATEWAY_CLIENT_ID"],
        "gateway_session_expiry_s": 600, "gateway_bridges": False}))
    service.start()
    try:
        assert wait_until(lambda: all(service.brokers().values()), 15), service.brokers()
        # A broker writes its sessions every 2 s (``autosave_interval``): one killed -9
        # sooner forgets this brand-new session, and what the hub forwards to it before the
        # gateway subscribes again has nobody to go to. A real gateway's session is old.
        time.sleep(2.5)
        yield service
    finally:
        service.stop()


def _stored(db: psycopg.Connection, site: str) -> list[str]:
    return [str(i) for (i,) in db.execute(
        "SELECT event_id FROM events WHERE site = %s ORDER BY event_id", (site,))]


def _device(topology: RedundantBrokers, device: provisioning.DeviceCredentials) -> DeviceClient:
    host, port = topology.hub
    return DeviceClient(host, port, device.username, device.password)


class Stream:
    """A device publishing numbered heartbeats to the hub in a thread, ``per_s`` a second,
    until stopped; ``acked`` holds the ids the hub acknowledged (paho resends the rest
    after a reconnect)."""

    def __init__(self, client: DeviceClient, site: str, per_s: float) -> None:
        self.client, self.site, self.per_s = client, site, per_s
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        started = time.monotonic()
        while not self._stop.is_set():
            event_id = f"s-{n:05d}"
            self.sent.append(event_id)
            self.client.publish(f"nattero/v1/{self.site}/m-1/events",
                                event_payload("heartbeat", event_id=event_id))
            n += 1
            time.sleep(max(0.0, started + n / self.per_s - time.monotonic()))

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(10)
        self.client.flush(90)  # every one acknowledged by the hub, resent if need be
        return self.sent


def test_an_event_through_the_hub_is_stored_once_though_both_central_brokers_deliver_it(
        topology: RedundantBrokers, gateway: Gateway, db: psycopg.Connection,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    site, device = site_device
    before = metrics.EVENTS_DUPLICATE._value.get()
    client = _device(topology, device)
    ids = [f"e-{n:03d}" for n in range(200)]
    try:
        client.publish_many([(f"nattero/v1/{site}/m-1/events",
                              event_payload("motion", event_id=i)) for i in ids])
    finally:
        client.close()
    assert wait_until(lambda: _stored(db, site) == ids, 30), len(_stored(db, site))
    # Each event came from both central brokers: the second copy was dropped by the store.
    assert wait_until(lambda: metrics.EVENTS_DUPLICATE._value.get() - before >= len(ids), 30)
    time.sleep(1)
    assert metrics.EVENTS_DUPLICATE._value.get() - before == len(ids)
    assert _stored(db, site) == ids


def test_a_bad_message_through_the_hub_is_one_dead_letter_though_both_brokers_deliver_it(
        topology: RedundantBrokers, gateway: Gateway, db: psycopg.Connection,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    """A rejected message has no event id for the store to drop the second copy by: it was
    one dead letter per central broker (doubled counts, the device's allowance spent
    twice). Sent again by the device, it is a dead letter again."""
    site, device = site_device
    topic = f"nattero/v1/{site}/m-1/events"
    copies_before = metrics.DEAD_LETTER_COPIES._value.get()

    def dead_letters() -> int:
        row = db.execute("SELECT count(*) FROM dead_letters WHERE topic = %s",
                         (topic,)).fetchone()
        return int(row[0]) if row else 0

    client = _device(topology, device)
    try:
        client.publish_many([(topic, b"{not json")])
        assert wait_until(lambda: metrics.DEAD_LETTER_COPIES._value.get() > copies_before,
                          30)
        time.sleep(1)
        assert dead_letters() == 1
        client.publish_many([(topic, b"{not json")])  # the device sends it again
        assert wait_until(lambda: dead_letters() == 2, 30)
        assert wait_until(
            lambda: metrics.DEAD_LETTER_COPIES._value.get() - copies_before == 2, 30)
        time.sleep(1)
        assert dead_letters() == 2
    finally:
        client.close()


@pytest.mark.parametrize("victim", ["central-1", "central-2"])
def test_a_central_broker_killed_loses_nothing(
        topology: RedundantBrokers, gateway: Gateway, db: psycopg.Connection,
        site_device: tuple[str, provisioning.DeviceCredentials], victim: str) -> None:
    site, device = site_device
    stream = Stream(_device(topology, device), site, per_s=150)
    try:
        time.sleep(1.5)
        topology.kill(victim)
        time.sleep(2.0)  # the gateway, the hub's bridge and the devices go on without it
        alive = len(_stored(db, site))
        time.sleep(1.0)
        assert len(_stored(db, site)) > alive, "nothing stored while one broker was down"
        topology.start(victim)
        time.sleep(1.5)
    finally:
        sent = stream.stop()
        stream.client.close()
    assert wait_until(lambda: _stored(db, site) == sorted(sent), 60), \
        sorted(set(sent) - set(_stored(db, site)))[:10]
    assert wait_until(lambda: all(gateway.brokers().values()), 20), gateway.brokers()


def test_both_central_brokers_away_the_hub_keeps_and_forwards(
        topology: RedundantBrokers, gateway: Gateway, db: psycopg.Connection,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    site, device = site_device
    for name in ("central-1", "central-2"):
        topology.kill(name)
    client = _device(topology, device)
    ids = [f"w-{n:03d}" for n in range(100)]
    try:
        client.publish_many([(f"nattero/v1/{site}/m-1/events",
                              event_payload("motion", event_id=i)) for i in ids])
        time.sleep(1.0)
        assert _stored(db, site) == []  # nowhere to go: kept by the hub
    finally:
        client.close()
        for name in ("central-1", "central-2"):
            topology.start(name)
    assert wait_until(lambda: _stored(db, site) == ids, 60), len(_stored(db, site))


def test_the_hub_killed_loses_no_acknowledged_event(
        topology: RedundantBrokers, gateway: Gateway, db: psycopg.Connection,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    site, device = site_device
    stream = Stream(_device(topology, device), site, per_s=150)
    try:
        time.sleep(1.5)
        topology.kill("hub")
        time.sleep(1.0)
        topology.start("hub")
        time.sleep(2.0)
    finally:
        sent = stream.stop()
        stream.client.close()
    assert stream.client.disconnects >= 1  # the device did lose its broker
    assert wait_until(lambda: _stored(db, site) == sorted(sent), 60), \
        sorted(set(sent) - set(_stored(db, site)))[:10]


def _accepts(host: str, port: int, username: str, password: str,
             client_id: str | None = None) -> bool:
    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username,
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason.value)
    client.connect(host, port, keepalive=10)
    deadline = time.monotonic() + 5
    while not codes and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.disconnect()
    return codes == [0]


def test_a_device_account_is_on_every_broker_and_removed_from_every_broker(
        topology: RedundantBrokers, settings: Settings,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    site, device = site_device
    brokers = [*topology.central, topology.hub]
    assert all(_accepts(h, p, device.username, device.password) for h, p in brokers)
    provisioning.revoke_device(topology.provisioning(settings), site, "m-1")
    assert not any(_accepts(h, p, device.username, device.password) for h, p in brokers)


def test_provisioning_refuses_to_change_accounts_while_a_broker_is_away(
        topology: RedundantBrokers, settings: Settings,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    site, _ = site_device
    on_brokers = topology.provisioning(settings)
    topology.kill("central-2")
    try:
        with pytest.raises(BrokerAccountError, match="every broker must be reachable"):
            provisioning.add_device(on_brokers, site, "m-2", "lounge", DeviceKind.MOTION)
    finally:
        topology.start("central-2")
    # Nothing half-done: the device can be added once every broker is back.
    added = provisioning.add_device(on_brokers, site, "m-2", "lounge", DeviceKind.MOTION)
    assert all(_accepts(h, p, added.username, added.password)
               for h, p in [*topology.central, topology.hub])


def test_a_gateway_starts_while_one_central_broker_is_down(
        topology: RedundantBrokers, settings: Settings, db: psycopg.Connection,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    site, device = site_device
    topology.kill("central-1")
    env = gateway_env(site)
    service = Gateway(topology.gateway(settings).model_copy(update={
        "gateway_sites": [site], "gateway_client_id": env["NATTERO_GATEWAY_CLIENT_ID"],
        "gateway_session_expiry_s": 600, "gateway_bridges": False}))
    try:
        service.start(wait_connected_s=3)
        assert service.connected
        assert list(service.brokers().values()) == [False, True]
        client = _device(topology, device)
        try:
            client.publish_many([(f"nattero/v1/{site}/m-1/events",
                                  event_payload("motion", event_id="one"))])
        finally:
            client.close()
        assert wait_until(lambda: _stored(db, site) == ["one"], 20)
    finally:
        service.stop()
        topology.start("central-1")



def test_a_site_hub_account_is_on_every_central_broker_for_its_own_site_only(
        topology: RedundantBrokers, settings: Settings,
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    from provisioning.bridges import add_site_hub, revoke_site_hub

    site, _ = site_device
    on_brokers = topology.provisioning(settings)
    hub = add_site_hub(on_brokers, site)
    with BrokerAccounts(*topology.central[0], topology.info.broker_admin) as accounts:
        assert accounts.publish_topics(hub.username) == [f"nattero/v1/{site}/#"]
    assert all(_accepts(h, p, hub.username, hub.password) for h, p in topology.central)
    assert not _accepts(*topology.central[0], hub.username, hub.password,
                        client_id="someone-else")
    revoke_site_hub(on_brokers, site)
    assert not any(_accepts(h, p, hub.username, hub.password) for h, p in topology.central)


def test_the_admin_page_is_told_in_danish_when_a_broker_is_away(
        topology: RedundantBrokers, api: ApiServer, http: httpx.Client,
        make_user: Callable[..., Account], headers_for: Callable[[Account], dict[str, str]],
        site_device: tuple[str, provisioning.DeviceCredentials]) -> None:
    site, _ = site_device
    admin = {**headers_for(make_user("admin")), "Accept-Language": "da"}
    settings = api.app.state.settings
    api.app.state.settings = topology.provisioning(settings)
    topology.kill("central-2")
    try:
        refused = http.post(f"/api/v1/sites/{site}/devices", headers=admin,
                            json={"id": "m-9", "room": "lounge", "kind": "motion"})
    finally:
        topology.start("central-2")
        api.app.state.settings = settings
    assert refused.status_code == 503, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith("en broker svarede ikke eller afviste ændringen (")
    assert f"{topology.central[1][1]}" in detail  # which broker
