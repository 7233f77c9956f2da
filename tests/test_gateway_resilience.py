"""Nothing acknowledged is lost: gateway crashes, database outages, broker restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from core.events import DeviceKind
from core.settings import get_settings
from deploy import stack as local_stack
from tests.support import REPO
from tests.support.devices import DeviceClient, event_payload
from tests.support.pipeline import gateway_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


class GatewayProcess:
    """`nattero gateway` as a real OS process, so it can be SIGKILLed and restarted."""

    def __init__(self, *sites: str) -> None:
        self.env = {**os.environ, **gateway_env(*sites)}
        self.proc: subprocess.Popen[bytes] | None = None
        log = get_settings().state_dir.resolve() / f"gateway-{os.getpid()}.log"
        self.log = log.open("ab")  # closed by stop()

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "nattero.cli", "gateway"],
                                     env=self.env, cwd=REPO, stdout=self.log, stderr=self.log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)  # reaped: no zombie, no "still running" ResourceWarning
        self.log.close()


@pytest.fixture
def gateway_process() -> Iterator[type[GatewayProcess]]:
    made: list[GatewayProcess] = []

    class Tracked(GatewayProcess):
        def __init__(self, *sites: str) -> None:
            super().__init__(*sites)
            made.append(self)

    yield Tracked
    for gateway in made:
        gateway.stop()


def stored(database_url: str, site: str) -> int:
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM events WHERE site = %s", (site,)).fetchone()
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return -1


def wait_subscribed(device: DeviceClient, database_url: str, site: str, device_id: str) -> None:
    """The gateway's session exists once a status message of the device reached the store."""
    # Retained, like a real device's status, so it reaches a gateway that subscribes later.
    device.publish(f"nattero/v1/{site}/{device_id}/status", b"online", retain=True)
    device.flush()

    def online() -> bool:
        try:
            with psycopg.connect(database_url, connect_timeout=2) as conn:
                row = conn.execute("SELECT presence FROM devices WHERE site = %s AND id = %s",
                                   (site, device_id)).fetchone()
                return row is not None and row[0] == "online"
        except psycopg.OperationalError:
            return False

    assert wait_until(online, 30), "the gateway never subscribed"


def publish_paced(device: DeviceClient, topic: str, total: int, per_second: float) -> None:
    started = time.monotonic()
    for n in range(total):
        due = started + n / per_second
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        device.publish(topic, event_payload("motion", event_id=f"e{n}"))
    device.publish_many([])


def test_gateway_sigkilled_while_publishing_stores_every_event_exactly_once(
        site, stack, add_device, gateway_process) -> None:
    user, password = add_device(site, "m-1", "lounge", DeviceKind.MOTION)
    gateway = gateway_process(site)
    gateway.start()
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    topic = f"nattero/v1/{site}/m-1/events"
    wait_subscribed(device, stack.database_url, site, "m-1")
    publisher = threading.Thread(target=publish_paced, args=(device, topic, 5000, 1000))
    publisher.start()
    assert wait_until(lambda: stored(stack.database_url, site) >= 1000, 30)
    gateway.kill()
    killed_at = stored(stack.database_url, site)
    gateway.start()
    publisher.join()
    device.close()
    assert killed_at < 5000, "the kill came too late to test anything"
    assert wait_until(lambda: stored(stack.database_url, site) == 5000, 60), \
        stored(stack.database_url, site)
    with psycopg.connect(stack.database_url) as conn:
        distinct = conn.execute("SELECT count(DISTINCT event_id) FROM events WHERE site = %s",
                                (site,)).fetchone()
    assert distinct is not None and distinct[0] == 5000


def test_database_outage_of_twenty_seconds_loses_nothing_and_gateway_keeps_running(
        site, stack, settings, add_device, gateway_process) -> None:
    user, password = add_device(site, "m-1", "lounge", DeviceKind.MOTION)
    gateway = gateway_process(site)
    gateway.start()
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    topic = f"nattero/v1/{site}/m-1/events"
    wait_subscribed(device, stack.database_url, site, "m-1")
    # 6,000 events over 24 s: about 4,000 arrive while the database is down, more than the
    # broker's default queue of 1,000 and more than the gateway's receive window.
    publisher = threading.Thread(target=publish_paced, args=(device, topic, 6000, 250))
    publisher.start()
    try:
        assert wait_until(lambda: stored(stack.database_url, site) >= 300, 30)
        local_stack.stop_database(settings)
        time.sleep(20)
        assert gateway.alive(), "the gateway exited during the database outage"
    finally:
        local_stack.start_database(settings)
    publisher.join()
    device.close()
    assert wait_until(lambda: stored(stack.database_url, site) == 6000, 90), \
        stored(stack.database_url, site)
    assert gateway.alive()


def test_events_queued_while_gateway_is_down_survive_a_broker_crash(
        site, stack, settings, add_device, gateway_process) -> None:
    user, password = add_device(site, "m-1", "lounge", DeviceKind.MOTION)
    gateway = gateway_process(site)
    gateway.start()  # creates the persistent session and its subscriptions
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    topic = f"nattero/v1/{site}/m-1/events"
    wait_subscribed(device, stack.database_url, site, "m-1")
    device.publish_many([(topic, event_payload("motion", event_id="first"))])
    assert wait_until(lambda: stored(stack.database_url, site) == 1, 20)
    gateway.stop()
    # More than Mosquitto's default max_queued_messages (1,000) while the gateway is away.
    device.publish_many((topic, event_payload("motion", event_id=f"q{n}")) for n in range(3000))
    device.close()
    time.sleep(3.5)  # autosave_interval is 2 s: let the broker write its queue to disk
    local_stack.kill_broker(settings)
    local_stack.start_broker(settings)
    restarted = gateway_process(site)
    restarted.env = gateway.env  # same client id: resume the same session
    restarted.start()
    assert wait_until(lambda: stored(stack.database_url, site) == 3001, 60), \
        stored(stack.database_url, site)
