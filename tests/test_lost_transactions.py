"""An alert raised reaches a person even when the transaction that carried it is lost.

The rules engine evaluates an input once and fires a timer once. When the database
connection breaks after the engine has spoken but before the commit (a failover or a
restart of the database in the middle of a batch, or of a timer's transaction), the
retry must still store what the engine said, although the engine will not say it again.
Real database, real connection loss (the server ends the session, or stops).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import psycopg
import pytest

from core.events import DeviceKind, Event, EventKind, StatusChange
from core.intents import Intent
from core.settings import Settings, StackInfo
from deploy import stack as local_stack
from ingest.rule_layouts import StoredLayouts
from ingest.writer import Batch, EventWriter, StoredEventRow, StoreUnavailable
from rules.runtime import GRACE, RulesRuntime
from tests.test_clock import T, Wall

Hook = Callable[[list[StoredEventRow], list[StatusChange], Callable[[], StoredLayouts]],
                list[Intent]]


def _session_ended_once(dsn: str) -> tuple[Hook, list[int]]:
    """A hook run after the rules' hook: the first time, the server ends the writer's
    session (the one connection holding an open writing transaction), as a database that
    fails over in the middle of the batch would. Records how many sessions it ended."""
    ended: list[int] = []

    def hook(rows: list[StoredEventRow], statuses: list[StatusChange],
             layouts: Callable[[], StoredLayouts]) -> list[Intent]:
        if not ended:
            with psycopg.connect(dsn, autocommit=True) as other:
                row = other.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_xid IS NOT NULL AND state = 'idle in transaction'"
                ).fetchone()
            ended.append(int(row[0]) if row else 0)
        return []

    return hook, ended


def _alerts(dsn: str, site: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(dsn) as conn:
        return [(rule, status, count) for rule, status, count in conn.execute(
            "SELECT rule, status, count FROM alerts WHERE site = %s ORDER BY rule", (site,))]


def _changes(dsn: str, site: str, rule: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute(
            "SELECT change FROM alert_changes WHERE site = %s AND alert->>'rule' = %s "
            "ORDER BY seq", (site, rule))]


@pytest.fixture
def rules(site: str, migrated: StackInfo, add_device: Callable[..., tuple[str, str]]
          ) -> Iterator[tuple[RulesRuntime, Wall]]:
    add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    add_device(site, "exit-door", room="exit", kind=DeviceKind.EXIT)
    wall = Wall(T)
    runtime = RulesRuntime(migrated.database_url, wall=wall, sites=[site])
    runtime.load()
    yield runtime, wall
    runtime.stop()


def test_the_alert_of_a_batch_whose_transaction_was_lost_comes_with_its_retry(
        site: str, migrated: StackInfo, rules: tuple[RulesRuntime, Wall]) -> None:
    runtime, _ = rules
    lost, ended = _session_ended_once(migrated.database_url)
    writer = EventWriter(migrated.database_url, hooks=[runtime.on_batch, lost])
    batch = Batch(events=[(Event(site, "exit-door", "e1", T, EventKind.DOOR_OPEN), T)])
    try:
        with pytest.raises(StoreUnavailable):
            writer.write(batch)
        assert ended == [1]  # the writer's own session, and only it
        assert _alerts(migrated.database_url, site) == []  # nothing of it was committed
        # The gateway retries the same messages (it acknowledged none of them). The engine
        # has seen this event and does not evaluate it again: the alert must come anyway.
        result = writer.write(batch)
    finally:
        writer.close()
    assert result.stored == 1
    assert _alerts(migrated.database_url, site) == [("building_exit", "open", 1)]
    assert _changes(migrated.database_url, site, "building_exit") == ["raised"]


def test_the_alert_comes_when_the_retried_event_was_stored_meanwhile_by_another_writer(
        site: str, migrated: StackInfo, rules: tuple[RulesRuntime, Wall]) -> None:
    """The same message stored by a second path while the first writer was cut off (the
    broker's redelivery to another session, a second central broker): the retry finds the
    event already stored, so no hook sees it; the alert the rules gave must still come,
    once."""
    runtime, _ = rules
    lost, _ended = _session_ended_once(migrated.database_url)
    writer = EventWriter(migrated.database_url, hooks=[runtime.on_batch, lost])
    other_path = EventWriter(migrated.database_url)  # stores events, runs no rules
    batch = Batch(events=[(Event(site, "exit-door", "e1", T, EventKind.DOOR_OPEN), T)])
    try:
        with pytest.raises(StoreUnavailable):
            writer.write(batch)
        assert other_path.write(batch).stored == 1
        assert writer.write(batch).stored == 0  # a duplicate now
        writer.write(batch)  # and again: nothing is applied twice
    finally:
        writer.close()
        other_path.close()
    assert _alerts(migrated.database_url, site) == [("building_exit", "open", 1)]
    assert _changes(migrated.database_url, site, "building_exit") == ["raised"]


def test_a_timer_that_fired_while_the_database_was_away_is_stored_when_it_is_back(
        site: str, migrated: StackInfo, settings: Settings,
        rules: tuple[RulesRuntime, Wall]) -> None:
    """A resident out of the flat at 02:00 is due an escalation at 02:15. The database is
    away at that moment: the tick fails, and the engine's timer has fired. When the
    database is back, the next tick must store the escalation, with no new event."""
    runtime, wall = rules
    writer = EventWriter(migrated.database_url, hooks=[runtime.on_batch])
    try:
        writer.write(Batch(events=[(Event(site, "f1-door", "a", T, EventKind.DOOR_OPEN), T)]))
    finally:
        writer.close()
    assert _alerts(migrated.database_url, site) == [("left_flat", "open", 1)]
    runtime.tick()
    assert _changes(migrated.database_url, site, "left_flat") == ["raised"]  # not yet due
    wall.at = T + timedelta(minutes=15) + GRACE
    local_stack.stop_database(settings)
    try:
        with pytest.raises(StoreUnavailable):
            runtime.tick()
    finally:
        local_stack.start_database(settings)
    runtime.tick()
    assert _changes(migrated.database_url, site, "left_flat") == ["raised", "escalated"]
    runtime.tick()  # once only
    assert _changes(migrated.database_url, site, "left_flat") == ["raised", "escalated"]
