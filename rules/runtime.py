"""The rules engine at work: fed by the writer's batches, ticking on the site clock.

Runs no SQL: every read and write goes through ``ingest`` (``rule_layouts``,
``rules_store``; intents are applied by ``ingest.alert_intents``).

- ``on_batch`` is a writer hook: it turns a batch's new events and statuses into intents,
  which the writer applies in the transaction that stores the events, so the alerts they
  raise are committed together with them (or not at all).
- ``tick`` fires timers ("not back within 15 min") and the unacknowledged-alert
  re-announcement on each site's clock, in transactions of its own.
- Budget. The rules never hold ingest hostage: once a site's rules work in a batch has
  taken ``budget_s`` (or all sites' together four times that, or the runtime is
  stopping), the site's remaining inputs in the batch are not evaluated in the writer's
  transaction. Their events are committed and acknowledged as
  usual; their sites are *behind*: every later input of such a site joins its queue, in
  arrival order, and the ticker thread evaluates the queue in slices of its own
  transactions (``catch_up``), holding the site's timers until it has caught up, so the
  alerts come out as they would have, only later. Visible as the metrics
  ``nattero_rules_over_budget_total``, ``nattero_rules_deferred_inputs`` and
  ``nattero_rules_sites_behind``, a warning in the log, and ``behind()`` (``/readyz``).
  Nothing is lost if the process ends meanwhile: the queue holds stored events, which the
  replay on the next start evaluates.
- On start the engine is rebuilt by replaying each site's last hours of stored events;
  intents are applied idempotently (unique episode keys, one trigger row per event), so a
  restart, even after SIGKILL, neither loses a pending timer nor repeats an escalation.

Site clock. A live site (its newest event arrived within ``LIVE_WITHIN`` of its own time)
runs on wall time, less a small grace for delivery delay, so timers fire at their deadlines
with no further event, and after a restart every timer due during the outage fires at once
(the replay notes each event with its stored arrival time, not the restart's). A replay of
another time (a simulated or past night) runs on event time: the newest event time alone,
since moving it on by wall time would make a replay's alerts depend on how fast the
machine happened to be.

Device clocks are not trusted with the site's clock. Every event is given to the engine at
``min(ts, arrival)``: a device that is fast (within the gateway's future skew; beyond it the
gateway dead-letters the event) is evaluated when it arrived, so its ts cannot move the
engine's watermark past wall time and fire another flat's timers early, nor store an
escalation in the future. Slow devices and replayed nights keep their own (earlier) ts, so
the late-input rules and event-time replays are unchanged; the replay on start applies the
same rule with the stored arrival times, so it gives the alerts live evaluation gave.
An event older than the re-ordering window (``HISTORY`` before the site clock) is stored
but not evaluated: it is logged and counted (``nattero_rules_skipped_total``).

A device moved to another room (``ingest.sites.move_device``). Every stored event carries
the room its device sat in when it was stored; the engine knows a device's room from the
layout. An event stored in a room the layout no longer gives its device (stored before a
move) is not evaluated: not live, and not in the replay on start, so a moved device's
earlier events never count in its new room (nor, after a restart, in its old one: the old
room's situation is what its alerts already say). A batch with an event stored in a room
other than the layout's reloads the layout first, as for a new device: the first event
after a move counts in the new room, not up to ``LAYOUT_TTL_S`` later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core import metrics
from core.events import Event, RoomKind, StatusChange
from core.intents import Intent
from core.night_window import NightWindow
from ingest.rule_layouts import StoredLayouts
from ingest.rules_store import QuietDevices, RulesStore
from ingest.writer import StoredEventRow, StoreUnavailable, WriteFence
from rules.engine import RulesEngine
from rules.errors import LayoutError, UnknownSite
from rules.layout import BasisKind, DeviceInfo, MonitoringBasis, RoomInfo, SiteLayout
from rules.routines import LEARN_NIGHTS, FlatRoutine, learn_routines
from rules.settings import LOW_BATTERY_BELOW, RuleBook, RuleName, RuleOverride
from rules.staff import StaffRound

log = logging.getLogger(__name__)

REPLAY = timedelta(hours=12)  # rebuilt on start: a whole night, longer than any timer
HISTORY = timedelta(hours=12)  # how late an event may arrive and still be re-ordered
GRACE = timedelta(milliseconds=500)
LAYOUT_TTL_S = 5.0  # rule settings, bases and night windows changed elsewhere apply by then
REANNOUNCE_CHECK_S = 1.0  # how often unacknowledged alerts are looked for (wall time)
LIVE_WITHIN = timedelta(hours=1)  # device clocks and delivery may be off by this much
BATCH_BUDGET_S = 0.25  # one site's share of one writer batch (core.settings)
BATCH_BUDGETS = 4  # all sites of a batch together: this many budgets
CATCH_UP_SLICE_S = 0.05  # the engine lock is let go this often while catching up
CATCH_UP_ROUND_S = 0.25  # and what was caught up is committed this often
CATCH_UP_TURN = 50  # a site's inputs at a time, before the next site behind gets its turn
FUTURE_SKEW = timedelta(minutes=2)  # the default of Settings.event_future_skew_s
ROUTINES_EVERY_S = 60.0  # how often the flats' routines are learned again (rules.routines)
# How often the rounds staff announce on the board are read (rules.staff): the nurse
# presses "going round" and walks; her first motion comes seconds later.
STAFF_EVERY_S = 1.0

Clock = Callable[[], float]


def layouts_from_store(stored: StoredLayouts) -> tuple[dict[str, SiteLayout], dict[str, RuleBook]]:
    """Every site as the rules see it, with its rule book, from what the store holds."""
    bases: dict[tuple[str, str], list[MonitoringBasis]] = {}
    for b in stored.bases:
        try:
            basis = MonitoringBasis(BasisKind(b.kind), b.reference, b.valid_from, b.valid_to)
        except LayoutError as exc:
            # Without a valid basis the flat is not monitored: the lawful default.
            log.warning("ignoring invalid monitoring basis of %s/%s: %s", b.site, b.room, exc)
            continue
        bases.setdefault((b.site, b.room), []).append(basis)
    common = {(r.site, r.id) for r in stored.rooms if r.kind is RoomKind.COMMON}
    rooms: dict[str, dict[str, RoomInfo]] = {}
    for r in stored.rooms:
        corridor = r.corridor
        if corridor is not None and (r.site, corridor) not in common:
            # A corridor that is gone or not a common room: no evidence, not a broken site.
            log.warning("ignoring corridor %r of %s/%s: not a common room of the site",
                        corridor, r.site, r.id)
            corridor = None
        rooms.setdefault(r.site, {})[r.id] = RoomInfo(r.kind, r.label,
                                                      tuple(bases.get((r.site, r.id), ())),
                                                      corridor=corridor)
    devices: dict[str, dict[str, DeviceInfo]] = {}
    for d in stored.devices:
        devices.setdefault(d.site, {})[d.id] = DeviceInfo(d.room, d.kind, d.heartbeat_s)
    site_overrides: dict[str, dict[RuleName, RuleOverride]] = {}
    room_overrides: dict[str, dict[str, dict[RuleName, RuleOverride]]] = {}
    for setting in stored.rule_settings:
        override = RuleOverride(setting.enabled, setting.minutes, setting.severity)
        if setting.room is None:
            site_overrides.setdefault(setting.site, {})[setting.rule] = override
        else:
            room_overrides.setdefault(setting.site, {}).setdefault(
                setting.room, {})[setting.rule] = override
    layouts: dict[str, SiteLayout] = {}
    books: dict[str, RuleBook] = {}
    for site in stored.sites:
        layouts[site.id] = SiteLayout(
            site.id, NightWindow(site.night_start, site.night_end, ZoneInfo(site.tz)),
            rooms.get(site.id, {}), devices.get(site.id, {}))
        books[site.id] = RuleBook(site=site_overrides.get(site.id, {}),
                                  rooms=room_overrides.get(site.id, {}))
    return layouts, books


def _last_night_end(window: NightWindow, now: datetime) -> datetime:
    """The end of the newest night of ``window`` that ended at or before ``now``."""
    day = now.astimezone(window.tz).date()
    for back in range(3):
        end = window.bounds(day - timedelta(days=back))[1]
        if end <= now:
            return end
    raise AssertionError("a night window ends within two days")  # pragma: no cover


class RulesRuntime:
    """Owns the engine; thread-safe between the writer hook and the ticking thread.

    The engine lock guards the engine only. The writer's hook does no database work under
    it (the writer applies the intents after); the ticker applies what fired while still
    holding it, so a batch evaluated after a timer is applied after the timer's changes
    (a device back after its offline alert clears that alert). The ticker takes the
    database's change lock under the engine lock, never the other way round, and the
    writer never waits for the engine lock while holding the change lock: no cycle.
    """

    def __init__(self, dsn: str, wall: Clock = time.time, tick_s: float = 0.2,
                 sites: list[str] | None = None, budget_s: float = BATCH_BUDGET_S,
                 future_skew: timedelta = FUTURE_SKEW, fence: WriteFence | None = None) -> None:
        # fence: a leased worker's (ingest.leases); the ticker's commits check it too.
        self._store = RulesStore(dsn, fence=fence)
        self._future_skew = future_skew
        self._sites = set(sites) if sites else None  # None: every site
        self._wall = wall
        self._tick_s = tick_s
        self._lock = threading.RLock()
        self._engine = RulesEngine({})
        self._layout_loaded = 0.0
        self._layout_version: int | None = None  # of the layouts last read (ingest)
        # site -> (newest evaluated time, wall time it arrived): whether the site is live
        self._seen: dict[str, tuple[datetime, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: dict[tuple[str, str], str] = {}  # (site, device) -> its room
        self._next_reannounce = 0.0
        self._budget_s = budget_s
        # Sites behind (see the module docstring): their inputs in arrival order, statuses
        # already stamped on the site clock; and caught-up intents not yet committed.
        self._behind: dict[str, deque[Event | StatusChange]] = {}
        self._unapplied: list[Intent] = []
        # Sites whose timers' changes the ticker is committing, outside the engine lock:
        # their events wait in a queue meanwhile (as a site behind), so a site's alerts
        # change in the order its inputs came. ``_late``: sites put behind by the budget.
        self._applying: set[str] = set()
        self._late: set[str] = set()
        self._routines_learned = 0.0
        self._routines_upto: dict[str, datetime] = {}  # site -> end of the last night learned
        self._staff_read = 0.0
        self._staff: dict[str, tuple[StaffRound, ...]] = {}

    # -- start-up -------------------------------------------------------------------------
    def load(self) -> None:
        """Build the engine from the store: layouts, then the last hours of events."""
        version = self._store.layout_version()  # first: a change meanwhile is read later
        layouts, books = self._layouts(self._store.layouts(self._sites))
        self._layout_version = version
        # Per site, the hours before its newest event (live or a replayed night):
        # long enough for every timer and excursion the rules keep.
        wall = datetime.fromtimestamp(self._wall(), UTC)
        not_after = wall + self._future_skew
        engine = RulesEngine(layouts, books, history=HISTORY)
        # Events older than this may be skipped as older than the re-ordering window (a
        # live site's clock is wall time): not counted as a quiet device's signs of life.
        quiet = QuietDevices(
            [(site, device, info.room, engine.silence(site, device))
             for site, layout in layouts.items() for device, info in layout.devices.items()],
            trusted_from=wall - HISTORY + self._future_skew, future_skew=self._future_skew,
            battery_below=LOW_BATTERY_BELOW)
        replay = self._store.replay(list(layouts), REPLAY, not_after, quiet)
        events, offline = replay.events, replay.offline
        for site, heard in replay.heard.items():
            engine.resume_devices(site, heard)
        staff = self._store.staff_rounds(not_after - REPLAY - HISTORY, self._sites)
        intents: list[Intent] = []
        with self._lock:
            self._engine = engine
            self._remember(layouts)
            self._layout_loaded = time.monotonic()
            self._staff = {}
            self._apply_staff(staff)
            skipped: dict[tuple[str, str], int] = {}
            for row in events:
                item = self._admit_event(row.event, row.received_at, skipped, row.room)
                if item is not None:
                    intents += self._engine.process(item)
            for change in offline:
                if (change.site, change.device) in self._known:
                    at = self.site_clock(change.site, grace=timedelta(0)) or change.ts
                    intents += self._engine.process_status(replace(change, ts=at))
            # Timers due while the runtime was down fire now, with their own deadlines as
            # their times: a live site's clock is wall time, whatever the last event was.
            for site in list(self._seen):
                now = self.site_clock(site)
                if now is not None:
                    intents += self._engine.advance(site, now)
        self._report_skipped(skipped, replay=True)
        self._store.apply(intents)
        log.info("rules engine rebuilt from %d stored events (and the last sign of life of "
                 "%d quiet devices, whose other plain heartbeats need no replay)", len(events),
                 sum(len(heard) for heard in replay.heard.values()))
        self.learn_routines()

    def routines(self, site: str) -> Mapping[str, FlatRoutine]:
        """``site``'s flats' routines as the engine uses them now."""
        with self._lock:
            return self._engine.routines(site)

    def learn_routines(self) -> None:
        """Each flat's routine from its site's nights before the site's clock (the ticker
        calls this every ``ROUTINES_EVERY_S``): a night that ended is learned from."""
        with self._lock:
            clocks = {site: self.site_clock(site) for site in self._seen}
            layouts = {site: self._engine.layout(site) for site in clocks}
        for site, now in clocks.items():
            if now is None:
                continue
            # A routine learns only from nights that ended: until another one ends, the
            # store has nothing new for it (no query each minute for the same answer).
            ended = _last_night_end(layouts[site].night, now)
            if self._routines_upto.get(site) == ended:
                continue
            history = self._store.routine_history(
                site, now - timedelta(days=LEARN_NIGHTS + 1), now)
            routines = learn_routines(layouts[site], history, now)
            with self._lock:
                self._engine.update_routines(site, routines)
            self._routines_upto[site] = ended
        self._routines_learned = time.monotonic()

    def read_staff(self) -> None:
        """The rounds staff announced on the board (``rules.staff``), for every site whose
        rounds changed: they apply to every input evaluated from now on."""
        since = datetime.fromtimestamp(self._wall(), UTC) - REPLAY - HISTORY
        staff = self._store.staff_rounds(since, self._sites)
        with self._lock:
            self._apply_staff(staff)
        self._staff_read = time.monotonic()

    def _apply_staff(self, stored: Mapping[str, list[tuple[str | None, datetime, datetime]]]
                     ) -> None:
        """Under the lock: give each known site its rounds when they differ from what it
        has (a site whose rounds all ended gets none)."""
        for site in set(self._staff) | set(stored):
            rounds = tuple(StaffRound(room, start, end)
                           for room, start, end in stored.get(site, ()))
            if self._staff.get(site, ()) == rounds:
                continue
            try:
                self._engine.update_staff(site, rounds)
            except UnknownSite:
                continue  # not this runtime's site, or not in its layouts yet
            self._staff[site] = rounds

    def _layouts(self, stored: StoredLayouts
                 ) -> tuple[dict[str, SiteLayout], dict[str, RuleBook]]:
        layouts, books = layouts_from_store(stored)
        if self._sites is not None:
            layouts = {k: v for k, v in layouts.items() if k in self._sites}
            books = {k: v for k, v in books.items() if k in self._sites}
        return layouts, books

    def reload_layouts(self, stored: StoredLayouts | None = None) -> None:
        """Pick up new sites, rooms, devices, bases and rule settings: ``stored``, or read
        on the runtime's own connection (the ticker's thread only)."""
        layouts, books = self._layouts(stored or self._store.layouts(self._sites))
        with self._lock:
            for site, layout in layouts.items():
                self._engine.update_layout(layout, books[site])
            self._remember(layouts)
            self._layout_loaded = time.monotonic()

    # -- the writer hook --------------------------------------------------------------
    def on_batch(self, rows: list[StoredEventRow], statuses: list[StatusChange],
                 layouts: Callable[[], StoredLayouts]) -> list[Intent]:
        """The writer's hook: the intents a batch's new events and statuses give, for the
        writer to apply in the batch's transaction. No database work here; ``layouts`` is
        called (read in that transaction) only for a device not known yet."""
        if not rows and not statuses:
            return []
        if self._unknown(rows):
            # A device added since the last reload: read the layout now, in this
            # transaction, so its first event counts. (Routine reloads run on the ticker.)
            self.reload_layouts(layouts())
        # In arrival order: a status is placed on the site's clock between the events that
        # arrived before and after it (a status carries no device time of its own).
        arrivals: list[tuple[datetime, StoredEventRow | StatusChange]] = [
            (row.received_at, row) for row in rows]
        arrivals += [(change.ts, change) for change in statuses]
        arrivals.sort(key=lambda pair: pair[0])
        intents: list[Intent] = []
        # Each site has the budget to itself, so one site's burst does not put the others
        # behind; all together may take a few budgets at most.
        spent: dict[str, float] = {}
        over_all = time.monotonic() + BATCH_BUDGETS * self._budget_s
        deferred = 0
        skipped: dict[tuple[str, str], int] = {}
        with self._lock:
            for _, arrived in arrivals:
                item = self._admit(arrived, skipped)
                if item is None:
                    continue
                site = item.site
                queue = self._behind.get(site)
                if queue is None and site in self._applying:
                    # Its timers' changes are being committed: after them, in order.
                    queue = self._behind[site] = deque()
                if queue is None and (self._stop.is_set()
                                      or spent.get(site, 0.0) > self._budget_s
                                      or time.monotonic() > over_all):
                    queue = self._fall_behind(site)
                if queue is not None:
                    queue.append(item)
                    deferred += 1
                    continue
                started = time.monotonic()
                intents += self._evaluate(item)
                spent[site] = spent.get(site, 0.0) + time.monotonic() - started
            if deferred:
                metrics.RULES_DEFERRED.set(sum(len(q) for q in self._behind.values()))
        self._report_skipped(skipped)
        if rows:
            metrics.PIPELINE_LAG.set(max(0.0, self._wall() - rows[-1].received_at.timestamp()))
        return intents

    def _admit(self, arrived: StoredEventRow | StatusChange,
               skipped: dict[tuple[str, str], int]) -> Event | StatusChange | None:
        """The input the engine is to see (an event at ``min(ts, arrival)``, a status
        stamped on the site clock), or None (skipped events counted by site and reason)."""
        if isinstance(arrived, StoredEventRow):
            return self._admit_event(arrived.event, arrived.received_at, skipped,
                                     arrived.room)
        change = arrived
        if change.retained:
            return None  # old news re-sent on subscribe; silence detection still applies
        if (change.site, change.device) not in self._known:
            return None
        # A status carries no device time: stamp it on the site's clock, so a replayed
        # night is not pushed to today by a status message.
        at = self.site_clock(change.site, grace=timedelta(0))
        if at is None:
            # No event yet, so no time base: a wall-clock status would move a replayed
            # night's clock to today. The presence is stored anyway.
            return None
        return replace(change, ts=at)

    def _evaluate(self, item: Event | StatusChange) -> list[Intent]:
        if isinstance(item, Event):
            return self._engine.process(item)
        return self._engine.process_status(item)

    def _fall_behind(self, site: str) -> deque[Event | StatusChange]:
        queue: deque[Event | StatusChange] = deque()
        self._behind[site] = queue
        if self._stop.is_set():
            return queue  # stopping: the replay on the next start evaluates what is left
        self._late.add(site)
        metrics.RULES_OVER_BUDGET.inc()
        metrics.RULES_SITES_BEHIND.set(len(self._behind))
        log.warning("rules: site %r is behind: its rules in a batch took more than %g s, so its "
                    "events were stored without waiting for them; they are evaluated next, "
                    "outside the writer (its timers wait until then)", site, self._budget_s)
        return queue

    def behind(self) -> dict[str, int]:
        """Sites whose rules are catching up, with how many inputs are still to evaluate."""
        with self._lock:
            # Not a site whose events wait a moment for its timers' commit (``_applying``).
            return {site: len(queue) for site, queue in self._behind.items()
                    if site in self._late}

    def catch_up(self) -> int:
        """Evaluate what the writer deferred, in slices that let go of the engine lock, and
        commit what it gave in one transaction of the runtime's own per round (a commit is
        a disk flush: one per slice would be most of the cost); returns the number of alert
        changes. A site stays behind (its later inputs queued, its timers held) until its
        queue is empty *and* what it gave is committed, so its alerts change in the order
        its inputs came."""
        if not self._behind and not self._unapplied:
            return 0
        until = time.monotonic() + CATCH_UP_ROUND_S
        while not self._stop.is_set():
            with self._lock:
                slice_until = min(until, time.monotonic() + CATCH_UP_SLICE_S)
                self._catch_up_in_turns(slice_until)
                left = sum(len(queue) for queue in self._behind.values())
                metrics.RULES_DEFERRED.set(left)
            if not left or time.monotonic() >= until:
                break
            time.sleep(0)  # let a writer waiting for the engine lock have it
        changes = self._commit_unapplied()
        with self._lock:
            for site, queue in list(self._behind.items()):
                if not queue:
                    del self._behind[site]
                    if site in self._late:
                        self._late.discard(site)
                        log.info("rules: site %r has caught up", site)
            metrics.RULES_SITES_BEHIND.set(len(self._behind))
        return changes

    def _catch_up_in_turns(self, until: float) -> None:
        """Evaluate the sites' queues in turns of ``CATCH_UP_TURN`` inputs each, until
        ``until`` or all are empty: a site put behind with one exit door waits for one turn
        of a bursting site, not for all of its burst. Each site's inputs stay in order.
        A site that had its turn goes to the back, so the next slice begins with the
        others even when one turn outlasts a slice."""
        while time.monotonic() < until:
            busy = [(site, queue) for site, queue in self._behind.items() if queue]
            if not busy:
                return
            for site, queue in busy:
                for _ in range(min(CATCH_UP_TURN, len(queue))):
                    self._unapplied += self._evaluate(queue.popleft())
                self._behind[site] = self._behind.pop(site)
                if time.monotonic() >= until:
                    return

    def _commit_unapplied(self) -> int:
        """Commit what the engine gave and the store has not yet, outside the engine lock
        (in short transactions: ``RulesStore.apply``). Kept until committed: if the database
        is away, the next round applies them first (again: applying twice changes
        nothing), and their sites' events keep waiting."""
        changes = self._store.apply(self._unapplied) if self._unapplied else 0
        self._unapplied = []
        with self._lock:
            self._applying.clear()
        return changes

    def _unknown(self, rows: list[StoredEventRow]) -> bool:
        """Whether a row's device is new to the engine, or was stored in another room than
        the engine gives it (moved since the last reload)."""
        return any(self._known.get((r.event.site, r.event.device)) != r.room for r in rows)

    def _remember(self, layouts: dict[str, SiteLayout]) -> None:
        self._known = {(site, device): info.room for site, layout in layouts.items()
                       for device, info in layout.devices.items()}

    def _admit_event(self, event: Event, received_at: datetime,
                     skipped: dict[tuple[str, str], int], room: str) -> Event | None:
        """A stored event as the engine is to see it (under the lock): at
        ``min(ts, arrival)``, or None when stamped beyond the future skew, older than the
        re-ordering window or stored in another room than its device sits in now (moved
        since; counted in ``skipped`` by site and reason). Noted on the site clock on
        admission, whether it is evaluated now or deferred (a site behind)."""
        known = self._known.get((event.site, event.device))
        if known is None:
            return None
        if known != room:
            skipped[(event.site, "moved")] = skipped.get((event.site, "moved"), 0) + 1
            return None
        if event.ts - received_at > self._future_skew:
            # The gateway dead-letters these; one stored before it did must not be
            # evaluated either (it would move the site's clock to its own time).
            skipped[(event.site, "future_ts")] = skipped.get((event.site, "future_ts"), 0) + 1
            return None
        at = min(event.ts, received_at)
        clock = self.site_clock(event.site, grace=timedelta(0))
        if clock is not None and at < clock - HISTORY:
            skipped[(event.site, "too_old")] = skipped.get((event.site, "too_old"), 0) + 1
            return None
        self._note(event.site, at, received_at.timestamp())
        return event if at == event.ts else replace(event, ts=at)

    def _report_skipped(self, skipped: dict[tuple[str, str], int], replay: bool = False
                        ) -> None:
        for (site, reason), count in skipped.items():
            metrics.RULES_SKIPPED.labels(reason=reason).inc(count)
            if reason == "too_old" and replay:
                # The replay reads the hours before the site's newest event; a live site's
                # clock is now, so what the site sent before now - HISTORY is past the
                # window whenever its last event came a while ago: not a device's clock.
                log.info("rules: the replay of site %s read %d event(s) from before the "
                         "re-ordering window (%s before now): not evaluated", site, count,
                         HISTORY)
            elif reason == "moved":
                log.info("rules: %d event(s) of site %s were stored before their device "
                         "moved to another room: not evaluated in its new room",
                         count, site)
            elif reason == "too_old":
                log.warning("rules: %d event(s) of site %s are older than the re-ordering "
                            "window (%s before the site's clock): stored, not evaluated; "
                            "check the devices' clocks and buffers", count, site, HISTORY)
            else:
                log.warning("rules: %d stored event(s) of site %s are stamped more than %s "
                            "after they arrived: not evaluated; check the devices' clocks",
                            count, site, self._future_skew)

    def _note(self, site: str, at: datetime, arrived: float) -> None:
        previous = self._seen.get(site)
        if previous is None or at > previous[0]:
            self._seen[site] = (at, arrived)

    def site_clock(self, site: str, grace: timedelta = GRACE) -> datetime | None:
        """The site's clock: wall time less ``grace`` when live, else its newest event time;
        None before its first event."""
        seen = self._seen.get(site)
        if seen is None:
            return None
        watermark, arrived = seen
        if not _live(watermark, arrived):
            return watermark
        return datetime.fromtimestamp(self._wall(), UTC) - grace

    # -- ticking ------------------------------------------------------------------------
    def tick(self) -> int:
        """Fire what is due on every site's clock; returns the number of alert changes."""
        changes = 0
        clocks: list[tuple[str, datetime]] = []
        # The lock is shared with the writer's hook: held for the engine only. What the
        # timers gave is committed after it is let go (thousands at once after an outage
        # held every site's new alerts back for seconds); meanwhile the events of the
        # sites it concerns wait, so each site's alerts still change in order.
        with self._lock:
            for site in list(self._seen):
                if site in self._behind:
                    continue  # its timers wait for its deferred inputs (catch_up)
                now = self.site_clock(site)
                if now is None:
                    continue
                clocks.append((site, now))
                # Kept until committed, like catch_up's: a timer fires once in the engine,
                # so if the database is away now, the next tick applies what it gave.
                fired = self._engine.advance(site, now)
                if fired:
                    self._unapplied += fired
                    self._applying.add(site)
        changes += self._commit_unapplied()
        if time.monotonic() - self._routines_learned >= ROUTINES_EVERY_S:
            self.learn_routines()
        if time.monotonic() - self._staff_read >= STAFF_EVERY_S:
            self.read_staff()
        if time.monotonic() >= self._next_reannounce:
            self._next_reannounce = time.monotonic() + REANNOUNCE_CHECK_S
            changes += self._store.reannounce(clocks)
        return changes

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rules-ticker", daemon=True)
        self._thread.start()

    def _wait_s(self) -> float:
        """Until the next tick: ``tick_s``, or sooner when a site's clock reaches its next
        timer sooner, so a live timer fires right at its deadline (plus the grace)."""
        wait = self._tick_s
        with self._lock:
            if self._behind:
                return 0.0
            for site, (watermark, arrived) in self._seen.items():
                due = self._engine.due(site)
                if due is not None and _live(watermark, arrived):
                    at = (due + GRACE).timestamp()
                    wait = min(wait, at - self._wall() + 0.001)
        return max(wait, 0.0)

    def _run(self) -> None:
        wait = self._wait_s()
        while not self._stop.wait(wait):
            try:
                if time.monotonic() - self._layout_loaded > LAYOUT_TTL_S:
                    # Here, not in the writer's hook; and only when something changed: for
                    # 200 sites a reload is ~0.3 s of work, a sixth of it holding the
                    # engine's lock, that an alert on its way through the writer waits for.
                    # The version is read first, so a change committed while the layouts
                    # are read is seen again next time, never missed.
                    version = self._store.layout_version()
                    if version != self._layout_version:
                        self.reload_layouts()
                        self._layout_version = version
                    self._layout_loaded = time.monotonic()
                self.catch_up()
                self.tick()
                wait = self._wait_s()
            except StoreUnavailable as exc:
                log.warning("rules tick failed (%s); retrying in 1 s", exc)
                wait = 1.0  # the database is away: no tight loop however overdue a timer is

    def request_stop(self) -> None:
        """Stop evaluating at once (the writer's hook then defers everything: the replay on
        the next start evaluates it); ``stop`` then ends the ticker."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._store.close()


def _live(newest: datetime, arrived: float) -> bool:
    """Whether the newest event arrived close to its own time (not a replay of another)."""
    return abs(arrived - newest.timestamp()) <= LIVE_WITHIN.total_seconds()


def monitored_today(bases: list[MonitoringBasis], day: date) -> bool:
    return any(b.covers(day) for b in bases)
