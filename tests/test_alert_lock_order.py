"""One lock order for alert changes: the writer, the rules ticker and staff never deadlock.

The writer's batches raise and merge alerts, the ticker escalates and re-announces the
same alerts, and staff take and resolve them, all at once against the real database.
Every path takes the change lock before alert rows; a path that locked a row first and
then waited for the change lock would sooner or later wait for a transaction waiting for
it, and PostgreSQL would roll one back ("deadlock detected"), leaving a hole in the
change numbers. The site's night runs at 600x on an injected clock, so escalations
(15 min) and re-announcements (3 min) come due within the test.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import provisioning
from core.alerts import AlertChange, AlertStatus, Outcome, RuleName
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.settings import StackInfo, get_settings
from ingest import alerts
from ingest.alerts import IllegalTransition
from ingest.writer import Batch, EventWriter
from rules import runtime as rules_runtime
from rules.runtime import RulesRuntime

SPEED = 600.0  # one real second is ten minutes of the night
NIGHT_START = datetime(2026, 1, 14, 21, 30, tzinfo=UTC)  # 22:30 in Copenhagen
RUN_S = 8.0
EXIT_DOORS = 6
FLATS = 5


class NightClock:
    """The site's wall clock, running ``SPEED`` times faster than the real one."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return NIGHT_START.timestamp() + (time.monotonic() - self._t0) * SPEED

    def now(self) -> datetime:
        return datetime.fromtimestamp(self(), UTC)


@pytest.fixture
def busy_site(site: str, add_device: Callable[..., tuple[str, str]]) -> str:
    """The site with exit doors (raised and merged by events) and flats whose residents
    leave (raised by events, escalated by timers)."""
    settings = get_settings()
    for n in range(1, EXIT_DOORS + 1):
        add_device(site, f"exit-{n}", room="exit", kind=DeviceKind.EXIT)
    for n in range(1, FLATS + 1):
        if n > 1:
            provisioning.add_room(settings, site, f"f{n}", RoomKind.FLAT, f"Lejlighed {n}")
            provisioning.record_basis(settings, site, f"f{n}", consent=True)
        add_device(site, f"f{n}-door", room=f"f{n}", kind=DeviceKind.DOOR)
    return site


class Errors:
    """What the threads ran into; any of it fails the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.found: list[str] = []

    def record(self, where: str, exc: BaseException) -> None:
        cause = exc.__cause__ or exc
        with self._lock:
            self.found.append(f"{where}: {type(cause).__name__}: {cause}".strip())


def _write_the_night(dsn: str, site: str, rules: RulesRuntime, clock: NightClock,
                     stop: threading.Event, errors: Errors) -> None:
    """Each batch: every exit door opens again (a merge), now and then closes and opens (a
    new alert); each flat's resident leaves, stays out 20 minutes (escalated meanwhile),
    comes back and leaves again."""
    writer = EventWriter(dsn, hooks=[rules.on_batch])
    ids = itertools.count()
    away: dict[int, float] = {}
    try:
        for batch_no in itertools.count():
            if stop.is_set():
                return
            events: list[tuple[Event, datetime]] = []

            def add(device: str, kind: EventKind, events: list[tuple[Event, datetime]] = events
                    ) -> None:
                now = clock.now()
                events.append((Event(site, device, f"e{next(ids)}", now, kind), now))

            # Flats first: an exit opening before any outing is someone coming in, and the
            # flat doors right after it would be read as homecomings (no outing to escalate).
            for n in range(1, FLATS + 1):
                left = away.get(n)
                if left is None:
                    add(f"f{n}-door", EventKind.DOOR_OPEN)  # leaves: left_flat
                    add(f"f{n}-door", EventKind.DOOR_CLOSED)
                    away[n] = clock()
                elif clock() - left > 20 * 60:
                    add(f"f{n}-door", EventKind.DOOR_OPEN)  # back (already escalated)
                    add(f"f{n}-door", EventKind.DOOR_CLOSED)
                    del away[n]
            # Exits: they merge into the latest outing, which they make a call at once
            # (escalated), and are someone coming in when no outing is in progress.
            for n in range(1, EXIT_DOORS + 1):
                if batch_no % 4 == n % 4:
                    add(f"exit-{n}", EventKind.DOOR_CLOSED)
                add(f"exit-{n}", EventKind.DOOR_OPEN)
            try:
                writer.write(Batch(events=events))
            except Exception as exc:
                errors.record("writer", exc)
            time.sleep(0.005)
    finally:
        writer.close()


def _tick(rules: RulesRuntime, stop: threading.Event, errors: Errors) -> None:
    while not stop.is_set():
        try:
            rules.tick()
        except Exception as exc:
            errors.record("ticker", exc)
        time.sleep(0.002)


def _take_and_resolve(dsn: str, site: str, status: AlertStatus, clock: NightClock,
                      stop: threading.Event, errors: Errors, done: Counter[str]) -> None:
    """Staff as the API does it (``ingest.alerts``, one transaction per alert). They take
    and resolve a building exit alert at once, while the writer keeps merging into it; a
    resident's alert they take after it was re-announced and resolve just after it was
    escalated."""
    # Taken 6 min after it began: a call made at its start is re-announced at 3 min, with
    # 3 night minutes (0.3 s at 600x) to spare for a ticker slowed by a busy machine.
    age = timedelta(minutes=6) if status is AlertStatus.OPEN else timedelta(minutes=16)
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            for alert in alerts.list_alerts(conn, [site], status, limit=50):
                if alert.rule is RuleName.LEFT_FLAT and clock.now() - alert.first_ts < age:
                    continue
                try:
                    with conn.transaction():
                        if status is AlertStatus.OPEN:
                            alerts.acknowledge(conn, alert.id, "nattevagt")
                        else:
                            alerts.resolve(conn, alert.id, "nattevagt", Outcome.HELP_GIVEN)
                    done[status.value] += 1
                except IllegalTransition:
                    pass  # cleared or taken meanwhile, as on a real board
                except Exception as exc:
                    errors.record(f"staff ({status})", exc)
            time.sleep(0.002)


@pytest.mark.slow
def test_writer_ticker_and_staff_changing_the_same_alerts_never_deadlock(
        busy_site: str, migrated: StackInfo, db: psycopg.Connection,
        monkeypatch: pytest.MonkeyPatch) -> None:
    site = busy_site
    dsn = migrated.database_url
    monkeypatch.setattr(rules_runtime, "REANNOUNCE_CHECK_S", 0.0)  # look on every tick
    clock = NightClock()
    rules = RulesRuntime(dsn, wall=clock, sites=[site])
    rules.load()
    stop = threading.Event()
    errors = Errors()
    done: Counter[str] = Counter()
    threads = [
        threading.Thread(target=_write_the_night, name="writer",
                         args=(dsn, site, rules, clock, stop, errors)),
        threading.Thread(target=_tick, name="ticker", args=(rules, stop, errors)),
        threading.Thread(target=_take_and_resolve, name="ack",
                         args=(dsn, site, AlertStatus.OPEN, clock, stop, errors, done)),
        threading.Thread(target=_take_and_resolve, name="resolve",
                         args=(dsn, site, AlertStatus.ACKNOWLEDGED, clock, stop,
                               errors, done)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(RUN_S)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    rules.stop()

    assert not errors.found, f"{len(errors.found)} failed transactions, first: {errors.found[0]}"
    changes = Counter(change for (change,) in db.execute(
        "SELECT change FROM alert_changes WHERE site = %s", (site,)))
    # Every kind of change happened, so the paths really met on the same alerts.
    for change in (AlertChange.RAISED, AlertChange.MERGED, AlertChange.ESCALATED,
                   AlertChange.REANNOUNCED, AlertChange.ACKNOWLEDGED, AlertChange.RESOLVED):
        assert changes[change.value] > 0, f"no {change} change: {dict(changes)}"
    # No transaction that numbered a change was rolled back: the numbers have no hole.
    low, high, count = db.execute(
        "SELECT min(seq), max(seq), count(*) FROM alert_changes WHERE seq >= "
        "(SELECT min(seq) FROM alert_changes WHERE site = %s)", (site,)).fetchone() or (0, 0, 0)
    assert count == high - low + 1, f"{high - low + 1 - count} change numbers missing"
