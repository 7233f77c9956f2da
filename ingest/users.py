"""Accounts in the ``users`` table: insert, look up, list (the lockout's rows are
``ingest.login_locks``).

The rules about accounts (valid usernames, roles, password length, hashing, how many
failures lock a client) belong to ``api.users`` and ``api.lockout``; this module only
reads and writes rows. Usernames arrive here already normalised (lower-case).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

__all__ = [
    "AccountRecord",
    "AccountSummary",
    "clear_failed_logins",
    "clear_totp",
    "delete_account",
    "get_account",
    "get_account_by_id",
    "insert_account",
    "list_accounts",
    "set_disabled",
    "set_password_hash",
    "set_totp_pending",
    "token_versions",
    "use_totp_step",
]


@dataclass(frozen=True, slots=True)
class AccountSummary:
    username: str
    role: str
    sites: list[str]
    disabled: bool
    #: clients (tablets, addresses) locked out of the account at the time asked
    locked_clients: int = 0
    #: made by a single sign-on login (no password of its own)
    sso: bool = False
    #: has a confirmed second factor (TOTP)
    totp: bool = False


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """``id`` is never reused and ``token_version`` rises (by a trigger) whenever the
    password, role, sites or disabled flag change: a token carries both."""

    id: int
    token_version: int
    username: str
    role: str
    sites: list[str]
    #: None for a single sign-on account (``sso_subject`` set): no password logs it in
    password_hash: str | None
    failed_logins: int
    locked_until: datetime | None
    disabled: bool
    sso_subject: str | None = None
    #: a local admin's second factor (``api.totp``); confirmed once a first code matched
    totp_secret: str | None = None
    totp_confirmed: bool = False
    totp_last_step: int | None = None


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


_ACCOUNT = ("SELECT id, token_version, username, role, sites, password_hash, failed_logins, "
            "locked_until, disabled, sso_subject, totp_secret, totp_confirmed, totp_last_step "
            "FROM users ")


def get_account(conn: psycopg.Connection, username: str) -> AccountRecord | None:
    row = conn.execute(_ACCOUNT + "WHERE username = %s", (username,)).fetchone()
    return None if row is None else AccountRecord(*row)


def get_account_by_id(conn: psycopg.Connection, account_id: int) -> AccountRecord | None:
    row = conn.execute(_ACCOUNT + "WHERE id = %s", (account_id,)).fetchone()
    return None if row is None else AccountRecord(*row)


def token_versions(conn: psycopg.Connection) -> dict[int, int]:
    """``{id: token_version}`` of every enabled account: what a live stream's token must
    still match."""
    rows = conn.execute("SELECT id, token_version FROM users WHERE NOT disabled").fetchall()
    return {row[0]: row[1] for row in rows}


def set_password_hash(conn: psycopg.Connection, username: str, password_hash: str) -> bool:
    """A new password (and no lock); False when there is no such account."""
    row = conn.execute("UPDATE users SET password_hash = %s, failed_logins = 0, "
                       "locked_until = NULL WHERE username = %s RETURNING id",
                       (password_hash, username)).fetchone()
    return row is not None


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool) -> bool:
    """Disable or enable; False when there is no such account."""
    row = conn.execute("UPDATE users SET disabled = %s WHERE username = %s RETURNING id",
                       (disabled, username)).fetchone()
    return row is not None


def delete_account(conn: psycopg.Connection, username: str) -> bool:
    """Remove the account (its audit entries stay); False when there is no such account."""
    row = conn.execute("DELETE FROM users WHERE username = %s RETURNING id",
                       (username,)).fetchone()
    return row is not None


def list_accounts(conn: psycopg.Connection, now: datetime) -> list[AccountSummary]:
    rows = conn.execute("SELECT username, role, sites, disabled, (SELECT count(*) FROM "
                        "login_locks l WHERE l.user_id = users.id AND l.locked_until > %s), "
                        "sso_subject IS NOT NULL, totp_confirmed "
                        "FROM users ORDER BY username", (now,)).fetchall()
    return [AccountSummary(*row) for row in rows]


def clear_failed_logins(conn: psycopg.Connection, username: str) -> None:
    """After a successful login: no failures counted, no lock."""
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = %s",
                 (username,))


def is_disabled(conn: psycopg.Connection, username: str) -> bool | None:
    """Whether the account is disabled; None when there is no such account."""
    row = conn.execute("SELECT disabled FROM users WHERE username = %s", (username,)).fetchone()
    return None if row is None else bool(row[0])


def set_totp_pending(conn: psycopg.Connection, account_id: int, secret: str) -> None:
    """A new second-factor secret waiting for its first code (replaces an unconfirmed one;
    the caller refuses when one is confirmed)."""
    conn.execute("UPDATE users SET totp_secret = %s, totp_confirmed = false, "
                 "totp_last_step = NULL WHERE id = %s AND NOT totp_confirmed",
                 (secret, account_id))


def use_totp_step(conn: psycopg.Connection, account_id: int, step: int) -> bool:
    """Accept a code of time step ``step`` (and confirm a pending secret with it); False
    when a code of that step or a later one was accepted already (a replay)."""
    row = conn.execute("UPDATE users SET totp_last_step = %s, totp_confirmed = true "
                       "WHERE id = %s AND totp_secret IS NOT NULL AND (totp_last_step IS NULL "
                       "OR totp_last_step < %s) RETURNING id",
                       (step, account_id, step)).fetchone()
    return row is not None


def clear_totp(conn: psycopg.Connection, username: str) -> bool | None:
    """Remove the account's second factor; whether it had one (None: no such account)."""
    row = conn.execute("UPDATE users u SET totp_secret = NULL, totp_confirmed = false, "
                       "totp_last_step = NULL FROM users old WHERE u.id = old.id AND "
                       "u.username = %s RETURNING old.totp_confirmed", (username,)).fetchone()
    return None if row is None else bool(row[0])
