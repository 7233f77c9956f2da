"""Alerts of the caller's sites: list, acknowledge ("I'm taking it"), resolve with outcome.

Acknowledge and resolve go through ``ingest.alerts`` inside one transaction with the audit
row, so the change, its NOTIFY and the audit entry are committed together or not at all.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field, field_validator

from api.deps import ConnDep, CurrentStaff, NowDep, visible_site
from api.errors import Refusal, responses
from api.models import SITE_PATTERN, TEXT_PATTERN, Alert, AlertId
from api.users import User
from core.alerts import STAFF_OUTCOMES, AlertStatus, Outcome
from core.i18n import mark
from core.metrics import ACK_SECONDS
from ingest import alerts, staff_presence
from ingest.alert_sites import site_of_alert
from ingest.alerts import IllegalTransition
from ingest.audit import audit
from ingest.sites import resolve_notes_allowed

router = APIRouter(prefix="/alerts", tags=["alerts"])

_VERB = {AlertStatus.ACKNOWLEDGED: "acknowledged", AlertStatus.RESOLVED: "resolved"}
# Free text is where a resident's name slips in: outcome codes only unless the site allows it.
_NOTES_OFF = mark("free-text notes are turned off on site {site}: choose an outcome only "
                  "(an administrator can allow notes for the site)")


class Resolution(BaseModel):
    outcome: Outcome = Field(description="what the night staff found: help_given, "
                             "no_action_needed or false_alarm")
    note: str | None = Field(None, max_length=500, pattern=TEXT_PATTERN,
                             description="optional free text, never a name; refused (422) "
                             "unless the site allows notes (SiteOut.resolve_notes)")

    @field_validator("outcome")
    @classmethod
    def chosen_by_staff(cls, outcome: Outcome) -> Outcome:
        if outcome not in STAFF_OUTCOMES:
            raise ValueError(f"{outcome} is recorded by Nattero itself; choose one of "
                             + ", ".join(STAFF_OUTCOMES))
        return outcome


@router.get("", response_model=list[Alert], responses=responses(401, 403, 404, 422, 503))
def list_alerts(
    user: CurrentStaff, conn: ConnDep,
    status_: Annotated[AlertStatus | None, Query(alias="status")] = None,
    site: Annotated[str | None, Query(pattern=SITE_PATTERN, description="only this site")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[Alert]:
    """Alerts of the sites visible to the caller, newest first."""
    sites = [visible_site(user, site)] if site is not None else user.visible_sites
    return [Alert.of(alert) for alert in alerts.list_alerts(conn, sites, status_, limit)]


def _site_of(conn: psycopg.Connection, alert_id: int, user: User) -> str:
    site = site_of_alert(conn, alert_id)
    if site is None or not user.can_see(site):
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      "alert {alert} does not exist or is not on one of your sites",
                      alert=alert_id)
    return site


def _conflict(alert_id: int, exc: IllegalTransition) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT,
                         f"alert {alert_id} is already {exc.current}; it cannot be "
                         f"{_VERB.get(exc.wanted, exc.wanted)} now - reload the board")


@router.get("/{alert_id}", response_model=Alert, responses=responses(401, 403, 404, 422, 503))
def get_alert(alert_id: AlertId, user: CurrentStaff, conn: ConnDep) -> Alert:
    _site_of(conn, alert_id, user)
    return Alert.of(alerts.snapshot(conn, alert_id))


@router.post("/{alert_id}/ack", response_model=Alert,
             responses=responses(401, 403, 404, 409, 422, 503))
def acknowledge(alert_id: AlertId, user: CurrentStaff, conn: ConnDep, now: NowDep) -> Alert:
    """Take the alert: the other boards show who is on it."""
    try:
        with conn.transaction():
            site = _site_of(conn, alert_id, user)
            alert = alerts.acknowledge(conn, alert_id, user.username)
            # Staff on their way are on the floor: their own motion and, for a bed alert,
            # the flat's door are not a new call (issue 13 §3, ``ingest.staff_presence``).
            placed = staff_presence.place_for_alert(
                conn, site, alert.room, alert.rule, now)
            audit(conn, user.username, "alert.ack", site, str(alert_id),
                  {"rule": alert.rule.value, "room": alert.room,
                   "staff_placed": [p.room or "common" for p in placed]})
    except IllegalTransition as exc:
        raise _conflict(alert_id, exc) from None
    if alert.acknowledged_at is not None:
        ACK_SECONDS.observe(max(0.0, (alert.acknowledged_at - alert.raised_at).total_seconds()))
    return Alert.of(alert)


@router.post("/{alert_id}/resolve", response_model=Alert,
             responses=responses(400, 401, 403, 404, 409, 422, 503))
def resolve(alert_id: AlertId, body: Resolution, user: CurrentStaff,
            conn: ConnDep) -> Alert:
    """Done, with what was found. An open alert may be resolved directly."""
    try:
        with conn.transaction():
            site = _site_of(conn, alert_id, user)
            if body.note and not resolve_notes_allowed(conn, site):
                raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, _NOTES_OFF, site=site)
            alert = alerts.resolve(conn, alert_id, user.username, Outcome(body.outcome),
                                   body.note or None)
            audit(conn, user.username, "alert.resolve", site, str(alert_id),
                  {"outcome": body.outcome, "rule": alert.rule.value, "room": alert.room})
    except IllegalTransition as exc:
        raise _conflict(alert_id, exc) from None
    return Alert.of(alert)
