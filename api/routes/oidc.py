"""Single sign-on endpoints (``api.oidc``), under ``/api/v1/auth/oidc``:

- ``GET /config``: whether the login page shows "Log ind med kommunens konto".
- ``GET /login?next=/path``: to the provider's login, with a cookie that ties the
  callback to this browser.
- ``GET /callback``: the provider's answer. The account (bound to the provider's subject,
  no password) is made or brought up to date with the role and sites of its groups, the
  login audited, and the browser sent to the login page with a one-time code in the URL
  fragment (never in a query string, so never in a log). Refusals go to the login page
  too, with a reason it shows in Danish.
- ``POST /token``: the page's one-time code for the bearer token, in the shape of
  ``POST /api/v1/auth/token``.

A local account is never taken over by a directory user of the same name: that is the
break-glass login when the directory is down.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Cookie, Query, Request, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api import oidc, security
from api.deps import ConnDep, NowDep, SecretDep, SettingsDep
from api.errors import Refusal, responses
from api.oidc import Identity, Refused, SsoRefused
from api.routes.auth import Token
from api.users import Role, get_user_by_id
from core.settings import Settings
from ingest import sso
from ingest.audit import audit

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth/oidc", tags=["auth"])

COOKIE = "nattero_sso"
COOKIE_PATH = "/api/v1/auth/oidc/"
#: how long the login page has to exchange its one-time code
HANDOFF_MINUTES = 2
LOGIN_PAGE = "/login.html"


class SsoConfig(BaseModel):
    enabled: bool


class Handoff(BaseModel):
    code: str = Field(min_length=20, max_length=100)


def _redirect_url(request: Request, settings: Settings) -> str:
    return settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _safe_next(next_path: str | None) -> str:
    # Only ever a path on this server: never an open redirect.
    if next_path and next_path.startswith("/") and not next_path.startswith("//") \
            and "\\" not in next_path:
        return next_path
    return "/"


def _to_login_page(fragment: str, next_path: str = "/",
                   forget_browser: bool = True) -> RedirectResponse:
    response = RedirectResponse(f"{LOGIN_PAGE}?next={quote(next_path, safe='/')}#{fragment}",
                                status.HTTP_303_SEE_OTHER)
    if forget_browser:
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _not_configured() -> Refusal:
    return Refusal(status.HTTP_404_NOT_FOUND, "single sign-on is not set up on this "
                   "installation; log in with a username and password")


@router.get("/config", response_model=SsoConfig)
def config(settings: SettingsDep) -> SsoConfig:
    """Whether single sign-on is set up (the login page shows its button only then)."""
    return SsoConfig(enabled=settings.single_sign_on)


@router.get("/login", responses=responses(404, 422, 503), status_code=303,
            response_class=RedirectResponse)
async def login(request: Request, conn: ConnDep, settings: SettingsDep, now: NowDep,
                next_path: Annotated[str | None, Query(alias="next", max_length=500)] = None
                ) -> RedirectResponse:
    """To the provider's login page; it comes back to ``/callback``."""
    if not settings.single_sign_on:
        raise _not_configured()
    try:
        url, pending, cookie = await run_in_threadpool(
            oidc.start, settings, _redirect_url(request, settings), _safe_next(next_path), now)
    except SsoRefused as exc:
        log.error("single sign-on cannot start: %s", exc)
        return _to_login_page(f"sso-error={exc.reason.value}")
    with conn.transaction():
        sso.add_login(conn, pending, now - timedelta(minutes=oidc.LOGIN_MINUTES))
    response = RedirectResponse(url, status.HTTP_303_SEE_OTHER)
    response.set_cookie(COOKIE, cookie, max_age=oidc.LOGIN_MINUTES * 60, path=COOKIE_PATH,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


def _account(conn: psycopg.Connection, identity: Identity, role: Role,
             sites: list[str]) -> int:
    """The account of ``identity``, made or brought up to date; its id."""
    account = sso.find_account(conn, identity.issuer, identity.subject)
    if account is None:
        account = sso.bind_account(conn, identity.username, identity.issuer,
                                   identity.subject, role.value, sites)
        if account is None:
            raise SsoRefused(Refused.TAKEN, f"the username {identity.username!r} belongs to a "
                             "local account; rename or delete it to let the directory's user in")
        return account.id
    if account.disabled:
        raise SsoRefused(Refused.DISABLED, f"the account {account.username!r} is disabled")
    if not sso.update_account(conn, account.id, identity.username, role.value, sites):
        raise SsoRefused(Refused.TAKEN, f"the username {identity.username!r} belongs to "
                         "another account")
    return account.id


@router.get("/callback", name="oidc_callback", status_code=303,
            response_class=RedirectResponse, responses=responses(404, 422, 503))
async def callback(request: Request, conn: ConnDep, settings: SettingsDep, now: NowDep,
                   state: Annotated[str, Query(max_length=200)] = "",
                   code: Annotated[str, Query(max_length=2000)] = "",
                   error: Annotated[str | None, Query(max_length=200)] = None,
                   iss: Annotated[str | None, Query(max_length=500)] = None,
                   cookie: Annotated[str | None, Cookie(alias=COOKIE)] = None
                   ) -> RedirectResponse:
    """The provider's answer: logs the user in, or sends the login page the reason."""
    if not settings.single_sign_on:
        raise _not_configured()
    address = request.client.host if request.client else "unknown"
    next_path = "/"
    identity: Identity | None = None
    taken = None
    try:
        with conn.transaction():
            taken = sso.take_login(conn, state)
        pending = oidc.check_pending(taken, cookie, now)
        next_path = pending.next_path
        if error is not None or not code:
            raise SsoRefused(Refused.PROVIDER, f"the provider answered {error or 'no code'}")
        if iss is not None and iss != settings.oidc_issuer:
            # RFC 9207: an answer from another provider than the one asked (mix-up attack)
            raise SsoRefused(Refused.PROVIDER, f"the answer names issuer {iss!r}")
        identity = await run_in_threadpool(oidc.finish, settings, pending, code,
                                           _redirect_url(request, settings))
        role, sites = oidc.assignment(settings, identity.groups)
        handoff = secrets.token_urlsafe(32)
        with conn.transaction():
            user_id = _account(conn, identity, role, sites)
            sso.add_handoff(conn, _hash(handoff), user_id, now,
                            now - timedelta(minutes=HANDOFF_MINUTES))
            audit(conn, identity.username, "login.sso",
                  detail={"address": address, "role": role.value, "sites": sites})
    except SsoRefused as exc:
        log.warning("single sign-on refused (%s): %s", exc.reason.value, exc)
        with conn.transaction():
            audit(conn, identity.username if identity else "-", "login.sso_refused",
                  detail={"address": address, "reason": exc.reason.value,
                          "why": str(exc)[:300]})
        # A state that names no login (forged) leaves the browser's own login in progress.
        return _to_login_page(f"sso-error={exc.reason.value}", next_path,
                              forget_browser=taken is not None)
    return _to_login_page(f"sso={handoff}", next_path)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@router.post("/token", response_model=Token,
             responses=responses(400, 401, 404, 422, 503))
def token(body: Handoff, conn: ConnDep, settings: SettingsDep, secret: SecretDep,
          now: NowDep) -> Token:
    """The login page's one-time code (from the callback) for a bearer token."""
    if not settings.single_sign_on:
        raise _not_configured()
    with conn.transaction():
        user_id = sso.take_handoff(conn, _hash(body.code),
                                   now - timedelta(minutes=HANDOFF_MINUTES))
    stored = get_user_by_id(conn, user_id) if user_id is not None else None
    if stored is None or stored.disabled:
        raise Refusal(status.HTTP_401_UNAUTHORIZED, "this single sign-on login has expired "
                      "or was used already; log in again",
                      headers={"WWW-Authenticate": "Bearer"})
    access = security.create_token(settings, secret, stored.id, stored.token_version,
                                   stored.username, stored.role, now=now)
    return Token(access_token=access, expires_in=settings.token_minutes * 60,
                 username=stored.username, role=stored.role, sites=stored.sites)
