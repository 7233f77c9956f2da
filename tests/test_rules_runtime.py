"""The rules runtime's contract with the writer: intents out, the writer applies them.

The hook runs no SQL: it returns intents, and reads the layouts it is handed only when an
event comes from a device it does not know yet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from core.alerts import RuleName
from core.events import DeviceKind, Event, EventKind
from core.intents import Trigger
from core.settings import StackInfo
from ingest.rule_layouts import StoredLayouts, read_layouts
from ingest.writer import Batch, EventWriter, StoredEventRow
from rules.runtime import RulesRuntime

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
