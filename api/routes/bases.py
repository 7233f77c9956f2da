"""Monitoring bases that have ended or end soon (admin only), for the admin page's warning.

A flat whose basis has ended is stored but raises no resident alerts; the admin must record
a new basis (a renewed decision, a new consent) before that day. The window is
``ingest.basis_expiry.WARNING_DAYS`` unless ``days`` asks for another.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ConnDep, CurrentAdmin
from api.errors import responses
from ingest.basis_expiry import WARNING_DAYS, basis_ends

router = APIRouter(tags=["admin"])


class BasisEndOut(BaseModel):
    site: str
    room: str
    label: str
    ends: date = Field(description="the last day the flat is covered (site's local date)")
    expired: bool = Field(description="the basis has ended: the flat is not monitored now")
    kind: str = Field(description="consent or decision")
    reference: str | None = Field(description="the decision's reference")


@router.get("/bases/ending", response_model=list[BasisEndOut],
            responses=responses(401, 403, 422, 503))
def ending_bases(admin: CurrentAdmin, conn: ConnDep,
                 days: Annotated[int, Query(ge=0, le=366, description=(
                     "warn this many days ahead"))] = WARNING_DAYS) -> list[BasisEndOut]:
    """Flats whose basis has ended, or ends within ``days`` days, soonest first."""
    return [BasisEndOut.model_validate(end, from_attributes=True)
            for end in basis_ends(conn, days)]
