"""FastAPI dependencies as ``Annotated`` aliases: settings, a database connection, the caller.

``CurrentUser`` is anyone logged in; ``CurrentStaff`` admin or staff (live data);
``CurrentAdmin`` admin only; ``CurrentEvaluator`` evaluator or admin (exports, reports).
The user is read from the database on every request, so a changed role or a disabled
account takes effect at once, not when the token expires.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import ConnectionPool

from api import security
from api.errors import Refusal
from api.users import Role, User, get_user
from core.settings import Settings

TOKEN_URL = "/api/v1/auth/token"

_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(_settings)]
ConnDep = Annotated[psycopg.Connection, Depends(_connection)]
SessionDep = ConnDep
TokenDep = Annotated[str | None, Depends(_bearer)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message,
                         headers={"WWW-Authenticate": "Bearer"})


def user_for_token(settings: Settings, conn: psycopg.Connection, token: str | None) -> User:
    """The active user a token belongs to; raises TokenError saying what is wrong."""
    if not token:
        raise security.TokenError(
            "not logged in: send a bearer token from POST /api/v1/auth/token")
    claims = security.decode_token(settings, token)
    stored = get_user(conn, claims.username)
    if stored is None or stored.disabled:
        raise security.TokenError("the account of this token no longer exists or is disabled")
    return User(username=stored.username, role=stored.role, sites=stored.sites)


def _current_user(settings: SettingsDep, conn: ConnDep, token: TokenDep) -> User:
    try:
        return user_for_token(settings, conn, token)
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
