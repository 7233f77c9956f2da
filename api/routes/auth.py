"""``POST /api/v1/auth/token``: OAuth2 password form in, bearer token out.

Wrong passwords count towards the account lock and the client-address limit; a locked
account answers 429 with the time to try again, even for the right password.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api import security
from api.deps import ConnDep, CurrentUser, SecretDep, SettingsDep
from api.errors import responses
from api.users import Role, User, get_user, record_failed_login, record_successful_login
from ingest.audit import audit

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    username: str
    role: Role
    sites: list[str]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _locked(until: datetime, now: datetime) -> HTTPException:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"too many wrong passwords for this account; it is locked until "
        f"{until.strftime('%H:%M')} UTC - try again in {minutes} minute(s)",
        headers={"Retry-After": str(max(1, int((until - now).total_seconds())))})


@router.post("/token", response_model=Token, responses=responses(400, 401, 422, 429, 503))
def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
          conn: ConnDep, settings: SettingsDep, secret: SecretDep) -> Token:
    """Log in with username and password (form fields); returns a bearer token."""
    limiter: security.AddressLimiter = request.app.state.login_limiter
    address = _client(request)
    wait = limiter.retry_after(address)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins from this address; try again in "
            f"{math.ceil(wait / 60)} minute(s)", headers={"Retry-After": str(math.ceil(wait))})
    now = datetime.now(UTC)
    stored = get_user(conn, form.username)
    if stored is not None and stored.locked_until is not None and stored.locked_until > now:
        raise _locked(stored.locked_until, now)
    valid = security.verify_password(stored.password_hash if stored else None, form.password)
    if stored is None or not valid or stored.disabled:
        limiter.failed(address)
        with conn.transaction():
            locked_until = record_failed_login(conn, form.username, now) if stored else None
            audit(conn, form.username[:100], "login.failed",
                  detail={"address": address, "locked": locked_until is not None})
        if locked_until is not None:
            raise _locked(locked_until, now)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    limiter.succeeded(address)
    with conn.transaction():
        record_successful_login(conn, stored.username)
        audit(conn, stored.username, "login", detail={"address": address})
    token = security.create_token(settings, secret, stored.id, stored.token_version,
                                  stored.username, stored.role)
    return Token(access_token=token,
                 expires_in=settings.token_minutes * 60, username=stored.username,
                 role=stored.role, sites=stored.sites)


@router.get("/me", response_model=User, responses=responses(401, 503))
def me(user: CurrentUser) -> User:
    """The logged-in user, their role and sites."""
    return user
