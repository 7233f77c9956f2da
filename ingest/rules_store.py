"""The rules runtime's own connection to the store.

Used for its layouts (``ingest.rule_layouts``), the replay on start (recent events,
offline devices) and the ticker's transactions (timers that fired, re-announcements).
The writer's transaction is not here: intents of a batch are applied by ``ingest.writer``.
With a ``fence`` (a leased worker, ``ingest.leases``) the ticker's transactions check the
leases of their sites just before they commit, as the writer's do: an old owner's timers
commit nothing.

Alert changes go through ``ingest.alert_intents``, with its lock order. The store knows
nothing of the rules: intents are ``core.intents`` values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from core.events import Event, EventKind, Presence, StatusChange
from core.intents import Intent
from ingest.alert_intents import apply_intents, reannounce_unacknowledged
from ingest.rule_layouts import StoredLayouts, layout_version, read_layouts
from ingest.writer import StoredEventRow, StoreUnavailable, WriteFence

__all__ = ["APPLY_CHUNK", "REANNOUNCE_CHUNK", "QuietDevices", "Replay", "RulesStore"]

# Re-announcements per transaction: two round trips each under the change lock.
REANNOUNCE_CHUNK = 10
# The rules' own intents per transaction (timers, catching up, the replay on start): a
# few round trips each under the change lock, some tens of milliseconds a chunk.
APPLY_CHUNK = 50


@dataclass(frozen=True)
class QuietDevices:
    """Which devices' plain heartbeats a replay may leave out (``RulesStore.replay``).

    ``devices``: (site, device, the room the rules give it, its allowed silence). A device
    is *quiet* over the window when, by its arrival-clamped times (``least(ts,
    received_at)``, as the rules see an event) counted from ``trusted_from`` on, it was
    never silent for its allowed silence (nor from its site's first event to its own
    first), and no event of it in the window is stored in another room, stamped beyond
    ``future_skew`` or reports a battery below ``battery_below``. Its plain heartbeats
    (no bed state) then cannot have fired its silence timer nor moved its battery state:
    each only re-armed the timer, so its last sign of life tells the rules all of them
    did. Anything the check is unsure of keeps the device's events in full."""

    devices: Sequence[tuple[str, str, str, timedelta]]
    trusted_from: datetime
    future_skew: timedelta
    battery_below: int


@dataclass(frozen=True)
class Replay:
    events: list[StoredEventRow]  # oldest first
    offline: list[StatusChange]  # devices now offline (``ts``: when they went)
    # site -> device -> its last sign of life: quiet devices, whose plain heartbeats
    # before that one were left out of ``events``
    heard: dict[str, dict[str, datetime]]


_RECENT_EVENTS = """
WITH m AS (
    SELECT s.site, n.newest FROM unnest(%(sites)s::text[]) AS s(site)
    CROSS JOIN LATERAL (SELECT max(ts) AS newest FROM events
                        WHERE site = s.site AND ts <= %(not_after)s) n
), e AS (
    SELECT e.site, e.device, e.event_id, e.ts, e.kind, e.battery, e.occupied, e.room,
           e.received_at, least(e.ts, e.received_at) AS t
    FROM m JOIN events e ON e.site = m.site AND e.ts >= m.newest - %(window)s
                        AND e.ts <= %(not_after)s
), d AS (
    SELECT * FROM unnest(%(q_sites)s::text[], %(q_devices)s::text[], %(q_rooms)s::text[],
                         %(q_silences)s::interval[]) AS d(site, device, room, silence)
), first AS (
    SELECT site, min(t) AS t0 FROM e GROUP BY site
), stored AS (
    SELECT e.site, e.device, min(e.ts) AS first_ts,
           bool_or(e.room IS DISTINCT FROM d.room OR e.ts - e.received_at > %(skew)s
                   OR e.battery < %(battery_below)s) AS doubtful
    FROM e JOIN d USING (site, device) GROUP BY e.site, e.device
), signs AS (
    -- "C": the sort for the window is by device name, which needs no language's order.
    SELECT site, device, t,
           t - lag(t) OVER (PARTITION BY device COLLATE "C", site ORDER BY t) AS gap
    FROM e WHERE t >= %(trusted_from)s
), heard AS (
    SELECT site, device, max(gap) AS longest, min(t) AS since, max(t) AS until
    FROM signs GROUP BY site, device
), quiet AS (
    SELECT d.site, d.device, h.until AS heard_until, x.first_ts
    FROM d JOIN heard h USING (site, device) JOIN first f USING (site)
    JOIN stored x USING (site, device)
    WHERE NOT x.doubtful AND coalesce(h.longest, interval '0') < d.silence
          AND h.since - f.t0 < d.silence
)
SELECT e.site, e.device, e.event_id, e.ts, e.kind, e.battery, e.occupied, e.room,
       e.received_at, q.heard_until
FROM e LEFT JOIN quiet q USING (site, device)
WHERE q.heard_until IS NULL OR e.kind <> 'heartbeat' OR e.occupied IS NOT NULL
      OR e.t = q.heard_until OR e.ts = q.first_ts
ORDER BY e.ts
"""


def _recent_events(conn: psycopg.Connection, sites: Sequence[str], window: timedelta,
                   not_after: datetime, quiet: QuietDevices | None
                   ) -> tuple[list[StoredEventRow], dict[str, dict[str, datetime]]]:
    # Per site, the window before its newest event (live or a replayed night). Events
    # stamped after ``not_after`` (a device clock far ahead, stored before the gateway
    # refused those) are left out: one of them would move the window, and so the clock,
    # to its own time. Each event comes with the room stored on it (where its device sat
    # then), read from the event row itself: no join to ``devices``, which the hypertable's
    # indexes cannot serve (a moved device's older events are left out by the runtime).
    # Quiet devices' plain heartbeats are left out (``QuietDevices``), most of a night's
    # stored events and of a takeover's replay, but for each device's first (the site's
    # clock starts with its first event) and last (its last sign of life).
    devices = list(quiet.devices) if quiet is not None else []
    rows = conn.execute(_RECENT_EVENTS, {
        "sites": list(sites), "not_after": not_after, "window": window,
        "q_sites": [d[0] for d in devices], "q_devices": [d[1] for d in devices],
        "q_rooms": [d[2] for d in devices], "q_silences": [d[3] for d in devices],
        "trusted_from": quiet.trusted_from if quiet is not None else not_after,
        "skew": quiet.future_skew if quiet is not None else timedelta(0),
        "battery_below": quiet.battery_below if quiet is not None else 0,
    }).fetchall()
    heard: dict[str, dict[str, datetime]] = {}
    events: list[StoredEventRow] = []
    for site, device, event_id, ts, kind, battery, occupied, room, received_at, until in rows:
        events.append(StoredEventRow(Event(site, device, event_id, ts, EventKind(kind),
                                           battery, occupied), room, received_at))
        if until is not None:
            heard.setdefault(site, {})[device] = until
    return events, heard


def _offline_devices(conn: psycopg.Connection) -> list[StatusChange]:
    return [StatusChange(site, device, Presence(presence), at)
            for site, device, presence, at in conn.execute(
                "SELECT site, id, presence, presence_at FROM devices "
                "WHERE presence = 'offline' AND revoked_at IS NULL AND presence_at IS NOT NULL")]


class RulesStore:
    """The rules runtime's connection; one thread at a time (the runtime's start-up, then
    its ticker). Every method is one transaction, committed before it returns. A database
    error closes the connection (the next call reconnects) and raises ``StoreUnavailable``."""

    def __init__(self, dsn: str, fence: WriteFence | None = None) -> None:
        self._dsn = dsn
        self._fence = fence
        self._conn: psycopg.Connection | None = None

    def _check_fence(self, conn: psycopg.Connection, sites: Iterable[str]) -> None:
        if self._fence is None:
            return
        try:
            self._fence.check(conn, sites)
        except StoreUnavailable:
            conn.rollback()  # nothing of this transaction may stay open for the next call
            raise

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self._dsn, autocommit=False, connect_timeout=3)
                if self._fence is not None:
                    self._fence.prepare(self._conn)
            except psycopg.Error as exc:
                raise StoreUnavailable(str(exc).strip()) from exc
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def layout_version(self) -> int:
        """The layouts' version (migration 0021): it changes whenever something the rules
        read from ``layouts`` changed."""
        conn = self._connection()
        try:
            version = layout_version(conn)
            conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return version

    def layouts(self, sites: Iterable[str] | None = None) -> StoredLayouts:
        """The stored layouts of ``sites`` (None: every site)."""
        conn = self._connection()
        try:
            layouts = read_layouts(conn, sites)
            conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return layouts

    def replay(self, sites: Sequence[str], window: timedelta, not_after: datetime,
               quiet: QuietDevices | None = None) -> Replay:
        """What to replay on start: each site's events of ``window`` before its newest
        stamped no later than ``not_after`` (oldest first, each with the room stored on it
        and its arrival time), less the plain heartbeats of ``quiet`` devices, and the
        devices now offline (``ts``: when they went)."""
        conn = self._connection()
        try:
            events, heard = _recent_events(conn, sites, window, not_after, quiet)
            offline = _offline_devices(conn)
            conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return Replay(events, offline, heard)

    def routine_history(self, site: str, since: datetime, until: datetime) -> list[Event]:
        """The bed sensors' ``bed.exit``/``bed.enter`` events of ``site`` in [since, until):
        what a flat's routine is learned from (``rules.routines``)."""
        conn = self._connection()
        try:
            rows = conn.execute(
                "SELECT e.site, e.device, e.event_id, e.ts, e.kind, e.battery FROM events e "
                "WHERE e.site = %s AND e.ts >= %s AND e.ts < %s "
                "AND e.kind IN ('bed.exit', 'bed.enter') ORDER BY e.ts",
                (site, since, until)).fetchall()
            conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return [Event(site_, device, event_id, ts, EventKind(kind), battery)
                for site_, device, event_id, ts, kind, battery in rows]

    def staff_rounds(self, since: datetime, sites: Iterable[str] | None = None
                     ) -> dict[str, list[tuple[str | None, datetime, datetime]]]:
        """Per site (of ``sites``, None: every site), the rounds staff announced that end
        after ``since`` (``rules.staff``): (room or None for the common rooms, start, end),
        oldest first."""
        conn = self._connection()
        only = None if sites is None else list(sites)
        try:
            rows = conn.execute(
                "SELECT site, room, starts_at, ends_at FROM staff_presence "
                "WHERE ends_at > %s AND (%s::text[] IS NULL OR site = ANY(%s::text[])) "
                "ORDER BY starts_at, id", (since, only, only)).fetchall()
            conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        rounds: dict[str, list[tuple[str | None, datetime, datetime]]] = {}
        for site, room, start, end in rows:
            rounds.setdefault(site, []).append((room, start, end))
        return rounds

    def apply(self, intents: Sequence[Intent]) -> int:
        """Apply intents, in order, in transactions of at most ``APPLY_CHUNK``; returns the
        number of changes. Each transaction holds the change lock an alerting event's
        transaction waits for: thousands of timers at once (every device of a site silent
        after an outage, a takeover's replay) held back every site's new alerts for
        seconds. On failure the chunks committed stay (applying them again changes
        nothing) and ``StoreUnavailable`` is raised."""
        changes = 0
        conn = self._connection()
        try:
            for at in range(0, len(intents), APPLY_CHUNK):
                chunk = intents[at:at + APPLY_CHUNK]
                changes += apply_intents(conn, chunk)
                self._check_fence(conn, {intent.site for intent in chunk})
                conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return changes

    def reannounce(self, clocks: Iterable[tuple[str, datetime]]) -> int:
        """Re-announce the alerts nobody has taken (see ``reannounce_unacknowledged``), in
        transactions of at most ``REANNOUNCE_CHUNK``: each holds the change lock that an
        alerting event's transaction waits for, so hundreds due at once (after a restart,
        an outage) never hold a new alert back for seconds."""
        clocks = list(clocks)
        conn = self._connection()
        total = 0
        try:
            while True:
                changes = reannounce_unacknowledged(conn, clocks, REANNOUNCE_CHUNK)
                if changes:  # nothing written: nothing to fence
                    self._check_fence(conn, {site for site, _ in clocks})
                conn.commit()
                total += changes
                if changes < REANNOUNCE_CHUNK:
                    return total
        except psycopg.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: psycopg.Error) -> StoreUnavailable:
        self.close()  # rolls back; the next call starts afresh
        return StoreUnavailable(str(exc).strip())
