"""Passwords (Argon2), bearer tokens (JWT, HS256) and brute-force protection.

A token names its account by id (``uid``, never reused) and the account's
``token_version`` (``ver``) when it was issued; ``api.deps`` refuses it once either no
longer matches the stored account, so a password change, disable, role change or delete
ends every older token at once. It is signed with the installation's secret
(``ingest.installation.signing_secret``), never a constant of the source.

Two brakes on guessing: an account is locked for ``LOCK_MINUTES`` after ``MAX_FAILURES``
wrong passwords in a row (kept in ``users``, so it survives restarts and holds across
processes), and each client address may fail at most ``IP_MAX_FAILURES`` times per
``IP_WINDOW_S`` in this process (kept in memory; it stops one address trying many names).
"""

from __future__ import annotations

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

MAX_FAILURES = 5
LOCK_MINUTES = 5
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
    user_id: int
    version: int
    username: str
    role: str
    expires_at: datetime


def create_token(settings: Settings, secret: str, user_id: int, version: int, username: str,
                 role: str, now: datetime | None = None, minutes: int | None = None) -> str:
    """A token for the account ``user_id`` at ``version``; ``secret`` is the installation's
    signing secret."""
    issued = now or datetime.now(UTC)
    lifetime = timedelta(minutes=settings.token_minutes if minutes is None else minutes)
    claims: dict[str, Any] = {"sub": username, "uid": user_id, "ver": version, "role": role,
                              "iat": issued, "exp": issued + lifetime}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> TokenClaims:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["sub", "uid", "ver", "exp"]})
        user_id, version = claims["uid"], claims["ver"]
        if not isinstance(user_id, int) or not isinstance(version, int):
            raise jwt.InvalidTokenError("uid and ver must be integers")
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired; log in again") from None
    except jwt.InvalidTokenError:
        raise TokenError("the token is not valid; log in again") from None
    return TokenClaims(user_id=user_id, version=version, username=str(claims["sub"]),
                       role=str(claims.get("role", "")),
                       expires_at=datetime.fromtimestamp(claims["exp"], UTC))


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
