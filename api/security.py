"""Passwords (Argon2), bearer tokens (JWT, HS256) and brute-force protection.

A token names its account by id (``uid``, never reused) and the account's
``token_version`` (``ver``) when it was issued; ``api.deps`` refuses it once either no
longer matches the stored account, so a password change, disable, role change or delete
ends every older token at once. It is signed with the installation's secret
(``ingest.installation.signing_secret``), never a constant of the source.

An enrolled board's token names the board instead (``bid``), and is refused once the
board is revoked. Expiry is checked against the caller's clock (``api.clock``), so a test
can move time instead of sleeping.

Two brakes on guessing: wrong passwords lock one (account, client) pair with growing
delays (``api.lockout``: a stranger's guesses never lock the night shift's tablet), and
each client address may fail at most ``IP_MAX_FAILURES`` times per ``IP_WINDOW_S`` in
this process (kept in memory; it stops one address trying many names).

A *login key* (``client_key``) is what a successful login hands the client: it names the
client for the lockout (an HMAC of the account and a random nonce with the signing secret,
so nobody can make one for an account they cannot log in to).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import NatteroError
from core.settings import Settings

IP_MAX_FAILURES = 20
IP_WINDOW_S = 300.0
ALGORITHM = "HS256"

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both cases cost the same time."""
    return _hasher.hash("no-such-user-placeholder")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), password)
        return matched and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class TokenError(NatteroError):
    """A bearer token that is missing, malformed, forged or expired; the message says which."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A personal login's token (``user_id`` and ``version`` set) or an enrolled board's
    (``board_id`` set, ``user_id`` None)."""

    user_id: int | None
    version: int
    username: str
    role: str
    expires_at: datetime
    board_id: int | None = None
    #: when the login (or pairing) behind this token happened; renewals keep it
    session_start: datetime | None = None


def create_token(settings: Settings, secret: str, user_id: int, version: int, username: str,
                 role: str, now: datetime | None = None, minutes: int | None = None,
                 session_start: datetime | None = None) -> str:
    """A token for the account ``user_id`` at ``version``; ``secret`` is the installation's
    signing secret. ``session_start``: the login a renewal continues (default: now); the
    token never outlives ``session_hours`` after it."""
    issued = now or datetime.now(UTC)
    start = session_start or issued
    lifetime = timedelta(minutes=settings.token_minutes if minutes is None else minutes)
    expires = min(issued + lifetime, start + timedelta(hours=settings.session_hours))
    claims: dict[str, Any] = {"sub": username, "uid": user_id, "ver": version, "role": role,
                              "iat": issued, "exp": expires, "sat": int(start.timestamp())}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def create_board_token(settings: Settings, secret: str, board_id: int, now: datetime) -> str:
    """A short token for the enrolled board ``board_id``; the board renews it with its
    board secret (``POST /api/v1/auth/board/refresh``) long before it runs out."""
    # ``jti``: two renewals within one second still give two tokens (each its own).
    claims: dict[str, Any] = {"sub": f"board-{board_id}", "bid": board_id, "ver": 0,
                              "role": "staff", "iat": now, "jti": secrets.token_urlsafe(9),
                              "exp": now + timedelta(minutes=settings.board_token_minutes)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str, now: datetime | None = None) -> TokenClaims:
    """The claims of a token signed with ``secret`` that has not expired at ``now``."""
    try:
        # Expiry is checked below against the caller's clock, not PyJWT's time.time().
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["sub", "ver", "exp"], "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
        user_id, version, board_id = claims.get("uid"), claims["ver"], claims.get("bid")
        if not isinstance(version, int) or not isinstance(claims["exp"], int | float):
            raise jwt.InvalidTokenError("ver and exp must be numbers")
        if (user_id is None) == (board_id is None):
            raise jwt.InvalidTokenError("a token names an account or a board, not both")
        if not isinstance(user_id or board_id, int):
            raise jwt.InvalidTokenError("uid or bid must be an integer")
    except jwt.InvalidTokenError:
        raise TokenError("the token is not valid; log in again") from None
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    if expires_at <= (now or datetime.now(UTC)):
        raise TokenError("the token has expired; log in again")
    started = claims.get("sat", claims.get("iat"))
    return TokenClaims(user_id=user_id, version=version, username=str(claims["sub"]),
                       role=str(claims.get("role", "")), expires_at=expires_at,
                       board_id=board_id,
                       session_start=datetime.fromtimestamp(started, UTC)
                       if isinstance(started, int | float) else None)


def _key_mac(secret: str, user_id: int, nonce: str) -> str:
    mac = hmac.new(secret.encode(), f"login-key:{user_id}:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode()


def new_login_key(secret: str, user_id: int) -> str:
    """A login key for a client that has just logged in to ``user_id``."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_key_mac(secret, user_id, nonce)}"


def login_key_client(secret: str, user_id: int, key: str | None) -> str | None:
    """The client a login key names (its nonce), if it is a genuine key of ``user_id``."""
    if not key or key.count(".") != 1:
        return None
    nonce, mac = key.split(".")
    if not nonce or not hmac.compare_digest(mac, _key_mac(secret, user_id, nonce)):
        return None
    return nonce


class AddressLimiter:
    """Failed logins per client address in a sliding window (in memory, thread-safe)."""

    def __init__(self, max_failures: int = IP_MAX_FAILURES, window_s: float = IP_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_failures
        self._window = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str) -> deque[float]:
        now = self._clock()
        seen = self._failures.setdefault(address, deque())
        while seen and now - seen[0] > self._window:
            seen.popleft()
        return seen

    def retry_after(self, address: str) -> float | None:
        """Seconds until this address may try again, or None if it may try now."""
        with self._lock:
            seen = self._recent(address)
            if len(seen) < self._max:
                return None
            return max(1.0, self._window - (self._clock() - seen[0]))

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(self._clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
