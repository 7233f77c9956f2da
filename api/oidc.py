"""Single sign-on with the municipality's directory (Entra ID, AD FS): OpenID Connect's
authorization code flow with PKCE, state and nonce, through Authlib's client.

A login starts (``start``) with a random state, nonce and PKCE verifier kept in the
database (``ingest.sso``) together with a hash of a random cookie of the browser it
started in; the provider's answer (``finish``) must bring that state back from that
browser, once, within ``LOGIN_MINUTES``. The ID token is checked against the keys the
provider publishes (its discovery document's ``jwks_uri``): signature, issuer, audience,
expiry and our nonce. The directory's groups become a role and sites (``assignment``); a
user whose groups map to no role is refused.

Never trust anything from the browser here but the state and the code: the role, sites
and username come only from the signed ID token (or from the provider's userinfo answer
to our own access token).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api.users import USERNAME, Role, normalise_username
from core.errors import NatteroError
from core.settings import Settings
from ingest.sso import PendingLogin

__all__ = ["LOGIN_MINUTES", "Identity", "Refused", "SsoRefused", "assignment", "browser_hash",
           "finish", "start"]

#: how long a browser may spend at the provider's login before its state is forgotten
LOGIN_MINUTES = 10
HTTP_TIMEOUT_S = 10
#: leeway for the provider's clock in the ID token's times
CLOCK_SKEW_S = 120
#: signatures accepted on an ID token: asymmetric only (never "none", never the secret)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
#: the strongest role wins when a user's groups map to several
_ROLE_ORDER = (Role.ADMIN, Role.STAFF, Role.EVALUATOR)


class Refused(StrEnum):
    """Why a single sign-on login was refused; the login page shows each in Danish."""

    NO_ROLE = "no_role"
    NO_SITES = "no_sites"
    DISABLED = "disabled"
    TAKEN = "taken"
    STATE = "state"
    PROVIDER = "provider"
    CLAIMS = "claims"


class SsoRefused(NatteroError):
    """A login the provider or Nattero did not let through; ``reason`` for the page, the
    message for the log and the audit."""

    def __init__(self, reason: Refused, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says logged in: its ``issuer`` and ``subject`` (stable), the
    username and the groups from the ID token (or userinfo)."""

    issuer: str
    subject: str
    username: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]


def _get_json(url: str, what: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_S, **kwargs)
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SsoRefused(Refused.PROVIDER, f"cannot read the provider's {what} at {url}: "
                         f"{exc}") from exc
    if not isinstance(body, dict):
        raise SsoRefused(Refused.PROVIDER, f"the provider's {what} at {url} is not an object")
    return body


def _discover(settings: Settings) -> _Provider:
    # Read at every login (a few a night): a rotated key or moved endpoint is seen at once.
    issuer = str(settings.oidc_issuer)
    document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration",
                         "discovery document")
    if document.get("issuer") != issuer:
        raise SsoRefused(Refused.PROVIDER, f"the discovery document names issuer "
                         f"{document.get('issuer')!r}, not NATTERO_OIDC_ISSUER {issuer!r}")
    try:
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        return _Provider(issuer=issuer,
                         authorization_endpoint=str(document["authorization_endpoint"]),
                         token_endpoint=str(document["token_endpoint"]),
                         jwks_uri=str(document["jwks_uri"]),
                         userinfo_endpoint=document.get("userinfo_endpoint"),
                         algorithms=tuple(a for a in offered if a in ALGORITHMS))
    except KeyError as exc:
        raise SsoRefused(Refused.PROVIDER, f"the discovery document has no {exc}") from None


def _client(settings: Settings, redirect_url: str) -> OAuth2Session:
    return OAuth2Session(settings.oidc_client_id, settings.oidc_client_secret,
                         scope=settings.oidc_scopes, redirect_uri=redirect_url,
                         code_challenge_method="S256", default_timeout=HTTP_TIMEOUT_S)


def browser_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def start(settings: Settings, redirect_url: str, next_path: str,
          now: datetime) -> tuple[str, PendingLogin, str]:
    """The provider's login URL, the login to keep, and the cookie value to give the
    browser (the callback must bring it back)."""
    provider = _discover(settings)
    cookie = secrets.token_urlsafe(32)
    login = PendingLogin(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                         code_verifier=secrets.token_urlsafe(48),
                         browser=browser_hash(cookie), next_path=next_path, created_at=now)
    url, _ = _client(settings, redirect_url).create_authorization_url(
        provider.authorization_endpoint, state=login.state,
        code_verifier=login.code_verifier, nonce=login.nonce)
    return str(url), login, cookie


def check_pending(login: PendingLogin | None, cookie: str | None,
                  now: datetime) -> PendingLogin:
    """The login the callback's state names, if it started in this browser, not too long
    ago; refuses a forged, replayed or stale state."""
    if login is None:
        raise SsoRefused(Refused.STATE, "the callback's state is unknown or used already "
                         "(forged, replayed, or the login was started elsewhere)")
    if cookie is None or not secrets.compare_digest(login.browser, browser_hash(cookie)):
        raise SsoRefused(Refused.STATE, "the callback comes from another browser than the "
                         "one that started the login")
    if now - login.created_at > timedelta(minutes=LOGIN_MINUTES):
        raise SsoRefused(Refused.STATE, f"the login took more than {LOGIN_MINUTES} minutes")
    return login


def finish(settings: Settings, login: PendingLogin, code: str,
           redirect_url: str) -> Identity:
    """Exchange the code (with the PKCE verifier) and check the ID token; who logged in."""
    provider = _discover(settings)
    client = _client(settings, redirect_url)
    try:
        token = client.fetch_token(provider.token_endpoint, code=code,
                                   code_verifier=login.code_verifier,
                                   grant_type="authorization_code")
    except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
        raise SsoRefused(Refused.PROVIDER, f"the provider refused the code: {exc}") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SsoRefused(Refused.PROVIDER, "the provider's answer has no ID token (is "
                         "'openid' among NATTERO_OIDC_SCOPES?)")
    keys = KeySet.import_key_set(_get_json(provider.jwks_uri, "keys"))  # type: ignore[arg-type]
    try:
        decoded = jwt.decode(id_token, keys, algorithms=list(provider.algorithms))
        jwt.JWTClaimsRegistry(
            now=int(time.time()), leeway=CLOCK_SKEW_S,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": str(settings.oidc_client_id)},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": login.nonce},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise SsoRefused(Refused.PROVIDER, f"the ID token is not valid: {exc}") from exc
    claims = dict(decoded.claims)
    # AD FS and others put some claims only in the userinfo answer (for the code flow).
    wanted = (settings.oidc_groups_claim, settings.oidc_username_claim)
    if provider.userinfo_endpoint and any(name not in claims for name in wanted):
        info = _get_json(provider.userinfo_endpoint, "userinfo", headers={
            "Authorization": f"Bearer {token.get('access_token', '')}"})
        if info.get("sub") != claims["sub"]:
            raise SsoRefused(Refused.PROVIDER, "the userinfo answer is about another subject")
        claims = {**info, **claims}
    return _identity(settings, provider.issuer, claims)


def _identity(settings: Settings, issuer: str, claims: dict[str, Any]) -> Identity:
    raw_name = claims.get(settings.oidc_username_claim)
    username = normalise_username(raw_name) if isinstance(raw_name, str) else ""
    if not USERNAME.match(username):
        raise SsoRefused(Refused.CLAIMS, f"the claim {settings.oidc_username_claim!r} "
                         f"({raw_name!r}) is not a usable username; set "
                         "NATTERO_OIDC_USERNAME_CLAIM to one that is (e.g. upn or email)")
    groups = claims.get(settings.oidc_groups_claim, [])
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise SsoRefused(Refused.CLAIMS, f"the claim {settings.oidc_groups_claim!r} is not a "
                         "list of group names")
    return Identity(issuer=issuer, subject=str(claims["sub"]), username=username,
                    groups=tuple(groups))


def assignment(settings: Settings, groups: tuple[str, ...]) -> tuple[Role, list[str]]:
    """The role and sites the directory's groups give (``oidc_roles``, ``oidc_sites``);
    refused when no group maps to a role, or night staff would see no site."""
    roles = {Role(settings.oidc_roles[g]) for g in groups if g in settings.oidc_roles}
    if not roles:
        raise SsoRefused(Refused.NO_ROLE, "none of the user's groups is mapped to a role in "
                         "NATTERO_OIDC_ROLES")
    role = next(r for r in _ROLE_ORDER if r in roles)
    sites = sorted({site for g in groups for site in settings.oidc_sites.get(g, [])})
    if role == Role.STAFF and not sites:
        raise SsoRefused(Refused.NO_SITES, "the user's groups give the staff role but no "
                         "site; map a group to the sites in NATTERO_OIDC_SITES")
    return role, sites
