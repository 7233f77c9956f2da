"""The reads a rule back-test needs (``backtest``): a period's stored events, once, in the
order they arrived, and the alerts recorded then, with their outcomes.

Only reads; a back-test never writes an alert, a trigger or a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from core.alerts import Outcome, RuleName
from core.events import Event, EventKind

__all__ = ["HeartbeatRun", "RecordedAlert", "period_events", "period_events_compact",
           "recorded_alerts"]


@dataclass(frozen=True, slots=True)
class HeartbeatRun:
    """The heartbeats that arrived between two other events, as one: ``at`` is the latest
    of their ``min(ts, arrival)``, ``arrived`` the arrival of that one, ``last_arrival``
    the latest arrival of the run."""

    at: datetime
    arrived: datetime
    last_arrival: datetime
    beats: int


@dataclass(frozen=True, slots=True)
class RecordedAlert:
    """An alert as it happened, with what the night staff found (``outcome``)."""

    id: int
    room: str
    device: str | None
    rule: RuleName
    episode_key: str
    first_ts: datetime
    last_ts: datetime
    called_at: datetime | None
    resolved_at: datetime | None
    outcome: Outcome | None


def period_events(conn: psycopg.Connection, site: str, start: datetime, end: datetime
                  ) -> list[tuple[Event, datetime]]:
    """The site's events stamped in [start, end), each with its arrival time, in the order
    they arrived (ties in the engine's own order: ts, device, id, compared as Python
    compares strings, hence ``COLLATE "C"``). One query."""
    rows = conn.execute(
        "SELECT device, event_id, ts, kind, battery, occupied, received_at FROM events "
        "WHERE site = %s AND ts >= %s AND ts < %s "
        'ORDER BY received_at, ts, device COLLATE "C", event_id COLLATE "C"',
        (site, start, end)).fetchall()
    return [(Event(site, device, event_id, ts, EventKind(kind), battery, occupied),
             received_at)
            for device, event_id, ts, kind, battery, occupied, received_at in rows]


_COMPACT = """
WITH e AS (
  SELECT device, event_id, ts, kind, battery, occupied, received_at,
         kind = 'heartbeat' AND occupied IS NULL AS bare,
         count(*) FILTER (WHERE kind <> 'heartbeat' OR occupied IS NOT NULL)
           OVER (ORDER BY received_at, ts, device COLLATE "C", event_id COLLATE "C") AS n
  FROM events
  WHERE site = %(site)s AND ts >= %(start)s AND ts < %(end)s AND device = ANY(%(devices)s)
)
SELECT device, event_id, ts, kind, battery, occupied, received_at, received_at, n, 0 AS run, 0
  FROM e WHERE NOT bare
UNION ALL
SELECT NULL, NULL, max(least(ts, received_at)), 'heartbeat', NULL, NULL,
       (array_agg(received_at ORDER BY least(ts, received_at) DESC))[1], max(received_at),
       n, 1, count(*)
  FROM e WHERE bare AND ts - received_at <= %(skew)s GROUP BY n
ORDER BY n, run
"""


def period_events_compact(conn: psycopg.Connection, site: str, start: datetime,
                          end: datetime, devices: list[str], future_skew: timedelta
                          ) -> list[tuple[Event, datetime] | HeartbeatRun]:
    """As ``period_events`` for ``devices``, with each run of heartbeats between two other
    events (in arrival order) given as one ``HeartbeatRun`` (heartbeats stamped more than
    ``future_skew`` after they arrived left out). A heartbeat with a bed's state
    (``occupied``) is evidence for the resident rules and stays an event of its own. One
    query; a replay of the resident rules needs no more of the other heartbeats than how
    far they moved the clock."""
    rows = conn.execute(_COMPACT, {"site": site, "start": start, "end": end,
                                   "devices": devices, "skew": future_skew}).fetchall()
    return [HeartbeatRun(ts, received_at, last, beats)
            if beats else (Event(site, device, event_id, ts, EventKind(kind), battery,
                                 occupied), received_at)
            for device, event_id, ts, kind, battery, occupied, received_at, last, _, _, beats
            in rows]


def recorded_alerts(conn: psycopg.Connection, site: str, start: datetime, end: datetime
                    ) -> list[RecordedAlert]:
    """The site's alerts that began in [start, end), oldest first."""
    rows = conn.execute(
        "SELECT id, room, device, rule, episode_key, first_ts, last_ts, called_at, "
        "resolved_at, outcome "
        "FROM alerts WHERE site = %s AND first_ts >= %s AND first_ts < %s "
        "ORDER BY first_ts, id", (site, start, end)).fetchall()
    return [RecordedAlert(int(alert_id), room, device, RuleName(rule), episode_key, first_ts,
                          last_ts, called_at, resolved_at, Outcome(outcome) if outcome else None)
            for alert_id, room, device, rule, episode_key, first_ts, last_ts, called_at,
            resolved_at, outcome in rows]
