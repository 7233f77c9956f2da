"""FastAPI dependencies as ``Annotated`` aliases: settings, a database connection, the caller.

``CurrentUser`` is anyone logged in; ``CurrentStaff`` admin or staff (live data);
``CurrentAdmin`` admin only; ``CurrentEvaluator`` evaluator or admin (exports, reports).
The account is read from the database on every request and must still have the id and
token version the token carries, so a password change, disable, role change or delete
ends the account's tokens at once, not when they expire. An enrolled board's token must
name a board that is not revoked; the board is a staff caller of its one site.
``NowDep`` is the app's clock (``api.clock``), which tests move.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import ConnectionPool

from api import security
from api.clock import Clock
from api.errors import Refusal
from api.users import Role, User, get_user_by_id
from core.settings import Settings
from ingest.boards import get_board
from ingest.installation import signing_secret
from ingest.sites import site_exists

TOKEN_URL = "/api/v1/auth/token"

_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


SettingsDep = Annotated[Settings, Depends(_settings)]
NowDep = Annotated[datetime, Depends(_now)]
ConnDep = Annotated[psycopg.Connection, Depends(_connection)]
SessionDep = ConnDep
TokenDep = Annotated[str | None, Depends(_bearer)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message,
                         headers={"WWW-Authenticate": "Bearer"})


def app_signing_secret(app: Any, conn: psycopg.Connection) -> str:
    """The installation's signing secret, read once per process (it never changes while
    the installation runs; every API process reads the same row)."""
    secret: str | None = app.state.signing_secret
    if secret is None:
        settings: Settings = app.state.settings
        secret = app.state.signing_secret = signing_secret(conn, settings.secret_key)
    return secret


def _secret(request: Request, conn: ConnDep) -> str:
    return app_signing_secret(request.app, conn)


SecretDep = Annotated[str, Depends(_secret)]


def board_user(board_id: int, site: str) -> User:
    """An enrolled board as a caller: staff of its one site."""
    return User(username=f"board-{board_id}", role=Role.STAFF, sites=[site])


def authenticate(secret: str, conn: psycopg.Connection, token: str | None,
                 now: datetime) -> tuple[User, security.TokenClaims]:
    """The active user (or enrolled board) a token belongs to, with the token's claims;
    raises TokenError saying what is wrong."""
    if not token:
        raise security.TokenError(
            "not logged in: send a bearer token from POST /api/v1/auth/token")
    claims = security.decode_token(secret, token, now)
    if claims.board_id is not None:
        board = get_board(conn, claims.board_id)
        if board is None or board.revoked_at is not None:
            raise security.TokenError("this board was revoked by an admin; enrol it again "
                                      "with a new pairing code")
        return board_user(board.id, board.site), claims
    assert claims.user_id is not None
    stored = get_user_by_id(conn, claims.user_id)
    if stored is None or stored.disabled:
        raise security.TokenError("the account of this token no longer exists or is "
                                  "disabled; log in again or ask an admin")
    if stored.token_version != claims.version:
        raise security.TokenError("this token was revoked (the password, role or account "
                                  "changed since); log in again")
    return User(username=stored.username, role=stored.role, sites=stored.sites), claims


def _current_user(secret: SecretDep, conn: ConnDep, token: TokenDep, now: NowDep) -> User:
    try:
        return authenticate(secret, conn, token, now)[0]
    except security.TokenError as exc:
        raise _unauthorized(str(exc)) from None


CurrentUser = Annotated[User, Depends(_current_user)]


def _current_staff(user: CurrentUser) -> User:
    if user.role not in (Role.ADMIN, Role.STAFF):
        raise Refusal(status.HTTP_403_FORBIDDEN, "live alerts and the board need a staff "
                      "account; '{user}' has role {role}", user=user.username, role=user.role)
    return user


def _current_admin(user: CurrentUser) -> User:
    if user.role != Role.ADMIN:
        raise Refusal(status.HTTP_403_FORBIDDEN, "this needs an admin account; '{user}' is "
                      "{role}", user=user.username, role=user.role)
    return user


def _current_evaluator(user: CurrentUser) -> User:
    if user.role not in (Role.ADMIN, Role.EVALUATOR):
        raise Refusal(status.HTTP_403_FORBIDDEN, "exports and reports need an evaluator "
                      "account; '{user}' has role {role}", user=user.username, role=user.role)
    return user


CurrentStaff = Annotated[User, Depends(_current_staff)]
CurrentAdmin = Annotated[User, Depends(_current_admin)]
CurrentEvaluator = Annotated[User, Depends(_current_evaluator)]


def visible_site(user: User, site: str) -> str:
    """The site if the user may see it, else 404 (we do not confirm a site exists)."""
    if not user.can_see(site):
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      "site '{site}' does not exist or is not assigned to you", site=site)
    return site


def existing_site(conn: psycopg.Connection, site: str) -> None:
    """Refuse (404) a site that does not exist; after the caller checked that the user may
    see it, so a stranger learns nothing from the difference."""
    if not site_exists(conn, site):
        raise Refusal(status.HTTP_404_NOT_FOUND, "site '{site}' does not exist", site=site)
