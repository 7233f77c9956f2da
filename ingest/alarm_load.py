"""The reads behind the alarm-load page and the handover's weekly summary: a period's
alerts (with their call and outcome) and the bed events a flat's routine is learned from.

``evaluation.alarm_load`` counts and draws; this module only runs the queries. Rule
changes come from the audit log (``ingest.audit.read_audit``, action ``rules.set``).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import psycopg

from core.events import Event, EventKind

__all__ = ["LoadAlert", "bed_events", "load_alerts"]


class LoadAlert(NamedTuple):
    room: str
    rule: str
    first_ts: datetime
    called_at: datetime | None
    status: str
    outcome: str | None


def load_alerts(conn: psycopg.Connection, site: str, start: datetime,
                end: datetime) -> list[LoadAlert]:
    """Alerts of ``site`` first triggered in [start, end), in that order."""
    rows = conn.execute(
        "SELECT room, rule, first_ts, called_at, status, outcome FROM alerts "
        "WHERE site = %s AND first_ts >= %s AND first_ts < %s ORDER BY first_ts, id",
        (site, start, end)).fetchall()
    return [LoadAlert(*row) for row in rows]


def bed_events(conn: psycopg.Connection, site: str, since: datetime,
               until: datetime) -> list[Event]:
    """The ``bed.exit``/``bed.enter`` events of ``site`` in [since, until): what a flat's
    routine is learned from (``rules.routines``), the same read the rules runtime makes."""
    rows = conn.execute(
        "SELECT device, event_id, ts, kind, battery FROM events WHERE site = %s "
        "AND ts >= %s AND ts < %s AND kind IN ('bed.exit', 'bed.enter') ORDER BY ts",
        (site, since, until)).fetchall()
    return [Event(site, device, event_id, ts, EventKind(kind), battery)
            for device, event_id, ts, kind, battery in rows]
