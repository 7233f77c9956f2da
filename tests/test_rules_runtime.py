"""The rules runtime's contract with the writer: intents out, the writer applies them.

The hook runs no SQL: it returns intents, and reads the layouts it is handed only when an
event comes from a device it does not know yet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import provisioning
from core.alerts import RuleName
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.intents import Intent, Trigger
from core.settings import StackInfo, get_settings
from ingest.rule_layouts import StoredLayouts, read_layouts
from ingest.rules_store import APPLY_CHUNK
from ingest.writer import Batch, EventWriter, StoredEventRow
from rules import runtime
from rules.runtime import RulesRuntime
from tests.support.store import unique

NIGHT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 02:00 in Copenhagen


def _exit_opened(site: str, device: str) -> StoredEventRow:
    return StoredEventRow(Event(site, device, "e1", NIGHT, EventKind.DOOR_OPEN), "exit", NIGHT)


def test_the_hook_returns_intents_and_leaves_the_store_alone(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    add_device(site, "exit-door", room="exit", kind=DeviceKind.EXIT)
    rules = RulesRuntime(migrated.database_url, sites=[site])
    rules.load()
    reads: list[StoredLayouts] = []

    def layouts() -> StoredLayouts:
        with psycopg.connect(migrated.database_url) as conn:
            reads.append(read_layouts(conn))
        return reads[-1]

    intents = rules.on_batch([_exit_opened(site, "exit-door")], [], layouts)
    rules.stop()

    assert [(type(i), i.rule) for i in intents] == [(Trigger, RuleName.BUILDING_EXIT)]
    assert reads == []  # a known device: no layouts read
    assert db.execute("SELECT count(*) FROM alerts WHERE site = %s",
                      (site,)).fetchone() == (0,)


def test_a_device_added_after_start_raises_its_alert_with_its_first_event(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    rules = RulesRuntime(migrated.database_url, sites=[site])
    rules.load()
    add_device(site, "exit-door", room="exit", kind=DeviceKind.EXIT)
    writer = EventWriter(migrated.database_url, hooks=[rules.on_batch])
    try:
        writer.write(Batch(events=[(_exit_opened(site, "exit-door").event, NIGHT)]))
    finally:
        writer.close()
        rules.stop()

    # Committed by that one write, with its event: no reload by the ticker was needed.
    assert db.execute("SELECT rule, status FROM alerts WHERE site = %s",
                      (site,)).fetchall() == [("building_exit", "open")]
    assert db.execute("SELECT change FROM alert_changes WHERE site = %s",
                      (site,)).fetchall() == [("raised",)]


def test_a_storm_of_timers_is_committed_in_short_transactions_without_the_engine_lock(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    """Every device of a site silent at once (its hub away): the ticker committed all the
    offline alerts in one transaction holding the engine lock (and the change lock), and
    every other site's new alert waited seconds. Now the engine is free meanwhile, the
    silent site's own events wait for the commit (its alerts change in order), another
    site's are evaluated at once, and the commit is in chunks."""
    other = unique("t")
    provisioning.add_site(get_settings(), other, "Nabohuset")
    provisioning.add_room(get_settings(), other, "exit", RoomKind.EXIT, "Hoveddør")
    add_device(other, "exit-door", room="exit", kind=DeviceKind.EXIT)
    silent = 2 * APPLY_CHUNK + 10
    for n in range(silent):
        db.execute("INSERT INTO devices (site, id, room, kind, heartbeat_s, source) "
                   "VALUES (%s, %s, 'f1', 'motion', 60, 'native')", (site, f"m-{n:03d}"))
    wall = [NIGHT.timestamp()]
    rules = RulesRuntime(migrated.database_url, wall=lambda: wall[0], sites=[site, other])
    rules.load()

    def beat(device: str, at: datetime, n: int = 0) -> StoredEventRow:
        return StoredEventRow(Event(site, device, f"h{n}", at, EventKind.HEARTBEAT), "f1", at)

    def never() -> StoredLayouts:
        raise AssertionError("known devices: no layouts read")

    rules.on_batch([beat(f"m-{n:03d}", NIGHT) for n in range(silent)], [], never)
    seen_meanwhile: dict[str, object] = {}
    real_apply = rules._store.apply

    def apply_and_look(intents: Sequence[Intent]) -> int:
        if intents and not seen_meanwhile:
            def writer() -> None:
                seen_meanwhile["lock_free"] = rules._lock.acquire(timeout=2)
                if seen_meanwhile["lock_free"]:
                    rules._lock.release()
                later = NIGHT + timedelta(minutes=3)
                seen_meanwhile["other"] = rules.on_batch([StoredEventRow(
                    Event(other, "exit-door", "e1", later, EventKind.DOOR_OPEN), "exit", later)],
                    [], never)
                seen_meanwhile["silent"] = rules.on_batch(
                    [beat("m-000", later, 1)], [], never)
            thread = threading.Thread(target=writer)
            thread.start()
            thread.join(10)
        return real_apply(intents)

    rules._store.apply = apply_and_look  # type: ignore[method-assign]
    try:
        wall[0] = (NIGHT + timedelta(minutes=3)).timestamp()  # two minutes of silence passed
        rules.tick()
        assert seen_meanwhile["lock_free"] is True
        assert [(type(i), i.rule) for i in seen_meanwhile["other"]] == [  # type: ignore[attr-defined]
            (Trigger, RuleName.BUILDING_EXIT)]
        assert seen_meanwhile["silent"] == []  # after its offline alerts, not before
        assert rules.behind() == {}  # a moment's wait, not a site behind
        offline = db.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM alerts "
            "WHERE site = %s AND rule = 'sensor_offline'", (site,)).fetchone()
        assert offline == (silent, 3)  # 50 + 50 + 10: three short transactions
        rules.catch_up()  # the waiting heartbeat: m-000 is back
        assert db.execute(
            "SELECT status FROM alerts WHERE site = %s AND rule = 'sensor_offline' "
            "AND device = 'm-000'", (site,)).fetchone() == ("resolved",)
    finally:
        rules.stop()


def test_a_site_behind_with_one_exit_is_caught_up_in_the_first_round_of_a_burst(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sites behind at once: one with a burst of motion, one with an exit door (a
    batch over all sites' budget puts both behind). The exit's alert is committed in the
    first catch-up round, not after the burst: CI saw it wait for all 10,000 motions."""
    other = unique("t")
    provisioning.add_site(get_settings(), other, "Nabohuset")
    provisioning.add_room(get_settings(), other, "exit", RoomKind.EXIT, "Hoveddør")
    add_device(other, "exit-door", room="exit", kind=DeviceKind.EXIT)
    add_device(site, "pir", room="lounge", kind=DeviceKind.MOTION)
    wall = [NIGHT.timestamp()]
    rules = RulesRuntime(migrated.database_url, wall=lambda: wall[0], sites=[site, other],
                         budget_s=0.0)
    rules.load()
    # Rounds short enough that a burst of 3,000 takes many of them.
    monkeypatch.setattr(runtime, "CATCH_UP_ROUND_S", 0.005)
    monkeypatch.setattr(runtime, "CATCH_UP_SLICE_S", 0.005)

    def never() -> StoredLayouts:
        raise AssertionError("known devices: no layouts read")

    motions = [StoredEventRow(Event(site, "pir", f"m{n}", NIGHT + timedelta(milliseconds=n),
                                    EventKind.MOTION), "lounge", NIGHT)
               for n in range(3000)]
    opened = NIGHT + timedelta(seconds=1)
    exit_row = StoredEventRow(Event(other, "exit-door", "e1", opened, EventKind.DOOR_OPEN),
                              "exit", opened)
    try:
        rules.on_batch([*motions, exit_row], [], never)
        assert set(rules.behind()) == {site, other}
        rules.catch_up()  # one round
        assert db.execute("SELECT rule FROM alerts WHERE site = %s",
                          (other,)).fetchall() == [("building_exit",)]
        assert rules.behind().get(site, 0) > 0  # the burst is still being caught up
        while rules.behind():
            rules.catch_up()
        assert db.execute("SELECT sum(count) FROM alerts WHERE site = %s AND "
                          "rule = 'common_motion'", (site,)).fetchone() == (3000,)
    finally:
        rules.stop()
