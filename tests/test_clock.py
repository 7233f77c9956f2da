"""Time you can trust (issue 12): device clocks never steer a site's rules clock.

Through the real pipeline (real broker, real database): an event stamped 2099 is a dead
letter with its reason and leaves another flat's "not back" escalation exact; a device
10 minutes fast (accepted: the skew is raised for the test) does too, and its offset shows
in device health. Then the runtime's clock with an injected wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import provisioning
from core import metrics
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.intents import Trigger
from core.settings import Settings, StackInfo, get_settings
from ingest.rule_layouts import StoredLayouts, read_layouts
from ingest.writer import Batch, EventWriter, StoredEventRow
from rules.runtime import GRACE, HISTORY, RulesRuntime
from tests.support.devices import DeviceClient, event_payload
from tests.support.pipeline import gateway_env
from tests.support.store import night_around_now
from tests.support.waiting import wait_until

Devices = dict[str, DeviceClient]


@pytest.fixture
def two_flats(site: str, add_device: Callable[..., tuple[str, str]],
              stack: StackInfo) -> Iterator[tuple[str, Devices]]:
    """The site with a second flat; a door in each, each with its own MQTT account; its
    night is now (the tests run on live time)."""
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        night_around_now(conn, site)
    provisioning.add_room(get_settings(), site, "f2", RoomKind.FLAT, "Lejlighed 2")
    provisioning.record_basis(get_settings(), site, "f2", consent=True)
    clients: Devices = {}
    for device, room in (("f1-door", "f1"), ("f2-door", "f2")):
        user, password = add_device(site, device, room, DeviceKind.DOOR)
        clients[device] = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    yield site, clients
    for client in clients.values():
        client.close()


def _pipeline(site: str, skew_s: float = 120.0) -> Any:
    from nattero.pipeline import start_pipeline

    return start_pipeline(Settings(
        gateway_sites=[site], gateway_client_id=gateway_env(site)["NATTERO_GATEWAY_CLIENT_ID"],
        gateway_session_expiry_s=600, gateway_bridges=False, event_future_skew_s=skew_s))


def _send(clients: Devices, site: str, device: str, kind: str, ts: datetime) -> None:
    clients[device].publish_many([(f"nattero/v1/{site}/{device}/events",
                                   event_payload(kind, ts=ts))])


def _f1_left(clients: Devices, site: str, db: Any) -> datetime:
    """f1's resident left 15 min less 8 s ago: its escalation is due 8 s from now."""
    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15, seconds=-8)
    _send(clients, site, "f1-door", "door.open", opened)
    _send(clients, site, "f1-door", "door.closed", opened + timedelta(seconds=5))
    assert wait_until(lambda: db.execute(
        "SELECT count(*) FROM alerts WHERE site = %s AND rule = 'left_flat' AND room = 'f1'",
        (site,)).fetchone()[0] == 1, 20)
    return opened + timedelta(minutes=15)


def _f1_escalation(db: Any, site: str) -> tuple[datetime, datetime] | None:
    row = db.execute(
        "SELECT (alert->>'escalated_at')::timestamptz, at FROM alert_changes WHERE site = %s "
        "AND change = 'escalated' AND alert->>'room' = 'f1'", (site,)).fetchone()
    return None if row is None else (row[0], row[1])


def _assert_exact(db: Any, site: str, deadline: datetime) -> None:
    assert wait_until(lambda: _f1_escalation(db, site) is not None, 30)
    escalated_at, committed = _f1_escalation(db, site)  # type: ignore[misc]
    assert escalated_at == deadline
    # Fired on the live clock: not before its deadline, and within a second after it.
    assert timedelta(0) <= committed - deadline < timedelta(seconds=1), committed - deadline
    future = db.execute(
        "SELECT count(*) FROM alerts WHERE site = %s AND (first_ts > now() OR "
        "escalated_at > now() OR last_ts > now())", (site,)).fetchone()[0]
    assert future == 0, "an alert stamped in the future"


def test_an_event_from_2099_is_a_dead_letter_and_other_flats_timers_stay_exact(
        two_flats: tuple[str, Devices], db: Any) -> None:
    site, clients = two_flats
    running = _pipeline(site)
    try:
        deadline = _f1_left(clients, site, db)
        _send(clients, site, "f2-door", "door.open", datetime(2099, 1, 1, 2, tzinfo=UTC))
        assert wait_until(lambda: db.execute(
            "SELECT count(*) FROM dead_letters WHERE sender = %s",
            (f"nattero/v1/{site}/f2-door",)).fetchone()[0] == 1, 20)
        reason, detail, payload = db.execute(
            "SELECT reason, detail, payload FROM dead_letters WHERE sender = %s",
            (f"nattero/v1/{site}/f2-door",)).fetchone()
        assert reason == "future_ts"
        assert "2099-01-01" in detail and "NTP" in detail
        assert json.loads(bytes(payload))["ts"].startswith("2099-01-01")  # kept as sent
        assert db.execute("SELECT count(*) FROM events WHERE site = %s AND device = 'f2-door'",
                          (site,)).fetchone()[0] == 0
        _assert_exact(db, site, deadline)
        assert db.execute("SELECT count(*) FROM alerts WHERE site = %s AND room = 'f2' "
                          "AND rule = 'left_flat'",
                          (site,)).fetchone()[0] == 0
    finally:
        running.stop()


def test_a_device_ten_minutes_fast_leaves_another_flats_escalation_exact_and_shows_in_health(
        two_flats: tuple[str, Devices], db: Any, http: Any,
        make_user: Callable[..., Any], headers_for: Callable[..., dict[str, str]]) -> None:
    site, clients = two_flats
    running = _pipeline(site, skew_s=15 * 60)  # accepted: the clock rule is under test
    try:
        deadline = _f1_left(clients, site, db)
        fast = timedelta(minutes=10)
        for n in range(3):
            _send(clients, site, "f2-door", "door.open" if n % 2 == 0 else "door.closed",
                  datetime.now(UTC) + fast)
        assert wait_until(lambda: db.execute(
            "SELECT count(*) FROM events WHERE site = %s AND device = 'f2-door'",
            (site,)).fetchone()[0] == 3, 20)
        _assert_exact(db, site, deadline)
        health = http.get(f"/api/v1/sites/{site}/health",
                          headers=headers_for(make_user("staff", site))).json()
        clocks = {c["device"]: c for c in health["clocks"]}
        assert clocks["f2-door"]["samples"] == 3
        assert abs(clocks["f2-door"]["offset_s"] - fast.total_seconds()) < 5
        assert abs(clocks["f1-door"]["offset_s"] + 15 * 60) < 20  # its stamps were of the past
    finally:
        running.stop()


# -- the runtime's clock, with an injected wall clock ------------------------------------

T = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # the injected wall time: 02:00 in Copenhagen


class Wall:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def _row(site: str, device: str, event_id: str, ts: datetime, kind: EventKind,
         received_at: datetime) -> StoredEventRow:
    return StoredEventRow(Event(site, device, event_id, ts, kind), "f1", received_at)


def _layouts(dsn: str) -> Callable[[], StoredLayouts]:
    def read() -> StoredLayouts:
        with psycopg.connect(dsn) as conn:
            return read_layouts(conn)
    return read


@pytest.fixture
def runtime(site: str, migrated: StackInfo, add_device: Callable[..., tuple[str, str]]
            ) -> Iterator[tuple[RulesRuntime, Wall]]:
    add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    wall = Wall(T)
    rules = RulesRuntime(migrated.database_url, wall=wall, sites=[site])
    rules.load()
    yield rules, wall
    rules.stop()


def _escalations(db: Any, site: str) -> list[datetime]:
    return [row[0] for row in db.execute(
        "SELECT (alert->>'escalated_at')::timestamptz FROM alert_changes WHERE site = %s "
        "AND change = 'escalated' ORDER BY seq", (site,))]


def test_a_live_sites_clock_is_wall_time_not_a_fast_devices_clock(
        site: str, migrated: StackInfo, db: Any,
        runtime: tuple[RulesRuntime, Wall]) -> None:
    rules, wall = runtime
    fast = T + timedelta(minutes=1)  # within the default skew of 2 minutes
    writer = EventWriter(migrated.database_url, hooks=[rules.on_batch])
    try:
        writer.write(Batch(events=[(Event(site, "f1-door", "a", fast, EventKind.DOOR_OPEN),
                                    T)]))
    finally:
        writer.close()
    # Evaluated when it arrived: the alert is not stamped in the future.
    assert db.execute("SELECT rule, first_ts FROM alerts WHERE site = %s",
                      (site,)).fetchall() == [("left_flat", T)]
    assert rules.site_clock(site) == T - GRACE
    wall.at = T + timedelta(seconds=30)
    assert rules.site_clock(site) == T + timedelta(seconds=30) - GRACE  # no event needed
    # The escalation is due 15 minutes after the arrival, not after the device's stamp.
    wall.at = T + timedelta(minutes=15)
    rules.tick()
    assert _escalations(db, site) == []  # the grace for delivery delay: not yet
    wall.at = T + timedelta(minutes=15) + GRACE
    rules.tick()
    assert _escalations(db, site) == [T + timedelta(minutes=15)]


def test_an_event_stamped_beyond_the_skew_is_not_evaluated(
        site: str, migrated: StackInfo, runtime: tuple[RulesRuntime, Wall]) -> None:
    rules, _wall = runtime
    before = metrics.RULES_SKIPPED.labels(reason="future_ts")._value.get()
    far = datetime(2099, 1, 1, tzinfo=UTC)
    intents = rules.on_batch([_row(site, "f1-door", "a", far, EventKind.DOOR_OPEN, T)], [],
                             _layouts(migrated.database_url))
    assert intents == []
    assert rules.site_clock(site) is None  # the site's clock did not start at 2099
    assert metrics.RULES_SKIPPED.labels(reason="future_ts")._value.get() == before + 1


def test_an_event_older_than_the_reordering_window_is_counted_not_evaluated(
        site: str, migrated: StackInfo, runtime: tuple[RulesRuntime, Wall]) -> None:
    rules, _wall = runtime
    layouts = _layouts(migrated.database_url)
    rules.on_batch([_row(site, "f1-door", "a", T, EventKind.DOOR_CLOSED, T)], [], layouts)
    before = metrics.RULES_SKIPPED.labels(reason="too_old")._value.get()
    old = T - HISTORY - timedelta(minutes=1)
    assert rules.on_batch([_row(site, "f1-door", "b", old, EventKind.DOOR_OPEN, T)], [],
                          layouts) == []
    assert metrics.RULES_SKIPPED.labels(reason="too_old")._value.get() == before + 1
    # Just inside the window it is still evaluated (a late alert, at its own time).
    inside = T - HISTORY + timedelta(minutes=1)
    late = rules.on_batch([_row(site, "f1-door", "c", inside, EventKind.DOOR_OPEN, T)], [],
                          layouts)
    # (14:01 in Copenhagen: no resident rule, but the device was heard then, and silent
    # for ten minutes after: its sensor_offline, late, at its own time.)
    assert [(i.rule, i.ts, i.late) for i in late if isinstance(i, Trigger)] == [
        ("sensor_offline", inside + timedelta(minutes=10), True)]
    assert metrics.RULES_SKIPPED.labels(reason="too_old")._value.get() == before + 1


def test_a_replayed_night_keeps_event_time_whatever_the_wall_clock_does(
        site: str, migrated: StackInfo, runtime: tuple[RulesRuntime, Wall]) -> None:
    rules, wall = runtime
    wall.at = T + timedelta(days=13)  # a night of two weeks ago, played now
    rules.on_batch([_row(site, "f1-door", "a", T, EventKind.DOOR_OPEN, wall.at)], [],
                   _layouts(migrated.database_url))
    assert rules.site_clock(site) == T
    wall.at += timedelta(hours=1)
    assert rules.site_clock(site) == T  # only its events move it
    assert rules.tick() == 0


def test_after_a_restart_a_timer_due_during_the_outage_fires_on_load_at_its_deadline(
        site: str, migrated: StackInfo, db: Any,
        runtime: tuple[RulesRuntime, Wall]) -> None:
    rules, _wall = runtime
    writer = EventWriter(migrated.database_url, hooks=[rules.on_batch])
    try:
        writer.write(Batch(events=[
            (Event(site, "f1-door", "a", T, EventKind.DOOR_OPEN), T),
            (Event(site, "f1-door", "b", T + timedelta(seconds=5), EventKind.DOOR_CLOSED),
             T + timedelta(seconds=5))]))
    finally:
        writer.close()
    rules.stop()  # down from T + 5 s; the escalation is due at T + 15 min
    later = Wall(T + timedelta(minutes=15, seconds=40))
    restarted = RulesRuntime(migrated.database_url, wall=later, sites=[site])
    try:
        restarted.load()  # no event, no tick: loading alone fires what fell due
        assert db.execute("SELECT escalated_at FROM alerts WHERE site = %s AND "
                          "rule = 'left_flat'", (site,)).fetchone()[0] == T + timedelta(minutes=15)
        assert restarted.site_clock(site) == later.at - GRACE
        assert _escalations(db, site) == [T + timedelta(minutes=15)]
    finally:
        restarted.stop()
