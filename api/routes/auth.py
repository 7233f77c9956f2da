"""``POST /api/v1/auth/token``: OAuth2 password form in, bearer token out.

Wrong passwords lock the (account, client) pair with growing delays (``api.lockout``);
a locked client answers 429 with the time to try again, even for the right password,
while the account's other clients (the night shift's tablet) log in as usual. A
successful login returns a ``client_key`` the page sends back with its next logins
(form field ``client_key``): it is how the lockout tells that tablet from a stranger's.
Each client address may also fail only so often (``api.security.AddressLimiter``).

``POST /api/v1/auth/refresh``: a personal login's short token for a new one, until
``session_hours`` after the login (the pages call it at half the token's life). An
enrolled board renews with its board secret instead (``api.routes.boards``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api import lockout, security, totp
from api.deps import ConnDep, CurrentUser, NowDep, SecretDep, SettingsDep, TokenDep, authenticate
from api.errors import Refusal, responses
from api.users import Role, StoredUser, User, get_user, record_successful_login
from core.settings import Settings
from ingest.audit import audit
from ingest.users import use_totp_step

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    username: str
    role: Role
    sites: list[str]
    #: send it back with this account's next login from this device (not on a refresh)
    client_key: str | None = None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _locked(username: str, until: datetime, now: datetime) -> Refusal:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return Refusal(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "too many wrong passwords for '{username}' from this device; try again in "
        "{seconds} s, or ask an admin to unlock the account", username=username,
        seconds=seconds, headers={"Retry-After": str(seconds)})


SECOND_FACTOR = "X-Nattero-Second-Factor"


def checked_password(request: Request, conn: psycopg.Connection, secret: str, now: datetime,
                     username: str, password: str, client_key: str | None
                     ) -> tuple[StoredUser, str, str]:
    """The account whose password this is, with the lockout's client and the address;
    refuses (and counts) a wrong one, a locked client or a disabled account."""
    limiter: security.AddressLimiter = request.app.state.login_limiter
    address = _client(request)
    wait = limiter.retry_after(address)
    if wait is not None:
        raise Refusal(status.HTTP_429_TOO_MANY_REQUESTS,
                      "too many failed attempts from this address; try again in {minutes} "
                      "minute(s)", minutes=math.ceil(wait / 60),
                      headers={"Retry-After": str(math.ceil(wait))})
    stored = get_user(conn, username)
    client = (lockout.client_of(secret, stored.id, client_key, address)
              if stored is not None else f"address:{address}")
    if stored is not None:
        until = lockout.locked_until(conn, stored.id, client, now)
        if until is not None:
            raise _locked(stored.username, until, now)
    valid = security.verify_password(stored.password_hash if stored else None, password)
    if stored is None or not valid or stored.disabled:
        _failed(request, conn, username, stored, client, address, now)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    return stored, client, address


def _failed(request: Request, conn: psycopg.Connection, username: str,
            stored: StoredUser | None, client: str, address: str, now: datetime,
            factor: str = "password") -> None:
    """Count a wrong password (or second-factor code) against the client and the address;
    raises the lock's 429 when this one locks the client."""
    request.app.state.login_limiter.failed(address)
    with conn.transaction():
        locked_until = (lockout.record_failure(conn, stored.id, client, now)
                        if stored else None)
        audit(conn, username[:100], "login.failed",
              detail={"address": address, "client": client.partition(":")[0],
                      "locked": locked_until is not None, "factor": factor})
    if stored is not None and locked_until is not None:
        raise _locked(stored.username, locked_until, now)


def _second_factor(request: Request, conn: psycopg.Connection, settings: Settings,
                   stored: StoredUser, client: str, address: str, now: datetime,
                   code: str | None) -> bool:
    """For a local admin: check the TOTP code, or ask for it (401 with the header
    ``X-Nattero-Second-Factor: code``, or ``enrol`` when one is required and none is set
    up). Whether this login confirmed a pending enrolment."""
    if stored.role != Role.ADMIN or stored.password_hash is None:
        return False
    pending = stored.totp_secret is not None and not stored.totp_confirmed
    if not stored.totp_confirmed and not (pending and code):
        if settings.admin_totp_required:
            raise Refusal(status.HTTP_401_UNAUTHORIZED, "this admin account needs a second "
                          "factor: set up an authenticator app first",
                          headers={SECOND_FACTOR: "enrol", "WWW-Authenticate": "Bearer"})
        return False
    if not code:
        raise Refusal(status.HTTP_401_UNAUTHORIZED, "enter the 6-digit code from your "
                      "authenticator app", headers={SECOND_FACTOR: "code",
                                                    "WWW-Authenticate": "Bearer"})
    assert stored.totp_secret is not None
    step = totp.matching_step(stored.totp_secret, code, now, stored.totp_last_step)
    with conn.transaction():
        accepted = step is not None and use_totp_step(conn, stored.id, step)
    if not accepted:
        _failed(request, conn, stored.username, stored, client, address, now, factor="totp")
        raise Refusal(status.HTTP_401_UNAUTHORIZED, "wrong or already used code; enter the "
                      "current code from your authenticator app",
                      headers={SECOND_FACTOR: "code", "WWW-Authenticate": "Bearer"})
    return pending


@router.post("/token", response_model=Token, responses=responses(400, 401, 422, 429, 503))
def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
          conn: ConnDep, settings: SettingsDep, secret: SecretDep, now: NowDep,
          client_key: Annotated[str | None, Form(max_length=200)] = None,
          totp_code: Annotated[str | None, Form(alias="totp", max_length=20)] = None
          ) -> Token:
    """Log in with username and password (form fields; ``client_key`` from an earlier
    login on this device, if any; ``totp``: a local admin's code from their authenticator
    app, when the answer's ``X-Nattero-Second-Factor`` header asked for it); returns a
    bearer token."""
    stored, client, address = checked_password(request, conn, secret, now, form.username,
                                               form.password, client_key)
    enrolled = _second_factor(request, conn, settings, stored, client, address, now,
                              totp_code)
    request.app.state.login_limiter.succeeded(address)
    with conn.transaction():
        lockout.record_success(conn, stored.id, client)
        record_successful_login(conn, stored.username)
        if enrolled:
            audit(conn, stored.username, "totp.enrolled", target=stored.username)
        audit(conn, stored.username, "login", detail={"address": address})
    token = security.create_token(settings, secret, stored.id, stored.token_version,
                                  stored.username, stored.role, now=now)
    key = client_key if client.startswith("key:") and client_key else \
        security.new_login_key(secret, stored.id)
    return Token(access_token=token,
                 expires_in=settings.token_minutes * 60, username=stored.username,
                 role=stored.role, sites=stored.sites, client_key=key)


@router.post("/refresh", response_model=Token, responses=responses(401, 503))
def refresh(token: TokenDep, conn: ConnDep, settings: SettingsDep, secret: SecretDep,
            now: NowDep) -> Token:
    """A new short token for the bearer's personal login (the same login, renewed), until
    ``session_hours`` after the login."""
    try:
        user, claims = authenticate(secret, conn, token, now)
    except security.TokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from None
    if claims.user_id is None:
        raise Refusal(status.HTTP_401_UNAUTHORIZED, "an enrolled board renews its token with "
                      "its board secret, not here")
    start = claims.session_start or now
    if now - start >= timedelta(hours=settings.session_hours) - timedelta(minutes=1):
        raise Refusal(status.HTTP_401_UNAUTHORIZED, "this login has lasted {hours} hours, the "
                      "longest a personal login may; log in again (an admin can enrol the "
                      "tablet as a board that stays logged in all shift)",
                      hours=settings.session_hours, headers={"WWW-Authenticate": "Bearer"})
    renewed = security.create_token(settings, secret, claims.user_id, claims.version,
                                    user.username, user.role, now=now, session_start=start)
    expires = security.decode_token(secret, renewed, now).expires_at
    return Token(access_token=renewed, expires_in=int((expires - now).total_seconds()),
                 username=user.username, role=user.role, sites=user.sites)


@router.get("/me", response_model=User, responses=responses(401, 503))
def me(user: CurrentUser) -> User:
    """The logged-in user (or enrolled board), their role and sites."""
    return user
