"""Accounts in the ``users`` table: insert, look up, list, and the login-failure counter.

The rules about accounts (valid usernames, roles, password length, hashing, how many
failures lock an account) belong to ``api.users``; this module only reads and writes rows.
Usernames arrive here already normalised (lower-case).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

__all__ = [
    "AccountRecord", "AccountSummary", "FailedLogin", "clear_failed_logins",
    "count_failed_login", "get_account", "insert_account", "list_accounts",
    "reset_failed_login_count",
]


@dataclass(frozen=True, slots=True)
class AccountSummary:
    username: str
    role: str
    sites: list[str]


@dataclass(frozen=True, slots=True)
class AccountRecord:
    username: str
    role: str
    sites: list[str]
    password_hash: str
    failed_logins: int
    locked_until: datetime | None
    disabled: bool


@dataclass(frozen=True, slots=True)
class FailedLogin:
    """The counter after a wrong password, and the lock's end (old or new, or None)."""

    failed_logins: int
    locked_until: datetime | None


def insert_account(conn: psycopg.Connection, username: str, password_hash: str, role: str,
                   sites: list[str]) -> bool:
    """Add an account; False (and nothing written) when the username is taken."""
    try:
        with conn.transaction():
            conn.execute("INSERT INTO users (username, password_hash, role, sites) "
                         "VALUES (%s, %s, %s, %s)", (username, password_hash, role, sites))
    except psycopg.errors.UniqueViolation:
        return False
    return True


def get_account(conn: psycopg.Connection, username: str) -> AccountRecord | None:
    row = conn.execute("SELECT username, role, sites, password_hash, failed_logins, "
                       "locked_until, disabled FROM users WHERE username = %s",
                       (username,)).fetchone()
    return None if row is None else AccountRecord(*row)


def list_accounts(conn: psycopg.Connection) -> list[AccountSummary]:
    rows = conn.execute("SELECT username, role, sites FROM users ORDER BY username").fetchall()
    return [AccountSummary(*row) for row in rows]


def count_failed_login(conn: psycopg.Connection, username: str, lock_after: int,
                       lock_until: datetime) -> FailedLogin | None:
    """Add one to the failure counter; lock until ``lock_until`` when it reaches
    ``lock_after``. None when there is no such account."""
    row = conn.execute(
        "UPDATE users SET failed_logins = failed_logins + 1, "
        "locked_until = CASE WHEN failed_logins + 1 >= %s THEN %s ELSE locked_until END "
        "WHERE username = %s RETURNING failed_logins, locked_until",
        (lock_after, lock_until, username)).fetchone()
    return None if row is None else FailedLogin(row[0], row[1])


def reset_failed_login_count(conn: psycopg.Connection, username: str) -> None:
    """Start a fresh count (the lock, if any, stays)."""
    conn.execute("UPDATE users SET failed_logins = 0 WHERE username = %s", (username,))


def clear_failed_logins(conn: psycopg.Connection, username: str) -> None:
    """After a successful login: no failures counted, no lock."""
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = %s",
                 (username,))
