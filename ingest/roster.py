"""The store of escalation to people: contacts, rosters, policies and the steps taken.

Accounts only (``users.username``), never residents. Never sends anything itself
(``api.escalation`` does); never stores a message's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from core.alerts import AlertChange
from core.errors import NatteroError
from ingest.alerts import announce, lock_changes

__all__ = [
    "CannotTakeCalls",
    "DueStep",
    "Policy",
    "Roster",
    "RosterError",
    "UnknownAccount",
    "call_still_open",
    "claim_step",
    "contact_email",
    "due_steps",
    "finish_step",
    "night_roster",
    "policies",
    "record_passed_on",
    "roster_of",
    "set_contact",
    "set_policy",
    "set_roster",
]

Step = Literal["second", "coordinator"]

# A step still ``sending`` this long after its claim was left by a process that died
# mid-send (every try with its pauses takes far less): another process sends it, so a
# crash never drops a call silently.
STALE_CLAIM_S = 600
# A step row that holds its step: finished, or claimed recently (``%s``: STALE_CLAIM_S).
_HELD = "NOT (s.status = 'sending' AND s.claimed_at < now() - make_interval(secs => %s))"


class RosterError(NatteroError):
    """A roster or contact that cannot be stored as asked."""


class UnknownAccount(RosterError):
    def __init__(self, who: str) -> None:
        super().__init__(f"there is no account {who!r}; add it with: nattero user add {who} "
                         f"--role staff --site SITE")
        self.who = who


class CannotTakeCalls(RosterError):
    def __init__(self, who: str, site: str) -> None:
        super().__init__(f"account {who!r} cannot take calls on site {site!r} (disabled, an "
                         f"evaluator, or not assigned to the site); give it the site or pick "
                         f"another account")
        self.who = who
        self.site = site


@dataclass(frozen=True, slots=True)
class Roster:
    site: str
    night: date
    duty: str | None
    second: str | None
    coordinator: str | None

    def person(self, step: str) -> str | None:
        return {"duty": self.duty, "second": self.second,
                "coordinator": self.coordinator}.get(step)


@dataclass(frozen=True, slots=True)
class Policy:
    """Minutes an open call waits unacknowledged before it goes to each person."""

    second_after_minutes: float
    coordinator_after_minutes: float


def set_contact(conn: psycopg.Connection, username: str, email: str | None) -> None:
    if conn.execute("SELECT 1 FROM users WHERE username = %s", (username,)).fetchone() is None:
        raise UnknownAccount(username)
    conn.execute("INSERT INTO user_contacts (username, email) VALUES (%s, %s) "
                 "ON CONFLICT (username) DO UPDATE SET email = excluded.email",
                 (username, email))


def contact_email(conn: psycopg.Connection, username: str) -> str | None:
    row = conn.execute("SELECT c.email FROM user_contacts c JOIN users u USING (username) "
                       "WHERE c.username = %s AND NOT u.disabled", (username,)).fetchone()
    return None if row is None else row[0]


def set_roster(conn: psycopg.Connection, site: str, night: date, *, duty: str | None,
               second: str | None, coordinator: str | None, set_by: str) -> Roster:
    """Set (replace) the roster of ``site`` for the night starting on ``night``. Every
    person must be an enabled account that may see the site (or an admin)."""
    for who in filter(None, (duty, second, coordinator)):
        row = conn.execute("SELECT role, sites, disabled FROM users WHERE username = %s",
                           (who,)).fetchone()
        if row is None:
            raise UnknownAccount(who)
        role, sites, disabled = row
        if disabled or role == "evaluator" or (role == "staff" and site not in sites):
            raise CannotTakeCalls(who, site)
    conn.execute(
        "INSERT INTO rosters (site, night, duty, second, coordinator, set_by) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site, night) DO UPDATE SET "
        "duty = excluded.duty, second = excluded.second, coordinator = excluded.coordinator, "
        "set_by = excluded.set_by, set_at = now()",
        (site, night, duty, second, coordinator, set_by))
    return Roster(site, night, duty, second, coordinator)


def roster_of(conn: psycopg.Connection, site: str, night: date) -> Roster | None:
    row = conn.execute("SELECT site, night, duty, second, coordinator FROM rosters "
                       "WHERE site = %s AND night = %s", (site, night)).fetchone()
    return None if row is None else Roster(*row)


def night_roster(conn: psycopg.Connection, site: str, nights: tuple[date, ...]) -> Roster | None:
    """The first of ``nights`` that has a roster (the caller lists the likely nights)."""
    for night in nights:
        found = roster_of(conn, site, night)
        if found is not None:
            return found
    return None


def set_policy(conn: psycopg.Connection, site: str, severity: str, policy: Policy) -> None:
    conn.execute(
        "INSERT INTO escalation_policies (site, severity, second_after_minutes, "
        "coordinator_after_minutes) VALUES (%s, %s, %s, %s) ON CONFLICT (site, severity) "
        "DO UPDATE SET second_after_minutes = excluded.second_after_minutes, "
        "coordinator_after_minutes = excluded.coordinator_after_minutes",
        (site, severity, policy.second_after_minutes, policy.coordinator_after_minutes))


def policies(conn: psycopg.Connection) -> dict[tuple[str, str], Policy]:
    """Every site's own policy, by (site, severity)."""
    rows = conn.execute("SELECT site, severity, second_after_minutes, "
                        "coordinator_after_minutes FROM escalation_policies").fetchall()
    return {(r[0], r[1]): Policy(float(r[2]), float(r[3])) for r in rows}


@dataclass(frozen=True, slots=True)
class DueStep:
    """An open, unacknowledged call whose wait for ``step`` ended at ``due_at``."""

    alert_id: int
    site: str
    room: str
    room_label: str | None
    rule: str
    severity: str
    called_at: datetime
    step: Step
    due_at: datetime


def due_steps(conn: psycopg.Connection, now: datetime, defaults: dict[str, Policy],
              sites: list[str] | None = None) -> list[DueStep]:
    """The steps due at ``now`` and not yet taken (any channel), oldest first.

    Only open calls: an acknowledged one has its person, a resolved one needs none."""
    rows = conn.execute(
        "SELECT a.id, a.site, a.room, r.label, a.rule, a.severity, a.called_at, "
        "p.second_after_minutes, p.coordinator_after_minutes FROM alerts a "
        "LEFT JOIN rooms r ON r.site = a.site AND r.id = a.room "
        "LEFT JOIN escalation_policies p ON p.site = a.site AND p.severity = a.severity "
        "WHERE a.status = 'open' AND a.called_at IS NOT NULL AND a.severity <> 'notice' "
        "AND (%s::text[] IS NULL OR a.site = ANY(%s)) "
        "AND NOT EXISTS (SELECT 1 FROM escalation_steps s WHERE s.alert_id = a.id "
        "AND s.step = 'coordinator' AND " + _HELD + ") ORDER BY a.called_at",
        (sites, sites, STALE_CLAIM_S)).fetchall()
    taken = {(r[0], r[1]) for r in conn.execute(
        "SELECT DISTINCT alert_id, step FROM escalation_steps s WHERE alert_id = ANY(%s) "
        "AND " + _HELD, ([row[0] for row in rows], STALE_CLAIM_S)).fetchall()}
    found: list[DueStep] = []
    for aid, site, room, label, rule, severity, called_at, second, coordinator in rows:
        default = defaults.get(severity)
        if default is None:
            continue
        policy = Policy(second, coordinator) if second is not None else default
        steps: tuple[tuple[Step, float], ...] = (
            ("second", policy.second_after_minutes),
            ("coordinator", policy.coordinator_after_minutes))
        for step, minutes in steps:
            due = called_at + timedelta(minutes=minutes)
            if due <= now and (aid, step) not in taken:
                found.append(DueStep(aid, site, room, label, rule, severity, called_at,
                                     step, due))
    return found


def claim_step(conn: psycopg.Connection, alert_id: int, step: str, channel: str,
               recipient: str | None, due_at: datetime) -> bool:
    """Whether this process is the one to send ``step`` over ``channel``: the first claim,
    or one taking over a claim left ``sending`` by a process that died mid-send."""
    return conn.execute(
        "INSERT INTO escalation_steps (alert_id, step, channel, recipient, due_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (alert_id, step, channel) DO UPDATE SET "
        "claimed_at = now(), recipient = excluded.recipient WHERE "
        "escalation_steps.status = 'sending' AND escalation_steps.claimed_at < "
        "now() - make_interval(secs => %s)",
        (alert_id, step, channel, recipient, due_at, STALE_CLAIM_S)).rowcount == 1


def call_still_open(conn: psycopg.Connection, alert_id: int) -> bool:
    """True while nobody has acknowledged or resolved the call."""
    row = conn.execute("SELECT status = 'open' FROM alerts WHERE id = %s",
                       (alert_id,)).fetchone()
    return bool(row and row[0])


def finish_step(conn: psycopg.Connection, alert_id: int, step: str, channel: str, *,
                status: str, attempts: int, error: str | None) -> None:
    conn.execute(
        "UPDATE escalation_steps SET status = %s, attempts = %s, last_error = %s, "
        "finished_at = now() WHERE alert_id = %s AND step = %s AND channel = %s",
        (status, attempts, error, alert_id, step, channel))


def record_passed_on(conn: psycopg.Connection, alert_id: int, entry: dict[str, Any],
                     at: datetime, escalate: bool) -> None:
    """Add a step to the alert's card and its timeline (change ``passed_on``) in one
    transaction; ``escalate``: the call went on to a person, so the alert is escalated
    (``escalated_at`` set the first time). Caller commits."""
    lock_changes(conn)  # before the row: the one lock order (ingest.alerts)
    conn.execute(
        "UPDATE alerts SET passed_on = passed_on || %s::jsonb, "
        "escalated = escalated OR %s, "
        "escalated_at = CASE WHEN %s THEN coalesce(escalated_at, %s) ELSE escalated_at END "
        "WHERE id = %s", (Jsonb([entry]), escalate, escalate, at, alert_id))
    announce(conn, alert_id, AlertChange.PASSED_ON)
