"""Data-protection duties (admin only): the audit log read and exported, a room's history
erased when its resident moves out, a disabled user erased (the audit log keeps a pseudonym),
and whether a site allows free-text resolve notes.

The store does the work (``ingest.audit``, ``ingest.erasure``, ``ingest.sites``); every
call here is itself written to the audit log, an export included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api import users
from api.deps import ConnDep, CurrentAdmin
from api.errors import Refusal, responses
from api.models import TEXT_PATTERN, RoomId, SiteId
from core.i18n import mark
from ingest import erasure
from ingest import sites as stored_sites
from ingest.audit import audit, audit_csv, read_audit
from ingest.users import is_disabled

router = APIRouter(tags=["privacy"])

_NO_ROOM = mark("room '{room}' does not exist on site '{site}'")
_NO_SITE = mark("site '{site}' does not exist")
_STILL_ACTIVE = mark("user {username} is still active; disable the account first, then erase "
                     "it")
_NO_USER = mark("there is no user {username}")
_NOT_YOURSELF = mark("you cannot erase your own account; ask another admin")


class AuditRow(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    site: str | None
    target: str | None
    detail: dict[str, Any]


class RoomErased(BaseModel):
    site: str
    room: str
    deleted: dict[str, int] = Field(description="rows deleted (or unlinked) per table")


class UserErased(BaseModel):
    pseudonym: str = Field(description="what the audit log now says instead of the name")
    rewritten: dict[str, int] = Field(description="rows rewritten per table")


class NotesSetting(BaseModel):
    allowed: bool = Field(description="allow free-text notes when resolving alerts; the board "
                          "then warns staff never to write names")


class NotesOut(BaseModel):
    site: str
    resolve_notes: bool


_JSON_OR_CSV: dict[int | str, dict[str, Any]] = {200: {
    "description": "The audit rows, oldest first", "content": {
        "application/json": {}, "text/csv": {"schema": {"type": "string"}}}}}


@router.get("/audit", responses={**_JSON_OR_CSV, **responses(401, 403, 422, 503)},
            response_model=list[AuditRow])
def get_audit(
    admin: CurrentAdmin, conn: ConnDep,
    since: Annotated[datetime | None, Query(alias="from", description="at or after")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="before")] = None,
    actor: Annotated[str | None, Query(max_length=100, pattern=TEXT_PATTERN)] = None,
    action: Annotated[str | None, Query(max_length=100, pattern=TEXT_PATTERN,
                                        description="alert.resolve, or a prefix: alert.")] = None,
    site: Annotated[str | None, Query(max_length=63, pattern=TEXT_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """The audit log, oldest first: JSON, or CSV for a SIEM (``format=csv``)."""
    with conn.transaction():
        entries = read_audit(conn, since=since, until=until, actor=actor, action=action,
                             site=site, limit=limit)
        audit(conn, admin.username, "audit.export", site, None,
              {"format": format_, "rows": len(entries), "from": since and since.isoformat(),
               "to": until and until.isoformat(), "actor": actor, "action": action})
    if format_ == "csv":
        return Response(audit_csv(entries), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="nattero-audit.csv"',
            "Cache-Control": "no-store"})
    return [AuditRow.model_validate(entry, from_attributes=True) for entry in entries]


@router.delete("/sites/{site}/rooms/{room}/history", response_model=RoomErased,
               responses=responses(401, 403, 404, 422, 503))
def erase_room_history(site: SiteId, room: RoomId, admin: CurrentAdmin,
                       conn: ConnDep) -> RoomErased:
    """Erase every row of the room's history (a resident moved out): events, rollups, alerts,
    dead letters, monitoring bases. The room and its devices stay for the next resident."""
    try:
        erased = erasure.erase_room(conn, site, room, admin.username)
    except erasure.ErasureError:
        raise Refusal(status.HTTP_404_NOT_FOUND, _NO_ROOM, room=room, site=site) from None
    return RoomErased(site=erased.site, room=erased.room, deleted=erased.deleted)


@router.post("/users/{username}/erase", response_model=UserErased,
             responses=responses(401, 403, 404, 409, 422, 503))
def erase_user(
    username: Annotated[str, Path(min_length=2, max_length=63, pattern=TEXT_PATTERN)],
    admin: CurrentAdmin, conn: ConnDep,
) -> UserErased:
    """Delete a disabled account; its name is replaced by a pseudonym everywhere it was
    written (audit log, alerts it handled). Disable it first (``POST .../disable``)."""
    name = users.normalise_username(username)
    if name == admin.username:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, _NOT_YOURSELF)
    disabled = is_disabled(conn, name)
    if disabled is None:
        raise Refusal(status.HTTP_404_NOT_FOUND, _NO_USER, username=name)
    if not disabled:
        raise Refusal(status.HTTP_409_CONFLICT, _STILL_ACTIVE, username=name)
    erased = erasure.erase_user(conn, name, admin.username)
    return UserErased(pseudonym=erased.pseudonym, rewritten=erased.rewritten)


@router.put("/sites/{site}/resolve-notes", response_model=NotesOut,
            responses=responses(400, 401, 403, 404, 422, 503))
def set_resolve_notes(site: SiteId, body: NotesSetting, admin: CurrentAdmin,
                      conn: ConnDep) -> NotesOut:
    """Allow or forbid free-text notes when staff resolve an alert on this site."""
    with conn.transaction():
        if not stored_sites.set_resolve_notes(conn, site, body.allowed):
            raise Refusal(status.HTTP_404_NOT_FOUND, _NO_SITE, site=site)
        audit(conn, admin.username, "site.resolve_notes", site, site,
              {"allowed": body.allowed})
    return NotesOut(site=site, resolve_notes=body.allowed)
