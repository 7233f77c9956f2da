"""The simulator publishes like real devices: own accounts, retained status, QoS 1 events.

Also a whole simulated night end to end (planning, publishing, truth, scoring hook).

Runs against a throwaway Mosquitto with a password file (no provisioning needed), so it
checks only the MQTT side; the full site → gateway → alerts path is the stack's test.
"""

from __future__ import annotations

import getpass
import json
import queue
import shutil
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console

from core.events import Presence
from core.settings import Settings
from simulators.command import run_simulation
from simulators.credentials import CredentialStore
from simulators.errors import CredentialsError, PublishError
from simulators.ground_truth import AlertRecord
from simulators.pacing import Timetable
from simulators.plan import Delivery, EventDelivery, StatusDelivery
from simulators.profile import load_profile
from simulators.publisher import DeviceAccount, publish

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
    reason="needs the mosquitto broker binary")

T0 = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)


@dataclass
class Broker:
    port: int
    passwords: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    folder = tmp_path_factory.mktemp("mosquitto")
    # An account per simulated device: a device connects with its username as client id,
    # so two devices sharing an account would take each other's place.
    passwords = {"dev-a": uuid.uuid4().hex, "dev-b": uuid.uuid4().hex,
                 "watcher": uuid.uuid4().hex,
                 **{f"havnely.{spec.id}": uuid.uuid4().hex
                    for spec in load_profile("havnely").device_specs}}
    password_file = folder / "passwords"
    password_file.touch(mode=0o600)
    for user, password in passwords.items():
        subprocess.run(["mosquitto_passwd", "-b", str(password_file), user, password],
                       check=True, capture_output=True)
    port = _free_port()
    (folder / "mosquitto.conf").write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {password_file}\npersistence false\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([binary, "-c", str(folder / "mosquitto.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("throwaway mosquitto did not start")
                time.sleep(0.05)
        yield Broker(port, passwords)
    finally:
        process.terminate()
        process.wait(timeout=10)


class Watcher:
    def __init__(self, broker: Broker) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"w-{uuid.uuid4().hex}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set("watcher", broker.passwords["watcher"])
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("nattero/v1/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def drain(self, count: int, timeout: float = 10.0) -> list[mqtt.MQTTMessage]:
        found: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            try:
                found.append(self.messages.get(timeout=0.2))
            except queue.Empty:
                continue
        return found

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _accounts(broker: Broker, site: str) -> dict[tuple[str, str], DeviceAccount]:
    return {(site, f"f0{i}-door"): DeviceAccount(site, f"f0{i}-door", user,
                                                  broker.passwords[user])
            for i, user in ((1, "dev-a"), (2, "dev-b"))}


def _event(site: str, device: str, n: int, kind: str, at: datetime) -> EventDelivery:
    payload = {"id": f"t-{n}", "ts": at.isoformat().replace("+00:00", "Z"), "kind": kind,
               "battery": 80}
    return EventDelivery(at, site, device, payload)


def test_devices_publish_events_and_retained_status_with_their_own_accounts(
        broker: Broker) -> None:
    site = f"s{uuid.uuid4().hex[:6]}"
    watcher = Watcher(broker)
    try:
        plan: list[Delivery] = [
            _event(site, "f01-door", 1, "door.open", T0),
            _event(site, "f01-door", 2, "door.closed", T0 + timedelta(seconds=4)),
            StatusDelivery(T0 + timedelta(seconds=5), site, "f02-door", Presence.OFFLINE),
            _event(site, "f02-door", 1, "heartbeat", T0 + timedelta(seconds=6)),
        ]
        sent: list[Delivery] = []
        stats = publish(plan, _accounts(broker, site), Timetable(T0, [], float("inf")),
                        host="127.0.0.1", port=broker.port, on_sent=sent.append)
        assert sent == plan
        assert stats.events == {site: 3} and stats.statuses == {site: 1}
        messages = watcher.drain(2 + 4)  # two `online` statuses, then the plan
        by_topic = [(m.topic, m.payload.decode()) for m in messages]
        status = f"nattero/v1/{site}/f02-door/status"
        assert (f"nattero/v1/{site}/f01-door/status", "online") in by_topic
        assert by_topic.index((status, "online")) < by_topic.index((status, "offline"))
        events = [json.loads(p) for t, p in by_topic if t.endswith("/events")]
        assert [e["kind"] for e in events] == ["door.open", "door.closed", "heartbeat"]
        assert all(m.qos == 1 for m in messages)
    finally:
        watcher.close()


def test_paced_publishing_follows_the_timetable(broker: Broker) -> None:
    site = f"s{uuid.uuid4().hex[:6]}"
    plan: list[Delivery] = [_event(site, "f01-door", n, "motion", T0 + timedelta(seconds=n * 60))
                            for n in range(3)]
    began = time.monotonic()
    publish(plan, _accounts(broker, site),
            Timetable(T0, [(T0, T0 + timedelta(minutes=3))], 240.0),
            host="127.0.0.1", port=broker.port)
    assert 0.45 <= time.monotonic() - began < 5  # 120 simulated seconds at 240×


def test_a_wrong_password_is_refused_with_the_device_named(broker: Broker) -> None:
    site = f"s{uuid.uuid4().hex[:6]}"
    accounts = {(site, "f01-door"): DeviceAccount(site, "f01-door", "dev-a", "wrong")}
    with pytest.raises(CredentialsError, match=r"f01-door.*\(13[45]\)") as caught:
        publish([_event(site, "f01-door", 1, "motion", T0)], accounts,
                Timetable(T0, [], float("inf")), host="127.0.0.1", port=broker.port)
    assert caught.value.refused == (f"{site}/f01-door",)


@pytest.mark.pure
def test_an_unreachable_broker_says_how_to_start_one() -> None:
    site = "nowhere"
    accounts = {(site, "d"): DeviceAccount(site, "d", "u", "p")}
    with pytest.raises(PublishError, match="nattero up"):
        publish([_event(site, "d", 1, "motion", T0)], accounts,
                Timetable(T0, [], float("inf")), host="127.0.0.1", port=_free_port())


def _settings(tmp_path: Path, broker: Broker) -> Settings:
    return Settings.model_validate(
        {"state_dir": tmp_path, "mqtt_host": "127.0.0.1", "mqtt_port": broker.port})


def test_a_night_at_max_speed_publishes_every_planned_event_and_writes_the_truth(
        tmp_path: Path, broker: Broker) -> None:
    settings = _settings(tmp_path, broker)
    store = CredentialStore.in_state_dir(tmp_path)
    for spec in load_profile("havnely").device_specs:
        username = f"havnely.{spec.id}"
        store.put("havnely", spec.id, username, broker.passwords[username])
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    asked: list[tuple[str, datetime, datetime]] = []

    def fetch_alerts(site: str, start: datetime, end: datetime) -> list[AlertRecord]:
        asked.append((site, start, end))
        return [AlertRecord(site, "opholdsstue", "common_motion", start + timedelta(hours=1))]

    result = run_simulation(settings, ["havnely"], nights=2, speed="max", seed=4,
                            start=date(2026, 11, 23), provision=False,
                            fetch_alerts=fetch_alerts, console=Console(quiet=True),
                            progress=False)
    assert result.stats.events["havnely"] == result.planned_events["havnely"] > 10_000
    assert result.truth_path is not None and result.truth_path.exists()
    lines = result.truth_path.read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines[:2]] == ["night", "night"]
    assert asked == [("havnely", result.start, result.end)]
    assert result.score is not None and result.score.sites["havnely"].resident_alerts == 1


def test_without_provisioning_missing_passwords_are_named(tmp_path: Path,
                                                          broker: Broker) -> None:
    with pytest.raises(CredentialsError, match=r"no stored password.*egely"):
        run_simulation(_settings(tmp_path, broker), ["egely"], speed="max", provision=False,
                       console=Console(quiet=True), progress=False)


def test_a_client_never_has_more_than_max_unacked_publishes_outstanding(
        broker: Broker) -> None:
    site = "throttle"
    plan: list[Delivery] = [_event(site, "f01-door", n, "motion", T0) for n in range(200)]
    stats = publish(plan, _accounts(broker, site), Timetable(T0, [], float("inf")),
                    host="127.0.0.1", port=broker.port, max_unacked=2)
    assert stats.events == {site: 200}
