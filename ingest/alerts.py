"""Alerts in the store: their lifecycle and the change stream the board listens to.

Every change of an alert appends one row to ``alert_changes`` (with a JSON snapshot of the
alert) and sends a ``NOTIFY nattero_alerts`` in the same transaction, so a listener learns of
it only once it is committed and a reconnecting board can replay by ``seq``. The payload is
``<seq>\\t<site>\\t<alert id>\\t<change>\\t<alert as JSON>`` (see ``notification``), so the
listener can pass a change on without reading it back; a change too large for a payload
(PostgreSQL allows < 8000 bytes) is announced as ``<seq>`` alone and read from the table.
What a board receives (its frames) is the API's business, not the store's.

Lock order, on every path that changes alerts (the writer, the rules ticker, the API):
first the advisory lock ``CHANGE_LOCK`` (``lock_changes``), then alert rows. Taking them
in the other order somewhere lets two transactions wait for each other ("deadlock
detected"). Changes are numbered under that lock, so ``seq`` commits gap-free and in order.

Lifecycle: ``open`` → ``acknowledged`` → ``resolved`` (also ``open`` → ``resolved``);
anything else is an ``IllegalTransition``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.alerts import AlertChange, AlertStatus, Outcome, RuleName, Severity
from core.errors import NatteroError
from core.events import RoomKind

__all__ = [
    "CHANGE_LOCK",
    "NOTIFY_CHANNEL",
    "NOTIFY_MAX_BYTES",
    "AlertError",
    "AlertNotFound",
    "AlertSnapshot",
    "IllegalTransition",
    "StoredAlertChange",
    "acknowledge",
    "announce",
    "changes_since",
    "check_transition",
    "list_alerts",
    "listen_for_changes",
    "lock_changes",
    "newest_change",
    "notification",
    "record_change",
    "resolve",
    "snapshot",
]

NOTIFY_CHANNEL = "nattero_alerts"
NOTIFY_MAX_BYTES = 7900  # PostgreSQL refuses payloads of 8000 bytes and more
CHANGE_LOCK = 0x4E41545445524F  # "NATTERO": the advisory lock that orders alert changes

log = logging.getLogger(__name__)


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


_TIMES = frozenset({"escalated_at", "reannounced_at", "called_at", "first_ts", "last_ts",
                    "raised_at", "acknowledged_at", "resolved_at"})


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """An alert as the board shows it; ``seq`` is the stream position of its last change."""

    id: int
    site: str
    room: str
    room_label: str | None
    room_kind: RoomKind | None
    device: str | None
    rule: RuleName
    severity: Severity
    status: AlertStatus
    escalated: bool
    escalated_at: datetime | None
    reannounced_at: datetime | None
    # When it became a call to go (event time); None while it is a quiet situation.
    called_at: datetime | None
    late: bool
    count: int
    first_ts: datetime
    last_ts: datetime
    raised_at: datetime
    detail: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    outcome: Outcome | None
    outcome_note: str | None
    seq: int
    # Each step of the escalation to people (``api.escalation``): step, channel, status,
    # at and error, in the order they happened; the board lists them on the card.
    passed_on: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AlertSnapshot:
        """From a row of the snapshot query (``_SNAPSHOT``), times already datetimes."""
        kind, outcome = row["room_kind"], row["outcome"]
        return cls(
            id=int(row["id"]), site=row["site"], room=row["room"],
            room_label=row["room_label"], room_kind=None if kind is None else RoomKind(kind),
            device=row["device"], rule=RuleName(row["rule"]),
            severity=Severity(row["severity"]), status=AlertStatus(row["status"]),
            escalated=row["escalated"], escalated_at=row["escalated_at"],
            reannounced_at=row["reannounced_at"], called_at=row["called_at"],
            late=row["late"], count=int(row["count"]),
            first_ts=row["first_ts"], last_ts=row["last_ts"], raised_at=row["raised_at"],
            detail=row["detail"], acknowledged_by=row["acknowledged_by"],
            acknowledged_at=row["acknowledged_at"], resolved_by=row["resolved_by"],
            resolved_at=row["resolved_at"],
            outcome=None if outcome is None else Outcome(outcome),
            outcome_note=row["outcome_note"], seq=int(row["seq"]),
            # Changes stored before the escalation to people have no steps.
            passed_on=list(row.get("passed_on") or []))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertSnapshot:
        """From the JSON form (``alert_changes.alert``, a NOTIFY payload)."""
        return cls.from_row({k: (None if v is None else datetime.fromisoformat(v))
                             if k in _TIMES else v for k, v in data.items()})

    def to_json(self) -> dict[str, Any]:
        """The JSON form: times as ISO 8601 strings, closed sets as their values."""
        return {name: _json_value(getattr(self, name)) for name in self.__slots__}

    def json_text(self) -> str:
        """``to_json`` encoded compactly: the form stored, notified and sent to boards."""
        return json.dumps(self.to_json(), separators=(",", ":"))


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class StoredAlertChange:
    """One row of ``alert_changes``: what happened (``change``) and the alert after it."""

    seq: int
    change: AlertChange
    alert: AlertSnapshot


_SNAPSHOT = """
SELECT a.id, a.site, a.room, r.label AS room_label, r.kind AS room_kind, a.device, a.rule,
       a.severity, a.status, a.escalated, a.escalated_at, a.reannounced_at, a.called_at,
       a.late, a.count, a.first_ts,
       a.last_ts, a.raised_at, a.detail, a.acknowledged_by, a.acknowledged_at, a.resolved_by,
       a.resolved_at, a.outcome, a.outcome_note, a.seq, a.passed_on
FROM alerts a LEFT JOIN rooms r ON r.site = a.site AND r.id = a.room
"""


# The alert takes the next change number and is read back as the board shows it, at once.
_NUMBER_AND_SNAPSHOT = (
    "WITH a AS (UPDATE alerts SET seq = nextval(pg_get_serial_sequence('alert_changes', 'seq')) "
    "WHERE id = %s RETURNING *) " + _SNAPSHOT.replace("FROM alerts a", "FROM a"))

_APPEND_AND_NOTIFY = (
    "WITH c AS (INSERT INTO alert_changes (seq, alert_id, site, change, alert) "
    "VALUES (%s, %s, %s, %s, %s::jsonb) RETURNING seq) SELECT pg_notify(%s, %s) FROM c")


def snapshot(conn: psycopg.Connection, alert_id: int) -> AlertSnapshot:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SNAPSHOT + " WHERE a.id = %s", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return AlertSnapshot.from_row(row)


def lock_changes(conn: psycopg.Connection) -> None:
    """Take the change lock for the rest of the caller's transaction (first, before any
    alert row: see the module docstring). Taking it again in the same transaction is free
    of effect, but costs a round trip."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (CHANGE_LOCK,))


def record_change(conn: psycopg.Connection, alert_id: int,
                  change: AlertChange) -> AlertSnapshot:
    """Take the change lock, append a change (with snapshot) and NOTIFY; returns the alert
    as changed (its ``seq`` is the change's). Caller commits.

    Only for an alert no other transaction can have locked (one this transaction has just
    inserted): otherwise call ``lock_changes`` before touching the alert, then
    ``announce``."""
    lock_changes(conn)
    return announce(conn, alert_id, change)


def announce(conn: psycopg.Connection, alert_id: int, change: AlertChange) -> AlertSnapshot:
    """Append a change and NOTIFY, the caller already holding the change lock; two round
    trips (they sit between an alerting event and the board). Caller commits."""
    # The lock makes seqs commit in order, so a listener never waits for a gap left by a
    # slower concurrent transaction.
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_NUMBER_AND_SNAPSHOT, (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    alert = AlertSnapshot.from_row(row)
    text = alert.json_text()
    conn.execute(_APPEND_AND_NOTIFY, (alert.seq, alert_id, alert.site, change.value, text,
                                      NOTIFY_CHANNEL, notification(alert, change, text)))
    return alert


def notification(alert: AlertSnapshot, change: AlertChange, text: str | None = None) -> str:
    """The NOTIFY payload of a change: everything a listener needs to publish it.
    ``text`` is ``alert.json_text()`` when the caller has it already."""
    if text is None:
        text = alert.json_text()
    payload = f"{alert.seq}\t{alert.site}\t{alert.id}\t{change.value}\t{text}"
    return payload if len(payload.encode()) <= NOTIFY_MAX_BYTES else str(alert.seq)


def _current(conn: psycopg.Connection, alert_id: int) -> AlertStatus:
    row = conn.execute("SELECT status FROM alerts WHERE id = %s FOR UPDATE",
                       (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return AlertStatus(row[0])


def acknowledge(conn: psycopg.Connection, alert_id: int, user: str,
                now: datetime | None = None) -> AlertSnapshot:
    """Staff takes the alert ("Jeg tager den"). Caller commits."""
    lock_changes(conn)  # before the row lock: the one lock order
    check_transition(_current(conn, alert_id), AlertStatus.ACKNOWLEDGED)
    conn.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, "
                 "acknowledged_at = %s WHERE id = %s", (user, now or datetime.now(UTC), alert_id))
    return announce(conn, alert_id, AlertChange.ACKNOWLEDGED)


def resolve(conn: psycopg.Connection, alert_id: int, user: str, outcome: Outcome,
            note: str | None = None, now: datetime | None = None) -> AlertSnapshot:
    """Done, with an outcome. Resolving an open alert also records who took it. Caller commits."""
    lock_changes(conn)  # before the row lock: the one lock order
    check_transition(_current(conn, alert_id), AlertStatus.RESOLVED)
    at = now or datetime.now(UTC)
    conn.execute("UPDATE alerts SET status = 'resolved', resolved_by = %s, resolved_at = %s, "
                 "outcome = %s, outcome_note = %s, "
                 "acknowledged_by = coalesce(acknowledged_by, %s), "
                 "acknowledged_at = coalesce(acknowledged_at, %s) WHERE id = %s",
                 (user, at, outcome.value, note, user, at, alert_id))
    return announce(conn, alert_id, AlertChange.RESOLVED)


async def newest_change(conn: psycopg.AsyncConnection) -> int:
    """The ``seq`` of the newest change, 0 when there is none (a listener's start)."""
    row = await (await conn.execute("SELECT coalesce(max(seq), 0) FROM alert_changes")
                 ).fetchone()
    return int(row[0]) if row else 0


async def listen_for_changes(conn: psycopg.AsyncConnection) -> None:
    """Subscribe ``conn`` (autocommit) to the change notifications (``notification``)."""
    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")


def changes_since(conn: psycopg.Connection, since: int, sites: list[str] | None,
                  limit: int = 10_000) -> list[StoredAlertChange]:
    """Changes with seq > since, oldest first; ``sites=None`` means all sites."""
    query = "SELECT seq, change, alert FROM alert_changes WHERE seq > %s"
    params: list[Any] = [since]
    if sites is not None:
        query += " AND site = ANY(%s)"
        params.append(sites)
    query += " ORDER BY seq LIMIT %s"
    params.append(limit)
    changes: list[StoredAlertChange] = []
    for seq, change, alert in conn.execute(query, params).fetchall():
        try:
            changes.append(StoredAlertChange(int(seq), AlertChange(change),
                                             AlertSnapshot.from_json(alert)))
        except (KeyError, TypeError, ValueError) as exc:
            # A row this version cannot read (written by hand or by another version) is
            # skipped, never raised: it would otherwise stop every board's live stream.
            log.error("alert change %s cannot be read (%r); boards skip it", seq, exc)
    return changes


def list_alerts(conn: psycopg.Connection, sites: list[str] | None,
                status: AlertStatus | None = None, limit: int = 500) -> list[AlertSnapshot]:
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
        return [AlertSnapshot.from_row(row) for row in cur.execute(query, params).fetchall()]
