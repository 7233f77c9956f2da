"""The qualitative effects: the anonymous end-of-shift questionnaire (staff, on the board)
and the per-flat resident-outcome note (the coordinator: an admin).

The questionnaire is anonymous: neither the account, the board nor the time of day is
stored with an answer, and it is not written to the audit log (an audit row's actor and
time would name who answered). Only the site and the night are kept.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import ConnDep, CurrentAdmin, CurrentStaff, NowDep, existing_site
from api.errors import Refusal, responses
from api.models import TEXT_PATTERN, RoomId, SiteId
from api.routes.rounds import own_site
from core.i18n import mark
from evaluation.period import load_sites
from ingest import experience as stored
from ingest.audit import audit
from ingest.sites import room_exists

router = APIRouter(prefix="/sites", tags=["experience"])

Score = Annotated[int | None, Field(None, ge=1, le=5, description="1 (worst) to 5 (best); "
                                    "none: not answered")]


class ShiftAnswerIn(BaseModel):
    calm: Score
    workload: Score
    trust: Score
    residents_rest: Score
    comment: str | None = Field(None, max_length=1000, pattern=TEXT_PATTERN,
                                description="optional free text; never a name")


class Received(BaseModel):
    received: bool = True


class OutcomeNoteIn(BaseModel):
    noted_on: date
    self_reliance: int = Field(ge=1, le=5, description="1 (much help) to 5 (self-reliant)")
    quality_of_life: int = Field(ge=1, le=5, description="1 (poor) to 5 (good)")


@router.post("/{site}/shift-answers", response_model=Received,
             status_code=status.HTTP_201_CREATED,
             responses=responses(400, 401, 403, 404, 422, 503))
def answer_shift(site: SiteId, body: ShiftAnswerIn, user: CurrentStaff, conn: ConnDep,
                 now: NowDep) -> Received:
    """An optional, anonymous end-of-shift answer: stored without who sent it."""
    own_site(user, site)
    existing_site(conn, site)
    night = load_sites(conn, [site])[0].night_of(now)
    comment = (body.comment or "").strip() or None
    with conn.transaction():
        stored.add_shift_answer(conn, site, night, {q: getattr(body, q)
                                                    for q in stored.QUESTIONS}, comment)
    return Received()


@router.post("/{site}/rooms/{room}/outcomes", response_model=Received,
             status_code=status.HTTP_201_CREATED,
             responses=responses(400, 401, 403, 404, 422, 503))
def note_outcome(site: SiteId, room: RoomId, body: OutcomeNoteIn, user: CurrentAdmin,
                 conn: ConnDep) -> Received:
    """The coordinator's note on a flat's resident: self-reliance and quality of life."""
    existing_site(conn, site)
    if not room_exists(conn, site, room):
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      mark("room '{room}' does not exist on site '{site}'"), room=room, site=site)
    with conn.transaction():
        stored.add_outcome_note(conn, site, room, body.noted_on, body.self_reliance,
                                body.quality_of_life, user.username)
        audit(conn, user.username, "resident.outcome", site, room,
              {"noted_on": body.noted_on.isoformat()})
    return Received()
