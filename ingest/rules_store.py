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
from datetime import datetime, timedelta

import psycopg

from core.events import Event, EventKind, Presence, StatusChange
from core.intents import Intent
from ingest.alert_intents import apply_intents, reannounce_unacknowledged
from ingest.rule_layouts import StoredLayouts, layout_version, read_layouts
from ingest.writer import StoredEventRow, StoreUnavailable, WriteFence

__all__ = ["APPLY_CHUNK", "REANNOUNCE_CHUNK", "RulesStore"]

# Re-announcements per transaction: two round trips each under the change lock.
REANNOUNCE_CHUNK = 10
# The rules' own intents per transaction (timers, catching up, the replay on start): a
# few round trips each under the change lock, some tens of milliseconds a chunk.
APPLY_CHUNK = 50


def _recent_events(conn: psycopg.Connection, sites: Sequence[str], window: timedelta,
                   not_after: datetime) -> list[StoredEventRow]:
    # Per site, the window before its newest event (live or a replayed night). Events
    # stamped after ``not_after`` (a device clock far ahead, stored before the gateway
    # refused those) are left out: one of them would move the window, and so the clock,
    # to its own time. Each event comes with the room stored on it (where its device sat
    # then), read from the event row itself: no join to ``devices``, which the hypertable's
    # indexes cannot serve (a moved device's older events are left out by the runtime).
    rows = conn.execute(
        "SELECT e.site, e.device, e.event_id, e.ts, e.kind, e.battery, e.occupied, "
        "e.room, e.received_at "
        "FROM unnest(%s::text[]) AS s(site) "
        "CROSS JOIN LATERAL (SELECT max(ts) AS newest FROM events "
        "                    WHERE site = s.site AND ts <= %s) m "
        "JOIN events e ON e.site = s.site AND e.ts >= m.newest - %s AND e.ts <= %s "
        "ORDER BY e.ts", (list(sites), not_after, window, not_after)).fetchall()
    return [StoredEventRow(Event(site, device, event_id, ts, EventKind(kind), battery,
                                 occupied), room, received_at)
            for site, device, event_id, ts, kind, battery, occupied, room, received_at
            in rows]


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

    def replay(self, sites: Sequence[str], window: timedelta, not_after: datetime
               ) -> tuple[list[StoredEventRow], list[StatusChange]]:
        """What to replay on start: each site's events of ``window`` before its newest
        stamped no later than ``not_after`` (oldest first, each with the room stored on it
        and its arrival time), and
        the devices now offline (``ts``: when they went)."""
        conn = self._connection()
        try:
            events = _recent_events(conn, sites, window, not_after)
            offline = _offline_devices(conn)
            conn.commit()
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return events, offline

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
