"""The reads that score a simulation against the store (``nattero.scoring``): which of the
events sent are stored, whether the alerts are still changing, and the alerts raised.

Only reads; never changes an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg

__all__ = ["AlertProgress", "AlertTrigger", "SentKey", "alert_progress", "alerts_triggered",
           "count_stored_events"]


class AlertTrigger(NamedTuple):
    site: str
    room: str
    rule: str
    first_ts: datetime
    called_at: datetime | None  # when it became a call to go; None: stayed quiet
    id: int
    severity: str


class AlertProgress(NamedTuple):
    """Changes whenever an alert is raised, triggered again or changes state."""

    alerts: int
    triggers: int
    last_seq: int


class SentKey(NamedTuple):
    """An event's identity in the store (with its site)."""

    device: str
    event_id: str
    ts: datetime


def alerts_triggered(conn: psycopg.Connection, site: str, start: datetime,
                     end: datetime) -> list[AlertTrigger]:
    """Alerts of ``site`` whose first trigger lies in [start, end), oldest first."""
    rows = conn.execute(
        "SELECT site, room, rule, first_ts, called_at, id, severity FROM alerts WHERE site = %s "
        "AND first_ts >= %s AND first_ts < %s ORDER BY first_ts, id",
        (site, start, end)).fetchall()
    return [AlertTrigger(*row) for row in rows]


def alert_progress(conn: psycopg.Connection, sites: list[str]) -> AlertProgress:
    row = conn.execute(
        "SELECT count(*), coalesce(sum(count), 0), coalesce(max(seq), 0) FROM alerts "
        "WHERE site = ANY(%s)", (sites,)).fetchone()
    assert row is not None  # an aggregate always returns a row
    return AlertProgress(int(row[0]), int(row[1]), int(row[2]))


def count_stored_events(conn: psycopg.Connection, site: str, sent: Sequence[SentKey]) -> int:
    """How many of the events ``sent`` (device, id, ts) the store holds; ``sent`` not empty."""
    stamps = [key.ts for key in sent]
    row = conn.execute(
        "SELECT count(*) FROM events e JOIN unnest(%s::text[], %s::text[], %s::timestamptz[]) "
        "AS s(device, event_id, ts) ON e.device = s.device AND e.event_id = s.event_id "
        "AND e.ts = s.ts WHERE e.site = %s AND e.ts BETWEEN %s AND %s",
        ([key.device for key in sent], [key.event_id for key in sent], stamps, site,
         min(stamps) - timedelta(seconds=1), max(stamps) + timedelta(seconds=1))).fetchone()
    return int(row[0]) if row else 0
