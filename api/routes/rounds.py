"""Rounds logged on the board ("Runde gået") and each site's baseline period.

A round is logged by the site's own staff (or an admin) with one tap, for a flat, a floor
(the flats on one corridor) or the whole site; it is stored and audited in one
transaction. The baseline period (the nights before the sensors went live) is set by an
admin. The benefit report (``evaluation.benefit``) counts both.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, model_validator

from api.deps import ConnDep, CurrentAdmin, CurrentStaff, NowDep, existing_site
from api.errors import Invalid, Refusal, responses
from api.models import ID_PATTERN, SiteId
from api.users import User
from core.i18n import mark
from ingest import rounds as stored
from ingest.audit import audit

router = APIRouter(prefix="/sites", tags=["rounds"])

_NOT_YOURS = mark("you are not staff of site '{site}': log rounds and answers on your own "
                  "site's board")


def own_site(user: User, site: str) -> str:
    """The site if the caller is its staff (or an admin); 403 otherwise. Logging on another
    site's night would put a false figure in its evaluation, so it is refused outright."""
    if not user.can_see(site):
        raise Refusal(status.HTTP_403_FORBIDDEN, _NOT_YOURS, site=site)
    return site


class RoundIn(BaseModel):
    scope: stored.RoundScope = Field(description="flat, floor (a corridor's flats) or site")
    room: Annotated[str | None, Field(
        None, pattern=ID_PATTERN,
        description="the flat (scope flat) or the corridor (scope floor); none for site")]

    @model_validator(mode="after")
    def room_matches_scope(self) -> RoundIn:
        if (self.scope == "site") != (self.room is None):
            raise Invalid(mark("give a room for a round of a flat or a floor, and none for "
                               "the whole site"))
        return self


class RoundOut(BaseModel):
    id: int
    scope: str
    room: str | None
    flats: int = Field(description="flats the round covered")
    walked_at: datetime


class BaselineIn(BaseModel):
    first: date = Field(description="first night of the baseline (evening date)")
    last: date = Field(description="last night of the baseline, inclusive")

    @model_validator(mode="after")
    def in_order(self) -> BaselineIn:
        if self.last < self.first:
            raise Invalid(mark("the baseline ends before it starts; choose a first night "
                               "before the last"))
        return self


class BaselineOut(BaseModel):
    site: str
    first: date
    last: date
    set_by: str
    set_at: datetime


@router.post("/{site}/rounds", response_model=RoundOut, status_code=status.HTTP_201_CREATED,
             responses=responses(400, 401, 403, 404, 422, 503))
def log_round(site: SiteId, body: RoundIn, user: CurrentStaff, conn: ConnDep,
              now: NowDep) -> RoundOut:
    """One round walked now ("Runde gået"), for a flat, a floor or the whole site."""
    own_site(user, site)
    existing_site(conn, site)
    try:
        with conn.transaction():
            logged = stored.log_round(conn, site, body.scope, body.room, now)
            audit(conn, user.username, "round.log", site, str(logged.id),
                  {"scope": logged.scope, "room": logged.room, "flats": logged.flats})
    except stored.UnknownRoundTarget:
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      mark("'{room}' is not a flat or a floor of site '{site}'; choose one "
                           "from the board"), room=body.room, site=site) from None
    return RoundOut.model_validate(logged._asdict())


@router.put("/{site}/baseline", response_model=BaselineOut,
            responses=responses(400, 401, 403, 404, 422, 503))
def set_baseline(site: SiteId, body: BaselineIn, user: CurrentAdmin,
                 conn: ConnDep) -> BaselineOut:
    """The site's baseline period: the nights before the sensors went live, when staff
    logged their usual rounds. The report compares them with the rounds of the pilot."""
    existing_site(conn, site)
    with conn.transaction():
        period = stored.set_baseline_period(conn, site, body.first, body.last, user.username)
        audit(conn, user.username, "site.baseline", site, None,
              {"first": body.first.isoformat(), "last": body.last.isoformat()})
    return BaselineOut(site=period.site, first=period.first, last=period.last,
                       set_by=period.set_by, set_at=period.set_at)


@router.get("/{site}/baseline", response_model=BaselineOut,
            responses=responses(401, 403, 404, 422, 503))
def get_baseline(site: SiteId, user: CurrentStaff, conn: ConnDep) -> BaselineOut:
    own_site(user, site)
    period = stored.baseline_period(conn, site)
    if period is None:
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      mark("site '{site}' has no baseline period yet; an admin sets it "
                           "before the sensors go live"), site=site)
    return BaselineOut(site=period.site, first=period.first, last=period.last,
                       set_by=period.set_by, set_at=period.set_at)
