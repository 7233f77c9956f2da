"""Staff on the floor (issue 13 §3): "I am going round the common rooms" or "I am going into
flat 7", from the board.

A round quiets what staff themselves cause, for the minutes it lasts: motion in the common
rooms is not someone nobody knows, and the flat's door opening is not its resident leaving
(``rules.staff``). It is stored (the rules read it within a second, and a replay of the
night reads it too) and audited with who announced it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import ConnDep, CurrentStaff, NowDep, existing_site
from api.errors import Refusal, responses
from api.models import ID_PATTERN, SiteId
from api.routes.rounds import own_site
from core.i18n import mark
from ingest import staff_presence as stored
from ingest.audit import audit

router = APIRouter(prefix="/sites", tags=["staff"])

DEFAULT_MINUTES = 15


class StaffPresenceIn(BaseModel):
    room: Annotated[str | None, Field(
        None, pattern=ID_PATTERN,
        description="the flat staff go into; none for a round of the common rooms")]
    minutes: int = Field(DEFAULT_MINUTES, ge=1, le=120,
                         description="how long the round lasts (1-120 minutes)")


class StaffPresenceOut(BaseModel):
    id: int
    room: str | None
    starts_at: datetime
    ends_at: datetime


@router.post("/{site}/staff-presence", response_model=StaffPresenceOut,
             status_code=status.HTTP_201_CREATED,
             responses=responses(400, 401, 403, 404, 422, 503))
def announce_round(site: SiteId, body: StaffPresenceIn, user: CurrentStaff, conn: ConnDep,
                   now: NowDep) -> StaffPresenceOut:
    """Staff going round the common rooms (no room) or into one flat, from now on."""
    own_site(user, site)
    existing_site(conn, site)
    try:
        with conn.transaction():
            presence = stored.record_presence(conn, site, body.room, now,
                                              now + timedelta(minutes=body.minutes))
            audit(conn, user.username, "staff.round", site, body.room,
                  {"minutes": body.minutes})
    except stored.UnknownFlat:
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      mark("'{room}' is not a flat of site '{site}'; choose one from the "
                           "board"), room=body.room, site=site) from None
    return StaffPresenceOut.model_validate(presence._asdict())


@router.get("/{site}/staff-presence", response_model=list[StaffPresenceOut],
            responses=responses(401, 403, 404, 422, 503))
def rounds_in_progress(site: SiteId, user: CurrentStaff, conn: ConnDep,
                       now: NowDep) -> list[StaffPresenceOut]:
    """The site's announced rounds in progress now, the latest first."""
    own_site(user, site)
    existing_site(conn, site)
    return [StaffPresenceOut.model_validate(p._asdict())
            for p in stored.current_presence(conn, site, now)]
