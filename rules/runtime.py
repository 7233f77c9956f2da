"""The rules engine at work: fed by the writer's transaction, ticking on the site clock.

- ``on_batch`` is a writer hook: it runs inside the transaction that stores the events,
  so the alerts they raise are committed together with them (or not at all).
- ``tick`` fires timers ("not back within 15 min") and the unacknowledged-alert
  re-announcement on each site's clock, in its own transaction.
- On start the engine is rebuilt by replaying each site's last hours of stored events; intents are
  applied idempotently (unique episode keys, one trigger row per event), so a restart,
  even after SIGKILL, neither loses a pending timer nor repeats an escalation.

Site clock: event time, not wall time, so an accelerated or replayed night gives the alerts
a live one would. For a live site (its newest event arrived within ``LIVE_WITHIN`` of its
own time) it is that event's time plus the wall time elapsed since it arrived, less a small
grace for delivery delay, so timers fire with no further event. For a replay of another
time (a simulated or past night) it is the newest event time alone: moving it on by wall
time would make a replay's alerts depend on how fast the machine happened to be.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from core import metrics
from core.alerts import AlertChange
from core.events import DeviceKind, Event, EventKind, Presence, RoomKind, StatusChange
from core.intents import Clear, Escalate, Intent, Trigger
from core.night_window import NightWindow
from ingest.alerts import record_change
from ingest.writer import StoredEventRow
from rules.engine import RulesEngine
from rules.errors import LayoutError
from rules.layout import BasisKind, DeviceInfo, MonitoringBasis, RoomInfo, SiteLayout
from rules.settings import RuleBook, RuleName, RuleOverride, Severity

log = logging.getLogger(__name__)

REPLAY = timedelta(hours=12)  # rebuilt on start: a whole night, longer than any timer
HISTORY = timedelta(hours=12)  # how late an event may arrive and still be re-ordered
GRACE = timedelta(milliseconds=500)
UNACKED_AFTER = timedelta(minutes=3)
LAYOUT_TTL_S = 5.0  # rule settings, bases and night windows changed elsewhere apply by then
REANNOUNCE_CHECK_S = 1.0  # how often unacknowledged alerts are looked for (wall time)
LIVE_WITHIN = timedelta(hours=1)  # device clocks and delivery may be off by this much

Clock = Callable[[], float]


def load_layouts(conn: psycopg.Connection) -> tuple[dict[str, SiteLayout], dict[str, RuleBook]]:
    """Every site as the rules see it, with its rule book, from the store."""
    bases: dict[tuple[str, str], list[MonitoringBasis]] = {}
    for site, room, kind, ref, valid_from, valid_to in conn.execute(
            "SELECT site, room, kind, reference, valid_from, valid_to FROM room_bases"):
        try:
            basis = MonitoringBasis(BasisKind(kind), ref, valid_from, valid_to)
        except LayoutError as exc:
            # Without a valid basis the flat is not monitored: the lawful default.
            log.warning("ignoring invalid monitoring basis of %s/%s: %s", site, room, exc)
            continue
        bases.setdefault((site, room), []).append(basis)
    rooms: dict[str, dict[str, RoomInfo]] = {}
    for site, room, kind, label in conn.execute("SELECT site, id, kind, label FROM rooms"):
        rooms.setdefault(site, {})[room] = RoomInfo(RoomKind(kind), label,
                                                    tuple(bases.get((site, room), ())))
    devices: dict[str, dict[str, DeviceInfo]] = {}
    for site, device, room, kind, heartbeat in conn.execute(
            "SELECT site, id, room, kind, heartbeat_s FROM devices WHERE revoked_at IS NULL"):
        devices.setdefault(site, {})[device] = DeviceInfo(room, DeviceKind(kind), heartbeat)
    site_overrides: dict[str, dict[RuleName, RuleOverride]] = {}
    room_overrides: dict[str, dict[str, dict[RuleName, RuleOverride]]] = {}
    for site, room, rule, enabled, minutes, severity in conn.execute(
            "SELECT site, room, rule, enabled, minutes, severity FROM rule_settings"):
        override = RuleOverride(enabled, minutes, Severity(severity) if severity else None)
        if room is None:
            site_overrides.setdefault(site, {})[RuleName(rule)] = override
        else:
            room_overrides.setdefault(site, {}).setdefault(room, {})[RuleName(rule)] = override
    layouts: dict[str, SiteLayout] = {}
    books: dict[str, RuleBook] = {}
    for site, tz, start, end in conn.execute(
            "SELECT id, tz, night_start, night_end FROM sites"):
        layouts[site] = SiteLayout(site, NightWindow(start, end, ZoneInfo(tz)),
                                   rooms.get(site, {}), devices.get(site, {}))
        books[site] = RuleBook(site=site_overrides.get(site, {}),
                               rooms=room_overrides.get(site, {}))
    return layouts, books


class AlertApplier:
    """Applies intents to the alerts table; applying one twice changes nothing."""

    def apply(self, conn: psycopg.Connection, intents: Iterable[Intent]) -> int:
        changes = 0
        for intent in intents:
            if isinstance(intent, Trigger):
                changes += self._trigger(conn, intent)
            elif isinstance(intent, Escalate):
                changes += self._escalate(conn, intent)
            elif isinstance(intent, Clear):
                changes += self._clear(conn, intent)
        return changes

    def _trigger(self, conn: psycopg.Connection, t: Trigger) -> int:
        row = conn.execute(
            "INSERT INTO alerts (site, room, device, rule, severity, episode_key, late, "
            "first_ts, last_ts, detail) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (episode_key) DO NOTHING RETURNING id",
            (t.site, t.room, t.device, t.rule.value, t.severity.value, t.episode_key, t.late,
             t.ts, t.ts, t.detail)).fetchone()
        fresh = conn.execute(
            "INSERT INTO alert_triggers (episode_key, event_key, ts) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING 1", (t.episode_key, t.event_key, t.ts)).fetchone()
        if row is not None:
            record_change(conn, int(row[0]), AlertChange.RAISED)
            metrics.ALERTS_RAISED.labels(rule=t.rule.value).inc()
            return 1
        if fresh is None:
            return 0  # replayed: this trigger was counted before
        merged = conn.execute(
            "UPDATE alerts SET count = count + 1, last_ts = greatest(last_ts, %s) "
            "WHERE episode_key = %s RETURNING id", (t.ts, t.episode_key)).fetchone()
        if merged is None:
            return 0
        record_change(conn, int(merged[0]), AlertChange.MERGED)
        return 1

    def _escalate(self, conn: psycopg.Connection, e: Escalate) -> int:
        # Once per episode, marked like a trigger: a replay after a restart finds the mark.
        # (The flag alone would not do: an unacknowledged re-announcement also sets it.)
        fresh = conn.execute(
            "INSERT INTO alert_triggers (episode_key, event_key, ts) VALUES (%s, 'escalation', "
            "%s) ON CONFLICT DO NOTHING RETURNING 1", (e.episode_key, e.ts)).fetchone()
        if fresh is None:
            return 0
        row = conn.execute(
            "UPDATE alerts SET escalated = true, escalated_at = %s, "
            "severity = CASE WHEN severity = 'normal' THEN 'high' ELSE severity END "
            "WHERE episode_key = %s AND status <> 'resolved' RETURNING id",
            (e.ts, e.episode_key)).fetchone()
        if row is None:
            return 0
        record_change(conn, int(row[0]), AlertChange.ESCALATED)
        return 1

    def _clear(self, conn: psycopg.Connection, c: Clear) -> int:
        # By device and rule, not only by key: an offline episode that began before the
        # replay window has another key but is the same outage.
        rows = conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = %s, resolved_by = 'system', "
            "outcome = 'cleared_automatically' "
            "WHERE (episode_key = %s OR (site = %s AND device = %s AND rule = %s)) "
            "AND status <> 'resolved' AND first_ts <= %s RETURNING id",
            (c.ts, c.episode_key, c.site, c.device, c.rule.value, c.ts)).fetchall()
        for (alert_id,) in rows:
            record_change(conn, int(alert_id), AlertChange.CLEARED)
        return len(rows)

    def reannounce_unacknowledged(self, conn: psycopg.Connection, site: str,
                                  now: datetime) -> int:
        rows = conn.execute(
            "UPDATE alerts SET reannounced_at = %s, escalated = true "
            "WHERE site = %s AND status = 'open' AND reannounced_at IS NULL "
            "AND severity <> 'notice' AND first_ts + %s <= %s RETURNING id",
            (now, site, UNACKED_AFTER, now)).fetchall()
        for (alert_id,) in rows:
            record_change(conn, int(alert_id), AlertChange.REANNOUNCED)
        return len(rows)


class RulesRuntime:
    """Owns the engine; thread-safe between the writer hook and the ticking thread."""

    def __init__(self, dsn: str, wall: Clock = time.time, tick_s: float = 0.2,
                 sites: list[str] | None = None) -> None:
        self._dsn = dsn
        self._sites = set(sites) if sites else None  # None: every site
        self._wall = wall
        self._tick_s = tick_s
        self._lock = threading.RLock()
        self._applier = AlertApplier()
        self._engine = RulesEngine({})
        self._layout_loaded = 0.0
        self._seen: dict[str, tuple[datetime, float]] = {}  # site -> (watermark, wall at)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._known: set[tuple[str, str]] = set()
        self._next_reannounce = 0.0

    # -- start-up -------------------------------------------------------------------------
    def load(self) -> None:
        """Build the engine from the store: layouts, then the last day of events."""
        with psycopg.connect(self._dsn, autocommit=False) as conn:
            layouts, books = self._layouts(conn)
            with self._lock:
                self._engine = RulesEngine(layouts, books, history=HISTORY)
                self._remember(layouts)
                self._layout_loaded = time.monotonic()
                # Per site, the hours before its newest event (live or a replayed night):
                # long enough for every timer and excursion the rules keep.
                rows = conn.execute(
                    "SELECT e.site, e.device, e.event_id, e.ts, e.kind, e.battery "
                    "FROM unnest(%s::text[]) AS s(site) "
                    "CROSS JOIN LATERAL (SELECT max(ts) AS newest FROM events "
                    "                    WHERE site = s.site) m "
                    "JOIN events e ON e.site = s.site AND e.ts >= m.newest - %s "
                    "ORDER BY e.ts", (list(layouts), REPLAY)).fetchall()
                intents: list[Intent] = []
                for site, device, event_id, ts, kind, battery in rows:
                    if (site, device) in self._known:
                        intents += self._engine.process(
                            Event(site, device, event_id, ts, EventKind(kind), battery))
                        self._note(site, ts)
                for site, device, presence, at in conn.execute(
                        "SELECT site, id, presence, presence_at FROM devices "
                        "WHERE presence = 'offline' AND revoked_at IS NULL"):
                    if (site, device) in self._known and at is not None:
                        at = self.site_clock(site, grace=timedelta(0)) or at
                        intents += self._engine.process_status(
                            StatusChange(site, device, Presence(presence), at))
                self._applier.apply(conn, intents)
            conn.commit()
        log.info("rules engine rebuilt from %d stored events", len(rows))

    def _layouts(self, conn: psycopg.Connection
                 ) -> tuple[dict[str, SiteLayout], dict[str, RuleBook]]:
        layouts, books = load_layouts(conn)
        if self._sites is not None:
            layouts = {k: v for k, v in layouts.items() if k in self._sites}
            books = {k: v for k, v in books.items() if k in self._sites}
        return layouts, books

    def reload_layouts(self, conn: psycopg.Connection | None = None) -> None:
        """Pick up new sites, rooms, devices, bases and rule settings (on the caller's
        connection when given: no extra connect on the hot path)."""
        if conn is None:
            with psycopg.connect(self._dsn) as own:
                layouts, books = self._layouts(own)
        else:
            layouts, books = self._layouts(conn)
        with self._lock:
            for site, layout in layouts.items():
                self._engine.update_layout(layout, books[site])
            self._remember(layouts)
            self._layout_loaded = time.monotonic()

    # -- the writer hook --------------------------------------------------------------
    def on_batch(self, conn: psycopg.Connection, rows: list[StoredEventRow],
                 statuses: list[StatusChange]) -> None:
        if not rows and not statuses:
            return
        if self._unknown(rows):
            # A device added since the last reload: read the layout now, in this
            # transaction, so its first event counts. (Routine reloads run on the ticker.)
            self.reload_layouts(conn)
        # In arrival order: a status is placed on the site's clock between the events that
        # arrived before and after it (a status carries no device time of its own).
        arrivals: list[tuple[datetime, StoredEventRow | StatusChange]] = [
            (row.received_at, row) for row in rows]
        arrivals += [(change.ts, change) for change in statuses]
        arrivals.sort(key=lambda pair: pair[0])
        with self._lock:
            intents: list[Intent] = []
            for _, item in arrivals:
                if isinstance(item, StoredEventRow):
                    if (item.event.site, item.event.device) in self._known:
                        intents += self._engine.process(item.event)
                        self._note(item.event.site, item.event.ts)
                    continue
                change = item
                if change.retained:
                    continue  # old news re-sent on subscribe; silence detection still applies
                if (change.site, change.device) in self._known:
                    # A status carries no device time: stamp it on the site's clock, so a
                    # replayed night is not pushed to today by a status message.
                    at = self.site_clock(change.site, grace=timedelta(0))
                    if at is None:
                        # No event yet, so no time base: a wall-clock status would move a
                        # replayed night's clock to today. The presence is stored anyway.
                        continue
                    intents += self._engine.process_status(replace(change, ts=at))
            self._applier.apply(conn, intents)
        if rows:
            metrics.PIPELINE_LAG.set(max(0.0, self._wall() - rows[-1].received_at.timestamp()))

    def _unknown(self, rows: list[StoredEventRow]) -> bool:
        return any((r.event.site, r.event.device) not in self._known for r in rows)

    def _remember(self, layouts: dict[str, SiteLayout]) -> None:
        self._known = {(site, device) for site, layout in layouts.items()
                       for device in layout.devices}

    def _note(self, site: str, ts: datetime) -> None:
        previous = self._seen.get(site)
        if previous is None or ts > previous[0]:
            self._seen[site] = (ts, self._wall())

    def site_clock(self, site: str, grace: timedelta = GRACE) -> datetime | None:
        seen = self._seen.get(site)
        if seen is None:
            return None
        watermark, wall_at = seen
        if not _live(watermark, wall_at):
            return watermark
        return watermark + timedelta(seconds=max(0.0, self._wall() - wall_at)) - grace

    # -- ticking ------------------------------------------------------------------------
    def tick(self) -> int:
        """Fire what is due on every site's clock; returns the number of alert changes."""
        conn = self._connection()
        changes = 0
        clocks: list[tuple[str, datetime]] = []
        # The lock is shared with the writer's hook: hold it for the engine, and for the
        # database only when a timer fired (rare), never for the routine checks below.
        with self._lock:
            for site in list(self._seen):
                now = self.site_clock(site)
                if now is None:
                    continue
                clocks.append((site, now))
                intents = self._engine.advance(site, now)
                if intents:
                    changes += self._applier.apply(conn, intents)
        if time.monotonic() >= self._next_reannounce:
            self._next_reannounce = time.monotonic() + REANNOUNCE_CHECK_S
            for site, now in clocks:
                changes += self._applier.reannounce_unacknowledged(conn, site, now)
        conn.commit()
        return changes

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=False, connect_timeout=3)
        return self._conn

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rules-ticker", daemon=True)
        self._thread.start()

    def _wait_s(self) -> float:
        """Until the next tick: ``tick_s``, or sooner when a site's clock reaches its next
        timer sooner, so a live timer fires right at its deadline (plus the grace)."""
        wait = self._tick_s
        with self._lock:
            for site, (watermark, wall_at) in self._seen.items():
                due = self._engine.due(site)
                if due is not None and _live(watermark, wall_at):
                    at = wall_at + (due - watermark + GRACE).total_seconds()
                    wait = min(wait, at - self._wall() + 0.001)
        return max(wait, 0.0)

    def _run(self) -> None:
        wait = self._wait_s()
        while not self._stop.wait(wait):
            try:
                if time.monotonic() - self._layout_loaded > LAYOUT_TTL_S:
                    # Here, not in the writer's hook: a reload is a few milliseconds of
                    # reads that an alert on its way through the writer should not wait for.
                    self.reload_layouts(self._connection())
                self.tick()
                wait = self._wait_s()
            except psycopg.Error as exc:
                log.warning("rules tick failed (%s); retrying in 1 s", str(exc).strip())
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                wait = 1.0  # the database is away: no tight loop however overdue a timer is

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._conn is not None:
            self._conn.close()


def _live(watermark: datetime, wall_at: float) -> bool:
    """Whether the newest event arrived close to its own time (not a replay of another)."""
    return abs(wall_at - watermark.timestamp()) <= LIVE_WITHIN.total_seconds()


def monitored_today(bases: list[MonitoringBasis], day: date) -> bool:
    return any(b.covers(day) for b in bases)
