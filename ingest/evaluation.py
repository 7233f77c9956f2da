"""The reads behind the benefit evaluation and the morning handover: a period's alerts,
each flat's nights (reported? disturbed?), night-time activity per hour, silent sensors.

``evaluation`` computes and renders the figures; this module only runs the queries.
Disturbances are the event kinds passed in as ``kinds`` (``ingest.occupancy.DISTURBANCES``).
Night windows are given as the site's zone and local start/end times; a night is named by
the noon-to-noon local day it begins in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import NamedTuple

import psycopg

__all__ = [
    "BoardGap", "ExportAlert", "FlatNight", "HourActivity", "NightAlert", "NightWindowQuery",
    "PeriodAlert", "activity_by_hour", "board_gaps", "export_alerts", "flat_nights",
    "flats_disturbed", "handover_alerts", "latest_event_ts", "period_alerts", "silent_devices",
]


# When staff were asked to go: the call (a situation may be raised quietly and call only
# when its time is up), else the raise. Times to acknowledge and resolve count from it; from
# the raise they would count the quiet minutes of an outing as staff's response time.
_ASKED = "coalesce(called_at, raised_at)"


class PeriodAlert(NamedTuple):
    room: str
    rule: str
    outcome: str | None
    first_ts: datetime
    raised_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    called: bool = True     # False: a quiet situation that never asked staff to go


class ExportAlert(NamedTuple):
    room: str
    room_kind: str
    rule: str
    outcome: str | None
    first_ts: datetime
    raised_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class NightAlert(NamedTuple):
    room: str
    rule: str
    triggers: int
    raised_at: datetime
    acknowledged_at: datetime | None
    outcome: str | None
    status: str
    device: str | None
    first_ts: datetime
    resolved_at: datetime | None


class BoardGap(NamedTuple):
    """A time no board of the site was connected at night (``board_silences``), with how
    the e-mails telling the night's people went (``board.none_connected.*`` audit rows)."""

    since: datetime
    until: datetime | None      # None: still none connected
    mails_sent: int
    mails_failed: int


class FlatNight(NamedTuple):
    night: date
    room: str
    disturbed: bool


class HourActivity(NamedTuple):
    night: date
    hour: int
    events: int


class NightWindowQuery(NamedTuple):
    """Which events count: those of ``site`` in [start, end) inside the nightly window
    ``night_start``..``night_end`` (local clock times in zone ``tz``)."""

    site: str
    tz: str
    start: datetime
    end: datetime
    night_start: time
    night_end: time


def period_alerts(conn: psycopg.Connection, site: str, start: datetime,
                  end: datetime) -> list[PeriodAlert]:
    """Alerts first triggered in [start, end)."""
    rows = conn.execute(
        f"SELECT room, rule, outcome, first_ts, {_ASKED}, acknowledged_at, resolved_at, "
        "called_at IS NOT NULL FROM alerts WHERE site = %s AND first_ts >= %s "
        "AND first_ts < %s",
        (site, start, end)).fetchall()
    return [PeriodAlert(*row) for row in rows]


def export_alerts(conn: psycopg.Connection, site: str, start: datetime,
                  end: datetime) -> list[ExportAlert]:
    """Alerts first triggered in [start, end) with their room's kind (no device, no label)."""
    rows = conn.execute(
        # rooms has no call or raise times: the unqualified _ASKED is the alert's.
        f"SELECT a.room, r.kind, a.rule, a.outcome, a.first_ts, {_ASKED}, "
        "a.acknowledged_at, a.resolved_at FROM alerts a JOIN rooms r "
        "ON r.site = a.site AND r.id = a.room "
        "WHERE a.site = %s AND a.first_ts >= %s AND a.first_ts < %s",
        (site, start, end)).fetchall()
    return [ExportAlert(*row) for row in rows]


def board_gaps(conn: psycopg.Connection, site: str, start: datetime,
               end: datetime) -> list[BoardGap]:
    """The site's times without a connected board that overlap [start, end), oldest first."""
    rows = conn.execute(
        "SELECT g.silent_since, g.ended_at, "
        "count(*) FILTER (WHERE a.action = 'board.none_connected.sent'), "
        "count(*) FILTER (WHERE a.action = 'board.none_connected.failed') "
        "FROM board_silences g LEFT JOIN audit_log a ON a.site = g.site "
        "AND a.action IN ('board.none_connected.sent', 'board.none_connected.failed') "
        "AND a.at >= g.silent_since AND a.at < coalesce(g.ended_at, 'infinity') "
        "WHERE g.site = %s AND g.silent_since < %s AND coalesce(g.ended_at, 'infinity') > %s "
        "GROUP BY g.silent_since, g.ended_at ORDER BY g.silent_since",
        (site, end, start)).fetchall()
    return [BoardGap(*row) for row in rows]


def handover_alerts(conn: psycopg.Connection, site: str, start: datetime,
                    end: datetime) -> list[NightAlert]:
    """Alerts first triggered in [start, end), in that order."""
    rows = conn.execute(
        f"SELECT room, rule, count, {_ASKED}, acknowledged_at, outcome, status, device, "
        "first_ts, resolved_at FROM alerts WHERE site = %s AND first_ts >= %s AND first_ts < %s "
        "ORDER BY first_ts", (site, start, end)).fetchall()
    return [NightAlert(*row) for row in rows]


_IN_WINDOW = ("(CASE WHEN %(ns)s::time < %(ne)s::time "
              "THEN (e.ts AT TIME ZONE %(tz)s)::time >= %(ns)s::time "
              "AND (e.ts AT TIME ZONE %(tz)s)::time < %(ne)s::time "
              "ELSE (e.ts AT TIME ZONE %(tz)s)::time >= %(ns)s::time "
              "OR (e.ts AT TIME ZONE %(tz)s)::time < %(ne)s::time END)")
_NIGHT_OF = "((e.ts AT TIME ZONE %(tz)s) - interval '12 hours')::date"


def _params(window: NightWindowQuery, kinds: Sequence[str]) -> dict[str, object]:
    return {"site": window.site, "tz": window.tz, "start": window.start, "end": window.end,
            "ns": window.night_start, "ne": window.night_end, "kinds": list(kinds)}


def flat_nights(conn: psycopg.Connection, window: NightWindowQuery,
                kinds: Sequence[str]) -> list[FlatNight]:
    """Each flat that reported in a night's window, and whether an event of ``kinds`` was
    among its events."""
    rows = conn.execute(
        f"SELECT {_NIGHT_OF} AS night, e.room, bool_or(e.kind = ANY(%(kinds)s)) "
        "FROM events e JOIN rooms r ON r.site = e.site AND r.id = e.room AND r.kind = 'flat' "
        f"WHERE e.site = %(site)s AND e.ts >= %(start)s AND e.ts < %(end)s AND {_IN_WINDOW} "
        "GROUP BY 1, 2", _params(window, kinds)).fetchall()
    return [FlatNight(*row) for row in rows]


def activity_by_hour(conn: psycopg.Connection, window: NightWindowQuery,
                     kinds: Sequence[str]) -> list[HourActivity]:
    """Events of ``kinds`` in all rooms, per night and local clock hour of the window."""
    rows = conn.execute(
        f"SELECT {_NIGHT_OF}, extract(hour FROM e.ts AT TIME ZONE %(tz)s)::int, count(*) "
        "FROM events e WHERE e.site = %(site)s AND e.ts >= %(start)s AND e.ts < %(end)s "
        f"AND e.kind = ANY(%(kinds)s) AND {_IN_WINDOW} GROUP BY 1, 2",
        _params(window, kinds)).fetchall()
    return [HourActivity(*row) for row in rows]


def latest_event_ts(conn: psycopg.Connection, site: str, until: datetime) -> datetime | None:
    """When the site's latest event at or before ``until`` happened (event time)."""
    row = conn.execute("SELECT max(ts) FROM events WHERE site = %s AND ts <= %s",
                       (site, until)).fetchone()
    latest: datetime | None = row[0] if row else None
    return latest


def flats_disturbed(conn: psycopg.Connection, site: str, start: datetime, end: datetime,
                    kinds: Sequence[str]) -> list[tuple[str, bool]]:
    """Each flat that reported in [start, end), and whether an event of ``kinds`` was
    among its events."""
    rows = conn.execute(
        "SELECT e.room, bool_or(e.kind = ANY(%s)) FROM events e "
        "JOIN rooms r ON r.site = e.site AND r.id = e.room AND r.kind = 'flat' "
        "WHERE e.site = %s AND e.ts >= %s AND e.ts < %s GROUP BY 1",
        (list(kinds), site, start, end)).fetchall()
    return [(row[0], row[1]) for row in rows]


def silent_devices(conn: psycopg.Connection, site: str, start: datetime,
                   end: datetime) -> list[tuple[str, str]]:
    """(room, device kind) of each active device with no event in [start, end)."""
    rows = conn.execute(
        "SELECT d.room, d.kind FROM devices d WHERE d.site = %s AND d.revoked_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.site = d.site AND e.device = d.id "
        "AND e.ts >= %s AND e.ts < %s)", (site, start, end)).fetchall()
    return [(row[0], row[1]) for row in rows]
