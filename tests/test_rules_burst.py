"""A burst through the real pipeline: the rules never hold ingest hostage (issue 13 §6).

Ten motion sensors of one common room flush 10,000 events of a past night at once,
interleaved, as a reconnecting hub would. The rules' budget per writer batch is cut to a
millisecond so the site is sure to fall behind: its events must still be stored at once,
another site's alert must still come through meanwhile, every motion must end up counted
on the room's alert, and stopping must not wait for the rules to catch up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import provisioning
from core import metrics
from core.events import DeviceKind, RoomKind
from core.settings import StackInfo, get_settings
from nattero.pipeline import Pipeline, start_pipeline
from tests.support.devices import DeviceClient, event_payload
from tests.support.pipeline import gateway_env
from tests.support.store import unique
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

NIGHT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 02:00 in Copenhagen
SENSORS = 10
PER_SENSOR = 1000


def number(db: psycopg.Connection, query: str, site: str) -> int:
    row = db.execute(query, (site,)).fetchone()
    assert row is not None
    return int(row[0])


def stored(db: psycopg.Connection, site: str) -> int:
    return number(db, "SELECT count(*) FROM events WHERE site = %s", site)


def motion_counted(db: psycopg.Connection, site: str) -> int:
    return number(db, "SELECT coalesce(sum(count), 0) FROM alerts WHERE site = %s "
                  "AND rule = 'common_motion'", site)


class Burst:
    """The sensors of the site's lounge, each publishing its night from a thread of its own."""

    def __init__(self, stack: StackInfo, site: str,
                 add_device: Callable[..., tuple[str, str]]) -> None:
        self.site = site
        self.clients = []
        for n in range(SENSORS):
            user, password = add_device(site, f"pir-{n}", "lounge", DeviceKind.MOTION)
            self.clients.append(DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password))
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for n, client in enumerate(self.clients):
            messages = [(f"nattero/v1/{self.site}/pir-{n}/events",
                         event_payload("motion", ts=NIGHT + timedelta(milliseconds=10 * i),
                                       event_id=f"{n}-{i}"))
                        for i in range(PER_SENSOR)]
            thread = threading.Thread(target=client.publish_many, args=(messages,))
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(60)

    def close(self) -> None:
        self.join()
        for client in self.clients:
            client.close()


def _pipeline(*sites: str) -> Pipeline:
    env = gateway_env(*sites)
    settings = get_settings().model_copy(update={
        "gateway_sites": list(sites), "gateway_client_id": env["NATTERO_GATEWAY_CLIENT_ID"],
        "gateway_session_expiry_s": 600, "gateway_bridges": False, "maintenance": "off",
        "rules_batch_budget_s": 0.001})
    return start_pipeline(settings)


def test_other_sites_alerts_come_through_while_one_site_bursts_past_the_rules_budget(
        stack: StackInfo, site: str, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    other = unique("t")
    provisioning.add_site(get_settings(), other, "Nabohuset")
    provisioning.add_room(get_settings(), other, "exit", RoomKind.EXIT, "Hoveddør")
    user, password = add_device(other, "exit-door", "exit", DeviceKind.EXIT)
    door = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    burst = Burst(stack, site, add_device)
    fell_behind = metrics.RULES_OVER_BUDGET._value.get()
    running = _pipeline(site, other)
    try:
        burst.start()
        assert wait_until(lambda: site in running.rules.behind(), timeout=30)
        door.publish_many([(f"nattero/v1/{other}/exit-door/events",
                            event_payload("door.open", ts=NIGHT + timedelta(seconds=1)))])
        assert wait_until(lambda: db.execute(
            "SELECT rule FROM alerts WHERE site = %s", (other,)).fetchall()
            == [("building_exit",)], timeout=30)
        # The other site's alert did not wait for the burst's rules to catch up.
        assert motion_counted(db, site) < SENSORS * PER_SENSOR
        burst.join()
        # Stored without waiting for the rules, then every motion counted: none lost.
        assert wait_until(lambda: stored(db, site) == SENSORS * PER_SENSOR, timeout=60)
        assert wait_until(lambda: motion_counted(db, site) == SENSORS * PER_SENSOR,
                          timeout=120)
        assert wait_until(lambda: running.rules.behind() == {}, timeout=10)
        assert metrics.RULES_OVER_BUDGET._value.get() > fell_behind
        assert metrics.RULES_DEFERRED._value.get() == 0
        # One alert for the room's one motion episode, not one per sensor or per batch.
        assert number(db, "SELECT count(*) FROM alerts WHERE site = %s", site) == 1
    finally:
        running.stop()
        burst.close()
        door.close()


def test_stopping_mid_catch_up_is_prompt_and_the_next_start_evaluates_the_rest(
        stack: StackInfo, site: str, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    burst = Burst(stack, site, add_device)
    running = _pipeline(site)
    # The ticker does not get round to catching up before the stop: a fast machine would
    # otherwise catch up first and leave nothing for the next start to prove.
    monkeypatch.setattr(running.rules, "catch_up", lambda: 0)
    try:
        burst.start()
        burst.join()
        assert wait_until(lambda: stored(db, site) == SENSORS * PER_SENSOR, timeout=60)
        assert site in running.rules.behind()  # still catching up: stop now
        started = time.monotonic()
        running.stop()
        assert time.monotonic() - started < 5
    finally:
        burst.close()
    again = _pipeline(site)  # its start replays the stored night
    try:
        assert wait_until(lambda: motion_counted(db, site) == SENSORS * PER_SENSOR,
                          timeout=120)
    finally:
        again.stop()
