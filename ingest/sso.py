"""Single sign-on rows: logins on their way through the provider (``oidc_logins``), the
one-time codes that hand a finished login to the page (``sso_handoffs``), and the
accounts bound to a provider's subject (``users.sso_issuer``/``sso_subject``).

The rules (what a login must prove, how groups become a role, how long a code lives)
belong to ``api.oidc``; this module only reads and writes rows. Times come from the
caller's clock. Every ``take_*`` deletes what it returns: a state or a code is used once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

__all__ = ["PendingLogin", "SsoAccount", "add_handoff", "add_login", "bind_account",
           "find_account", "take_handoff", "take_login", "update_account"]


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    #: a hash of the cookie the login started with: the callback must come from that browser
    browser: str
    next_path: str
    created_at: datetime


def add_login(conn: psycopg.Connection, login: PendingLogin, forget_before: datetime) -> None:
    """Record a login that starts now; logins older than ``forget_before`` are dropped."""
    conn.execute("DELETE FROM oidc_logins WHERE created_at < %s", (forget_before,))
    conn.execute("INSERT INTO oidc_logins (state, nonce, code_verifier, browser, next_path, "
                 "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                 (login.state, login.nonce, login.code_verifier, login.browser,
                  login.next_path, login.created_at))


def take_login(conn: psycopg.Connection, state: str) -> PendingLogin | None:
    """The login of ``state``, removed (a second callback with it finds nothing)."""
    row = conn.execute("DELETE FROM oidc_logins WHERE state = %s RETURNING state, nonce, "
                       "code_verifier, browser, next_path, created_at", (state,)).fetchone()
    return None if row is None else PendingLogin(*row)


@dataclass(frozen=True, slots=True)
class SsoAccount:
    id: int
    username: str
    disabled: bool


def find_account(conn: psycopg.Connection, issuer: str, subject: str) -> SsoAccount | None:
    row = conn.execute("SELECT id, username, disabled FROM users WHERE sso_issuer = %s AND "
                       "sso_subject = %s", (issuer, subject)).fetchone()
    return None if row is None else SsoAccount(*row)


def bind_account(conn: psycopg.Connection, username: str, issuer: str, subject: str,
                 role: str, sites: list[str]) -> SsoAccount | None:
    """A new account bound to the provider's subject, without a password; None when the
    username is taken (by a local account, or another subject)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO users (username, password_hash, role, sites, sso_issuer, "
                "sso_subject) VALUES (%s, NULL, %s, %s, %s, %s) RETURNING id, username, "
                "disabled", (username, role, sites, issuer, subject)).fetchone()
    except psycopg.errors.UniqueViolation:
        return None
    assert row is not None
    return SsoAccount(*row)


def update_account(conn: psycopg.Connection, account_id: int, username: str, role: str,
                   sites: list[str]) -> bool:
    """The directory's current name, role and sites (a change ends the account's older
    tokens, by the users trigger); False when the new name is another account's."""
    try:
        with conn.transaction():
            conn.execute("UPDATE users SET username = %s, role = %s, sites = %s, "
                         "failed_logins = 0, locked_until = NULL WHERE id = %s",
                         (username, role, sites, account_id))
    except psycopg.errors.UniqueViolation:
        return False
    return True


def add_handoff(conn: psycopg.Connection, code_hash: str, user_id: int, now: datetime,
                forget_before: datetime) -> None:
    conn.execute("DELETE FROM sso_handoffs WHERE created_at < %s", (forget_before,))
    conn.execute("INSERT INTO sso_handoffs (code_hash, user_id, created_at) "
                 "VALUES (%s, %s, %s)", (code_hash, user_id, now))


def take_handoff(conn: psycopg.Connection, code_hash: str,
                 not_before: datetime) -> int | None:
    """The account a handoff code names, if it was made after ``not_before``; removed."""
    row = conn.execute("DELETE FROM sso_handoffs WHERE code_hash = %s RETURNING user_id, "
                       "created_at", (code_hash,)).fetchone()
    if row is None or row[1] < not_before:
        return None
    return int(row[0])
