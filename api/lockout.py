"""Lockout per (account, client) with growing delays, and the admin's unlock.

A *client* is the login key a successful login handed out (``api.security``: a tablet or
browser that has logged in to this account before), else the address the login comes
from. Wrong passwords are counted per client: the first ``FREE_FAILURES`` cost nothing
more than the Argon2 check; each further one locks *that client* for twice as long as
the last (``FIRST_LOCK_S`` .. ``LONGEST_LOCK_S``), even for the right password. Other
clients of the same account are never locked by it, so a stranger at another tablet
cannot lock the night shift out, and an enrolled board (no password at all) never is.
A success from the client, an admin's unlock (``nattero user unlock``, the admin page)
or ``FORGET_AFTER`` without failures ends the count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from api import security
from ingest import login_locks

__all__ = ["FIRST_LOCK_S", "FREE_FAILURES", "LONGEST_LOCK_S", "client_of", "lock_seconds",
           "locked_until", "record_failure", "record_success", "unlock"]

FREE_FAILURES = 3
FIRST_LOCK_S = 30
LONGEST_LOCK_S = 15 * 60
FORGET_AFTER = timedelta(hours=24)


def lock_seconds(failures: int) -> int | None:
    """How long the ``failures``-th wrong password in a row locks its client (None: not)."""
    if failures <= FREE_FAILURES:
        return None
    return int(min(FIRST_LOCK_S * 2 ** (failures - FREE_FAILURES - 1), LONGEST_LOCK_S))


def client_of(secret: str, user_id: int, login_key: str | None, address: str) -> str:
    """The lockout's name for the client: its login key if genuine, else its address."""
    nonce = security.login_key_client(secret, user_id, login_key)
    return f"key:{nonce}" if nonce is not None else f"address:{address}"


def locked_until(conn: psycopg.Connection, user_id: int, client: str,
                 now: datetime) -> datetime | None:
    lock = login_locks.read_lock(conn, user_id, client)
    if lock is None or lock.locked_until is None or lock.locked_until <= now:
        return None
    return lock.locked_until


def record_failure(conn: psycopg.Connection, user_id: int, client: str,
                   now: datetime) -> datetime | None:
    """Count a wrong password from ``client``; the lock's end if this one locks it."""
    failures = login_locks.count_failure(conn, user_id, client, now, now - FORGET_AFTER)
    seconds = lock_seconds(failures)
    if seconds is None:
        return None
    until = now + timedelta(seconds=seconds)
    login_locks.lock_client(conn, user_id, client, until)
    return until


def record_success(conn: psycopg.Connection, user_id: int, client: str) -> None:
    login_locks.clear_client(conn, user_id, client)


def unlock(conn: psycopg.Connection, user_id: int) -> int:
    """Every client of the account may try again at once; how many were counted."""
    return login_locks.unlock_account(conn, user_id)
