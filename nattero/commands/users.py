"""``nattero user add`` and ``nattero user list``: accounts of admins, night staff, evaluators."""

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
