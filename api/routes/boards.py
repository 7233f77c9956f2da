"""Enrolled boards: an admin makes a pairing code, lists and revokes boards; a tablet
pairs with the code and renews its board token (``api.boards``).

- ``POST /api/v1/sites/{site}/boards/pairings`` (admin) - a pairing code, shown once.
- ``GET /api/v1/boards`` (admin) - every enrolled board, revoked ones too.
- ``POST /api/v1/boards/{id}/revoke`` (admin) - its tokens and live stream end at once.
- ``POST /api/v1/auth/board/pair`` - JSON ``{"code", "device"}`` -> board secret + token.
- ``POST /api/v1/auth/board/refresh`` - JSON ``{"board_secret", "device"}`` -> token.

Secrets travel only in JSON bodies, never in a URL. Wrong codes and secrets count
towards the client address's limit, like wrong passwords.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, Field

from api import boards, security
from api.deps import ConnDep, CurrentAdmin, NowDep, SecretDep, SettingsDep, existing_site
from api.errors import Refusal, responses
from api.models import TEXT_PATTERN, SiteId
from ingest import boards as stored_boards
from ingest.audit import audit
from ingest.boards import BoardRecord

router = APIRouter(tags=["boards"])

BoardId = Annotated[int, Path(ge=1, le=2**63 - 1, description="enrolled board id")]


class NewPairing(BaseModel):
    label: str = Field(min_length=1, max_length=100, pattern=TEXT_PATTERN,
                       description="where the tablet is, e.g. 'kontoret'; never a name")


class PairingOut(BaseModel):
    code: str = Field(description="type it on the tablet's login page; single use")
    site: str
    label: str
    expires_at: datetime


class BoardOut(BaseModel):
    id: int
    site: str
    label: str
    enrolled_by: str
    enrolled_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, board: BoardRecord) -> BoardOut:
        return cls.model_validate(board, from_attributes=True)


class PairRequest(BaseModel):
    code: str = Field(min_length=4, max_length=20, pattern=TEXT_PATTERN)
    device: str = Field(min_length=boards.MIN_DEVICE_ID, max_length=200, pattern=TEXT_PATTERN)


class RefreshRequest(BaseModel):
    board_secret: str = Field(min_length=10, max_length=200, pattern=TEXT_PATTERN)
    device: str = Field(min_length=boards.MIN_DEVICE_ID, max_length=200, pattern=TEXT_PATTERN)


class BoardSession(BaseModel):
    """A board's token, and on pairing its secret (keep it: it is shown only once)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    board_id: int
    username: str
    role: Literal["staff"] = "staff"
    site: str
    sites: list[str]
    label: str
    board_secret: str | None = None


class Revoked(BaseModel):
    ok: Literal[True] = True
    message: str


def _session(board: BoardRecord, token: str, minutes: int,
             secret: str | None = None) -> BoardSession:
    return BoardSession(access_token=token, expires_in=minutes * 60, board_id=board.id,
                        username=f"board-{board.id}", site=board.site, sites=[board.site],
                        label=board.label, board_secret=secret)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_address(request: Request) -> security.AddressLimiter:
    limiter: security.AddressLimiter = request.app.state.login_limiter
    wait = limiter.retry_after(_address(request))
    if wait is not None:
        raise Refusal(status.HTTP_429_TOO_MANY_REQUESTS,
                      "too many failed attempts from this address; try again in {minutes} "
                      "minute(s)", minutes=math.ceil(wait / 60),
                      headers={"Retry-After": str(math.ceil(wait))})
    return limiter


@router.post("/sites/{site}/boards/pairings", status_code=201, response_model=PairingOut,
             responses=responses(400, 401, 403, 404, 422, 503))
def make_pairing(site: SiteId, body: NewPairing, admin: CurrentAdmin, conn: ConnDep,
                 settings: SettingsDep, now: NowDep) -> PairingOut:
    """A pairing code for enrolling a tablet as this site's board; show it to the tablet."""
    with conn.transaction():
        existing_site(conn, site)
        pairing = boards.make_pairing(conn, site, body.label, admin.username, now,
                                      settings.board_pairing_minutes)
        audit(conn, admin.username, "board.pairing", site, body.label)
    return PairingOut(code=pairing.code, site=pairing.site, label=pairing.label,
                      expires_at=pairing.expires_at)


@router.get("/boards", response_model=list[BoardOut], responses=responses(401, 403, 503))
def list_boards(admin: CurrentAdmin, conn: ConnDep) -> list[BoardOut]:
    return [BoardOut.of(board) for board in stored_boards.list_boards(conn)]


@router.post("/boards/{board_id}/revoke", response_model=Revoked,
             responses=responses(401, 403, 404, 422, 503))
def revoke_board(board_id: BoardId, admin: CurrentAdmin, conn: ConnDep,
                 now: NowDep) -> Revoked:
    """Revoke an enrolled board: its token and live stream end within about a second."""
    with conn.transaction():
        if not boards.revoke(conn, board_id, admin.username, now):
            raise Refusal(status.HTTP_404_NOT_FOUND,
                          "board {board} does not exist or is revoked already", board=board_id)
        audit(conn, admin.username, "board.revoke", None, f"board-{board_id}")
    return Revoked(message=f"board {board_id} revoked")


@router.post("/auth/board/pair", response_model=BoardSession,
             responses=responses(400, 401, 422, 429, 503))
def pair(request: Request, body: PairRequest, conn: ConnDep, settings: SettingsDep,
         secret: SecretDep, now: NowDep) -> BoardSession:
    """Enrol this tablet as a board with the admin's pairing code."""
    limiter = _check_address(request)
    try:
        board, board_secret = boards.pair(conn, body.code, body.device, now)
    except boards.BoardError as exc:
        limiter.failed(_address(request))
        raise Refusal(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    audit(conn, f"board-{board.id}", "board.enrol", board.site, board.label,
          {"address": _address(request)})
    token = security.create_board_token(settings, secret, board.id, now)
    return _session(board, token, settings.board_token_minutes, board_secret)


@router.post("/auth/board/refresh", response_model=BoardSession,
             responses=responses(400, 401, 422, 429, 503))
def refresh(request: Request, body: RefreshRequest, conn: ConnDep, settings: SettingsDep,
            secret: SecretDep, now: NowDep) -> BoardSession:
    """A new token for an enrolled board (call it at half the token's life)."""
    limiter = _check_address(request)
    try:
        board = boards.renew(conn, body.board_secret, body.device, now)
    except boards.BoardError as exc:
        limiter.failed(_address(request))
        raise Refusal(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    token = security.create_board_token(settings, secret, board.id, now)
    return _session(board, token, settings.board_token_minutes)
