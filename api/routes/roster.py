"""The escalation's people: a site's roster per night (on duty, second person, on-call
coordinator; accounts, never residents), an account's e-mail address, and a site's own
minutes before a call goes on to them. Set by an admin; a site's staff may read its roster.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field, model_validator

from api.deps import ConnDep, CurrentAdmin, CurrentStaff, existing_site, visible_site
from api.errors import Invalid, Refusal, responses
from api.models import SiteId
from core.i18n import mark
from ingest import roster as stored
from ingest.audit import audit

router = APIRouter(tags=["escalation"])

Night = Annotated[date, Path(description="the local date the night starts on")]
Username = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f/]+$",
                               description="the account's login name")]
Account = Annotated[str | None, Field(None, min_length=1, max_length=100,
                                      pattern=r"^[^\x00-\x1f\x7f]+$")]

_NO_ACCOUNT = mark("there is no account '{who}'; add it on the admin page or with: nattero "
                   "user add {who} --role staff --site SITE")
_NOT_ON_SITE = mark("account '{who}' cannot take calls on site '{site}' (disabled, an "
                    "evaluator, or not assigned to the site); give it the site or pick another "
                    "account")
_NO_ROSTER = mark("site '{site}' has no roster for the night of {night}; an admin sets it "
                  "on the admin page or with: nattero roster set")


class RosterIn(BaseModel):
    duty: Account
    second: Account
    coordinator: Account


class RosterOut(BaseModel):
    site: str
    night: date
    duty: str | None
    second: str | None
    coordinator: str | None


class ContactIn(BaseModel):
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
                              description="where the escalation's e-mails go (or an SMS "
                              "gateway's address); null removes it")


class PolicyIn(BaseModel):
    second_after_minutes: float = Field(gt=0, le=720)
    coordinator_after_minutes: float = Field(gt=0, le=720)

    @model_validator(mode="after")
    def in_order(self) -> PolicyIn:
        if self.coordinator_after_minutes <= self.second_after_minutes:
            raise Invalid(mark("the coordinator comes after the second person: give more "
                               "minutes for the coordinator"))
        return self


def _refusal(exc: stored.RosterError) -> Refusal:
    if isinstance(exc, stored.CannotTakeCalls):
        return Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, _NOT_ON_SITE, who=exc.who,
                       site=exc.site)
    if isinstance(exc, stored.UnknownAccount):
        return Refusal(status.HTTP_404_NOT_FOUND, _NO_ACCOUNT, who=exc.who)
    raise exc


@router.put("/sites/{site}/roster/{night}", response_model=RosterOut,
            responses=responses(400, 401, 403, 404, 422, 503))
def set_roster(site: SiteId, night: Night, body: RosterIn, user: CurrentAdmin,
               conn: ConnDep) -> RosterOut:
    """Who takes the calls of a night: on duty, the second person, the coordinator."""
    existing_site(conn, site)
    try:
        with conn.transaction():
            roster = stored.set_roster(conn, site, night, duty=body.duty, second=body.second,
                                       coordinator=body.coordinator, set_by=user.username)
            audit(conn, user.username, "roster.set", site, night.isoformat(),
                  {"duty": body.duty, "second": body.second, "coordinator": body.coordinator})
    except stored.RosterError as exc:
        raise _refusal(exc) from None
    return RosterOut(site=site, night=night, duty=roster.duty, second=roster.second,
                     coordinator=roster.coordinator)


@router.get("/sites/{site}/roster/{night}", response_model=RosterOut,
            responses=responses(401, 403, 404, 422, 503))
def get_roster(site: SiteId, night: Night, user: CurrentStaff, conn: ConnDep) -> RosterOut:
    visible_site(user, site)
    roster = stored.roster_of(conn, site, night)
    if roster is None:
        raise Refusal(status.HTTP_404_NOT_FOUND, _NO_ROSTER, site=site,
                      night=night.isoformat())
    return RosterOut(site=site, night=night, duty=roster.duty, second=roster.second,
                     coordinator=roster.coordinator)


@router.put("/users/{username}/contact", status_code=status.HTTP_204_NO_CONTENT,
            responses=responses(400, 401, 403, 404, 422, 503))
def set_contact(username: Username, body: ContactIn, user: CurrentAdmin,
                conn: ConnDep) -> None:
    """An account's e-mail address for the escalation's e-mails."""
    try:
        with conn.transaction():
            stored.set_contact(conn, username, body.email)
            audit(conn, user.username, "user.contact", None, username)
    except stored.RosterError as exc:
        raise _refusal(exc) from None


@router.put("/sites/{site}/escalation/{severity}", status_code=status.HTTP_204_NO_CONTENT,
            responses=responses(400, 401, 403, 404, 422, 503))
def set_policy(site: SiteId, severity: Literal["normal", "high"], body: PolicyIn,
               user: CurrentAdmin, conn: ConnDep) -> None:
    """The site's own minutes before a call of ``severity`` goes to each person."""
    existing_site(conn, site)
    with conn.transaction():
        stored.set_policy(conn, site, severity, stored.Policy(
            body.second_after_minutes, body.coordinator_after_minutes))
        audit(conn, user.username, "site.escalation", site, severity, body.model_dump())


__all__ = ["router"]
