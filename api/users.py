"""Staff, admin and evaluator accounts in the ``users`` table.

Used by the API (login, ``/api/v1/users``) and by ``nattero user add``. Passwords are
stored only as Argon2 hashes. Usernames are case-insensitive (stored lower-case).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

from api import security

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,62}$")
MIN_PASSWORD = 10


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    EVALUATOR = "evaluator"


class UserError(ValueError):
    """A user request that cannot be carried out; the message says what to change."""


class User(BaseModel):
    """The caller. ``visible_sites`` is None for an admin: every site."""

    username: str
    role: Role
    sites: list[str]

    @property
    def visible_sites(self) -> list[str] | None:
        return None if self.role == Role.ADMIN else list(self.sites)

    def can_see(self, site: str) -> bool:
        return self.role == Role.ADMIN or site in self.sites


class StoredUser(User):
    password_hash: str
    failed_logins: int
    locked_until: datetime | None
    disabled: bool


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD} characters "
                        "(a few unrelated words is easiest to remember)")


def create_user(conn: psycopg.Connection, username: str, password: str, role: Role | str,
                sites: list[str]) -> User:
    """Add an account; staff need at least one existing site. Caller's transaction."""
    name = normalise_username(username)
    if not USERNAME.match(name):
        raise UserError(f"username {username!r} must be 2-63 characters: letters, digits, "
                        "'.', '_', '@' or '-', starting with a letter or digit")
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"role {role!r} is not one of admin, staff, evaluator") from None
    check_password(password)
    wanted = sorted(set(sites))
    if role == Role.STAFF and not wanted:
        raise UserError("a staff account needs at least one site: add --site SITE")
    if wanted:
        rows = conn.execute("SELECT id FROM sites WHERE id = ANY(%s)", (wanted,)).fetchall()
        missing = sorted(set(wanted) - {row[0] for row in rows})
        if missing:
            raise UserError(f"site(s) {', '.join(missing)} do not exist; add them with: "
                            "nattero site add SITE --name NAME")
    try:
        with conn.transaction():
            conn.execute("INSERT INTO users (username, password_hash, role, sites) "
                         "VALUES (%s, %s, %s, %s)",
                         (name, security.hash_password(password), role.value, wanted))
    except psycopg.errors.UniqueViolation:
        raise UserError(f"user {name!r} exists already") from None
    return User(username=name, role=role, sites=wanted)


def get_user(conn: psycopg.Connection, username: str) -> StoredUser | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT username, role, sites, password_hash, failed_logins, "
                          "locked_until, disabled FROM users WHERE username = %s",
                          (normalise_username(username),)).fetchone()
    return None if row is None else StoredUser.model_validate(row)


def list_users(conn: psycopg.Connection) -> list[User]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT username, role, sites FROM users ORDER BY username").fetchall()
    return [User.model_validate(row) for row in rows]


def record_failed_login(conn: psycopg.Connection, username: str,
                        now: datetime | None = None) -> datetime | None:
    """Count a wrong password; returns the lock's end if this failure locked the account."""
    at = now or datetime.now(UTC)
    row = conn.execute(
        "UPDATE users SET failed_logins = failed_logins + 1, "
        "locked_until = CASE WHEN failed_logins + 1 >= %s THEN %s ELSE locked_until END "
        "WHERE username = %s RETURNING failed_logins, locked_until",
        (security.MAX_FAILURES, at + timedelta(minutes=security.LOCK_MINUTES),
         normalise_username(username))).fetchone()
    if row is None or row[0] < security.MAX_FAILURES:
        return None
    # The lock starts a fresh count: after it expires the user gets MAX_FAILURES tries again.
    conn.execute("UPDATE users SET failed_logins = 0 WHERE username = %s",
                 (normalise_username(username),))
    locked: datetime | None = row[1]
    return locked


def record_successful_login(conn: psycopg.Connection, username: str) -> None:
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = %s",
                 (normalise_username(username),))
