"""``nattero user add|list|passwd|unlock|disable|enable|delete``: accounts of admins, night staff,
evaluators. Changing a password, disabling or deleting ends the account's tokens at once
(REST and open board streams)."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import typer

from nattero.commands.config import current_settings
from nattero.commands.output import JsonOption, print_rows, verb_group

__all__ = ["RoleName", "user_app"]

user_app = verb_group("User accounts: admin, staff (per site), evaluator.")

#: ``api.users.Role``'s values, spelled out so that ``--help`` need not import the API.
RoleName = Literal["admin", "staff", "evaluator"]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="login name; never a resident's name")],
    role: Annotated[RoleName, typer.Option(help="admin, staff or evaluator")],
    site: Annotated[list[str] | None, typer.Option(
        "--site", help="site the account may see (repeat for several; staff need one)")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from the first line of stdin")] = False,
) -> None:
    """Add a user account; the password is prompted (hidden, twice) or read from stdin."""
    import psycopg

    from api.users import Role, check_password, create_user
    from ingest.audit import audit

    password = _read_password(password_stdin)
    check_password(password)
    with psycopg.connect(current_settings().resolved_database_url(), autocommit=True) as conn, \
            conn.transaction():
        user = create_user(conn, username, password, Role(role), list(site or []))
        audit(conn, "cli", "user.add", None, user.username,
              {"role": user.role.value, "sites": user.sites})
    sites = f" on {', '.join(user.sites)}" if user.sites else ""
    typer.echo(f"user {user.username} added as {user.role.value}{sites}")


@user_app.command("list")
def user_list(as_json: JsonOption = False) -> None:
    """User accounts with their role, sites and whether they are locked or disabled."""
    import psycopg

    from ingest.listing import list_users

    with psycopg.connect(current_settings().resolved_database_url()) as conn:
        found = list_users(conn)
    print_rows([{"username": u.username, "role": u.role, "sites": u.sites,
                 "disabled": u.disabled, "locked_until": u.locked_until} for u in found],
               as_json)


UsernameArg = Annotated[str, typer.Argument(help="the account's login name")]


def _change(username: str, action: str) -> None:
    """Apply one account change and its audit entry in one transaction."""
    import psycopg

    from api import users
    from ingest.audit import audit

    with psycopg.connect(current_settings().resolved_database_url(), autocommit=True) as conn, \
            conn.transaction():
        name = users.normalise_username(username)
        if action == "user.disable":
            users.set_disabled(conn, name, True)
        elif action == "user.enable":
            users.set_disabled(conn, name, False)
        elif action == "user.delete":
            users.delete_user(conn, name)
        audit(conn, "cli", action, None, name)


@user_app.command("passwd")
def user_passwd(
    username: UsernameArg,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from the first line of stdin")] = False,
) -> None:
    """Set a new password; every token of the account stops working at once."""
    import psycopg

    from api.users import change_password, check_password, normalise_username
    from ingest.audit import audit

    password = _read_password(password_stdin)
    check_password(password)
    name = normalise_username(username)
    with psycopg.connect(current_settings().resolved_database_url(), autocommit=True) as conn, \
            conn.transaction():
        change_password(conn, name, password)
        audit(conn, "cli", "user.passwd", None, name)
    typer.echo(f"password of {name} changed; its earlier logins are ended")


@user_app.command("unlock")
def user_unlock(username: UsernameArg) -> None:
    """End the account's lockouts: every tablet or address locked out by wrong passwords
    may log in again at once."""
    import psycopg

    from api.users import normalise_username, unlock_user
    from ingest.audit import audit

    name = normalise_username(username)
    with psycopg.connect(current_settings().resolved_database_url(), autocommit=True) as conn, \
            conn.transaction():
        clients = unlock_user(conn, name)
        audit(conn, "cli", "user.unlock", None, name, {"clients": clients})
    typer.echo(f"user {name} unlocked ({clients} client(s) had wrong passwords counted)")


@user_app.command("totp-reset")
def user_totp_reset(username: UsernameArg) -> None:
    """Remove a local admin's second factor (TOTP), e.g. after a lost phone: the account's
    logins end, and it sets up a new one at its next login. The way back in when no other
    admin can do it on the admin page."""
    import psycopg

    from api.users import normalise_username
    from ingest.audit import audit
    from ingest.users import clear_totp

    name = normalise_username(username)
    with psycopg.connect(current_settings().resolved_database_url(), autocommit=True) as conn, \
            conn.transaction():
        had = clear_totp(conn, name)
        if had is None:
            raise typer.BadParameter(f"user {name!r} does not exist; see who does with: "
                                     "nattero user list", param_hint="USERNAME")
        audit(conn, "cli", "user.totp_reset", None, name, {"had": had})
    typer.echo(f"second factor of {name} reset" if had else
               f"user {name} had no confirmed second factor; any half-done set-up removed")


@user_app.command("disable")
def user_disable(username: UsernameArg) -> None:
    """Stop an account from logging in; its tokens and open boards end at once."""
    _change(username, "user.disable")
    typer.echo(f"user {username.strip().lower()} disabled; its logins are ended")


@user_app.command("enable")
def user_enable(username: UsernameArg) -> None:
    """Let a disabled account log in again (tokens from before stay dead)."""
    _change(username, "user.enable")
    typer.echo(f"user {username.strip().lower()} enabled; it can log in again")


@user_app.command("delete")
def user_delete(
    username: UsernameArg,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Delete an account (its audit entries stay); its tokens end at once, and an account
    added later under the same name inherits none of them."""
    if not yes:
        typer.confirm(f"delete user {username.strip().lower()}?", abort=True)
    _change(username, "user.delete")
    typer.echo(f"user {username.strip().lower()} deleted")
