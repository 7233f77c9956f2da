"""Staff, admin and evaluator accounts: usernames, roles, passwords and the lockout rule.
The rows are read and written through ``ingest.users``.

Used by the API (login, ``/api/v1/users``) and by ``nattero user add``. Passwords are
stored only as Argon2 hashes. Usernames are case-insensitive (stored lower-case).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

import psycopg
from pydantic import BaseModel

from api import lockout, security
from core.errors import NatteroError
from ingest import sites as stored_sites
from ingest import users as accounts

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,62}$")
MIN_PASSWORD = 10


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    EVALUATOR = "evaluator"


class UserError(NatteroError, ValueError):
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


class Account(User):
    """An account as the admin page lists it; ``locked_clients``: clients (tablets,
    addresses) locked out of it by wrong passwords right now (``api.lockout``)."""

    disabled: bool
    locked_clients: int = 0
    #: made by a single sign-on login: no password, its role and sites come from the
    #: directory's groups at each login
    sso: bool = False
    #: has a confirmed second factor (TOTP)
    totp: bool = False


class StoredUser(User):
    id: int
    token_version: int
    password_hash: str | None
    failed_logins: int
    locked_until: datetime | None
    disabled: bool
    sso_subject: str | None = None
    totp_secret: str | None = None
    totp_confirmed: bool = False
    totp_last_step: int | None = None


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
        missing = sorted(set(wanted) - stored_sites.existing_sites(conn, wanted))
        if missing:
            raise UserError(f"site(s) {', '.join(missing)} do not exist; add them with: "
                            "nattero site add SITE --name NAME")
    if not accounts.insert_account(conn, name, security.hash_password(password), role.value,
                                   wanted):
        raise UserError(f"user {name!r} exists already")
    return User(username=name, role=role, sites=wanted)


def get_user(conn: psycopg.Connection, username: str) -> StoredUser | None:
    record = accounts.get_account(conn, normalise_username(username))
    return None if record is None else StoredUser.model_validate(record, from_attributes=True)


def get_user_by_id(conn: psycopg.Connection, user_id: int) -> StoredUser | None:
    record = accounts.get_account_by_id(conn, user_id)
    return None if record is None else StoredUser.model_validate(record, from_attributes=True)


class NoSuchUser(UserError):
    """The named account does not exist."""


def _no_such_user(username: str) -> NoSuchUser:
    return NoSuchUser(f"user {normalise_username(username)!r} does not exist; see who does "
                     "with: nattero user list")


def change_password(conn: psycopg.Connection, username: str, password: str) -> None:
    """Set a new password; the account's older tokens stop working (and any lock ends).
    A single sign-on account has none: its directory decides who logs in."""
    check_password(password)
    stored = get_user(conn, username)
    if stored is not None and stored.sso_subject is not None:
        raise UserError(f"user {stored.username!r} logs in with the municipality's account "
                        "(single sign-on) and has no password here; a local account for "
                        "emergency access is a separate account")
    if not accounts.set_password_hash(conn, normalise_username(username),
                                      security.hash_password(password)):
        raise _no_such_user(username)


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool) -> None:
    """Disable (its tokens stop working at once, it cannot log in) or enable again (it
    logs in anew: tokens from before the disable stay dead)."""
    if not accounts.set_disabled(conn, normalise_username(username), disabled):
        raise _no_such_user(username)


def delete_user(conn: psycopg.Connection, username: str) -> None:
    """Remove the account; its tokens stop working and a new account of the same name
    gets none of them."""
    if not accounts.delete_account(conn, normalise_username(username)):
        raise _no_such_user(username)


def list_users(conn: psycopg.Connection, now: datetime | None = None) -> list[Account]:
    return [Account.model_validate(summary, from_attributes=True)
            for summary in accounts.list_accounts(conn, now or datetime.now(UTC))]


def unlock_user(conn: psycopg.Connection, username: str) -> int:
    """An admin's unlock: every client locked out of the account may log in again at
    once. Returns how many clients had failures counted."""
    stored = get_user(conn, username)
    if stored is None:
        raise _no_such_user(username)
    return lockout.unlock(conn, stored.id)


def record_successful_login(conn: psycopg.Connection, username: str) -> None:
    accounts.clear_failed_logins(conn, normalise_username(username))
