"""Alerts in the store: their lifecycle and the change stream the board listens to.

Every change of an alert appends one row to ``alert_changes`` (with a JSON snapshot of the
alert) and sends a ``NOTIFY nattero_alerts`` in the same transaction, so a listener learns of
it only once it is committed and a reconnecting board can replay by ``seq``. The payload is
``<seq>\t<site>\t<alert id>\t<the board's change message>`` (see ``notification``), so the
listener can pass a change on without reading it back; a change too large for a payload
(PostgreSQL allows < 8000 bytes) is announced as ``<seq>`` alone and read from the table.

Lifecycle: ``open`` → ``acknowledged`` → ``resolved`` (also ``open`` → ``resolved``);
anything else is an ``IllegalTransition``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from core.alerts import AlertChange, AlertStatus, Outcome
from core.errors import NatteroError

NOTIFY_CHANNEL = "nattero_alerts"
NOTIFY_MAX_BYTES = 7900  # PostgreSQL refuses payloads of 8000 bytes and more
CHANGE_LOCK = 0x4E41545445524F  # "NATTERO": the advisory lock that orders alert changes


_TRANSITIONS: dict[AlertStatus, set[AlertStatus]] = {
    AlertStatus.OPEN: {AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED},
    AlertStatus.ACKNOWLEDGED: {AlertStatus.RESOLVED},
    AlertStatus.RESOLVED: set(),
}


class AlertError(NatteroError):
    """Base of the alert store's errors."""


class AlertNotFound(AlertError):
    pass


class IllegalTransition(AlertError):
    def __init__(self, current: AlertStatus, wanted: AlertStatus) -> None:
        super().__init__(f"alert is {current}; it cannot become {wanted}")
        self.current = current
        self.wanted = wanted


def check_transition(current: AlertStatus, wanted: AlertStatus) -> None:
    if wanted not in _TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)


_SNAPSHOT = """
SELECT a.id, a.site, a.room, r.label AS room_label, r.kind AS room_kind, a.device, a.rule,
       a.severity, a.status, a.escalated, a.escalated_at, a.reannounced_at, a.late, a.count,
       a.first_ts,
       a.last_ts, a.raised_at, a.detail, a.acknowledged_by, a.acknowledged_at, a.resolved_by,
       a.resolved_at, a.outcome, a.outcome_note, a.seq
FROM alerts a LEFT JOIN rooms r ON r.site = a.site AND r.id = a.room
"""


# The alert takes the next change number and is read back as the board shows it, at once.
_NUMBER_AND_SNAPSHOT = (
    "WITH a AS (UPDATE alerts SET seq = nextval(pg_get_serial_sequence('alert_changes', 'seq')) "
    "WHERE id = %s RETURNING *) " + _SNAPSHOT.replace("FROM alerts a", "FROM a"))


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def snapshot(conn: psycopg.Connection, alert_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SNAPSHOT + " WHERE a.id = %s", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return _jsonable(row)


def record_change(conn: psycopg.Connection, alert_id: int, change: AlertChange) -> int:
    """Append a change (with snapshot) and NOTIFY; returns its seq. Caller commits."""
    # One writer of changes at a time until commit, so seqs become visible in order and a
    # listener never has to wait for a gap left by a slower concurrent transaction.
    # Three round trips, not six: they sit between an alerting event and the board.
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (CHANGE_LOCK,))
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_NUMBER_AND_SNAPSHOT, (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    alert = _jsonable(row)
    seq = int(alert["seq"])
    conn.execute("WITH c AS (INSERT INTO alert_changes (seq, alert_id, site, change, alert) "
                 "VALUES (%s, %s, %s, %s, %s) RETURNING seq) SELECT pg_notify(%s, %s) FROM c",
                 (seq, alert_id, alert["site"], change.value, Jsonb(alert), NOTIFY_CHANNEL,
                  notification(seq, change.value, alert)))
    return seq


def change_message(seq: int, change: str, alert: dict[str, Any]) -> str:
    """The board's ``change`` message (the WebSocket frame's text), compact JSON."""
    return json.dumps({"type": "change", "seq": seq, "change": change, "alert": alert},
                      separators=(",", ":"))


def notification(seq: int, change: str, alert: dict[str, Any]) -> str:
    """The NOTIFY payload of a change: everything a listener needs to publish it."""
    payload = f"{seq}\t{alert['site']}\t{alert['id']}\t{change_message(seq, change, alert)}"
    return payload if len(payload.encode()) <= NOTIFY_MAX_BYTES else str(seq)


def _current(conn: psycopg.Connection, alert_id: int) -> tuple[AlertStatus, str]:
    row = conn.execute("SELECT status, site FROM alerts WHERE id = %s FOR UPDATE",
                       (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return AlertStatus(row[0]), row[1]


def acknowledge(conn: psycopg.Connection, alert_id: int, user: str,
                now: datetime | None = None) -> dict[str, Any]:
    """Staff takes the alert ("Jeg tager den"). Caller commits."""
    current, _ = _current(conn, alert_id)
    check_transition(current, AlertStatus.ACKNOWLEDGED)
    conn.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, "
                 "acknowledged_at = %s WHERE id = %s", (user, now or datetime.now(UTC), alert_id))
    record_change(conn, alert_id, AlertChange.ACKNOWLEDGED)
    return snapshot(conn, alert_id)


def resolve(conn: psycopg.Connection, alert_id: int, user: str, outcome: Outcome,
            note: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Done, with an outcome. Resolving an open alert also records who took it. Caller commits."""
    current, _ = _current(conn, alert_id)
    check_transition(current, AlertStatus.RESOLVED)
    at = now or datetime.now(UTC)
    conn.execute("UPDATE alerts SET status = 'resolved', resolved_by = %s, resolved_at = %s, "
                 "outcome = %s, outcome_note = %s, "
                 "acknowledged_by = coalesce(acknowledged_by, %s), "
                 "acknowledged_at = coalesce(acknowledged_at, %s) WHERE id = %s",
                 (user, at, outcome.value, note, user, at, alert_id))
    record_change(conn, alert_id, AlertChange.RESOLVED)
    return snapshot(conn, alert_id)


def changes_since(conn: psycopg.Connection, since: int, sites: list[str] | None,
                  limit: int = 10_000) -> list[dict[str, Any]]:
    """Changes with seq > since, oldest first; ``sites=None`` means all sites."""
    query = "SELECT seq, change, alert FROM alert_changes WHERE seq > %s"
    params: list[Any] = [since]
    if sites is not None:
        query += " AND site = ANY(%s)"
        params.append(sites)
    query += " ORDER BY seq LIMIT %s"
    params.append(limit)
    with conn.cursor(row_factory=dict_row) as cur:
        return [dict(row) for row in cur.execute(query, params).fetchall()]


def list_alerts(conn: psycopg.Connection, sites: list[str] | None,
                status: AlertStatus | None = None, limit: int = 500) -> list[dict[str, Any]]:
    query = _SNAPSHOT + " WHERE true"
    params: list[Any] = []
    if sites is not None:
        query += " AND a.site = ANY(%s)"
        params.append(sites)
    if status is not None:
        query += " AND a.status = %s"
        params.append(status.value)
    query += " ORDER BY a.first_ts DESC LIMIT %s"
    params.append(limit)
    with conn.cursor(row_factory=dict_row) as cur:
        return [_jsonable(row) for row in cur.execute(query, params).fetchall()]
