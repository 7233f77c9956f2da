"""Command-line verbs of the API, registered in ``nattero.cli``: ``user add``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from api.users import Role, UserError, check_password
from core.settings import get_settings


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


def user_add(
    username: Annotated[str, typer.Argument(help="login name; never a resident's name")],
    role: Annotated[Role, typer.Option(help="admin, staff or evaluator")],
    site: Annotated[list[str] | None, typer.Option(
        "--site", help="site the account may see (repeat for several; staff need one)")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from the first line of stdin")] = False,
) -> None:
    """Add a user account; the password is prompted (hidden, twice) or read from stdin."""
    import psycopg

    from api.users import create_user
    from ingest.audit import audit

    password = _read_password(password_stdin)
    try:
        check_password(password)
        settings = get_settings()
        with psycopg.connect(settings.resolved_database_url(), autocommit=True) as conn, \
                conn.transaction():
            user = create_user(conn, username, password, role, list(site or []))
            audit(conn, "cli", "user.add", None, user.username,
                  {"role": user.role.value, "sites": user.sites})
    except UserError as exc:
        _fail(str(exc))
    except psycopg.OperationalError as exc:
        _fail(f"the database is not reachable ({str(exc).strip().splitlines()[0]}); "
              "start the local stack with `nattero up` or check NATTERO_DATABASE_URL")
    except RuntimeError as exc:  # settings: no stack configured
        _fail(str(exc))
    sites = f" on {', '.join(user.sites)}" if user.sites else ""
    typer.echo(f"user {user.username} added as {user.role.value}{sites}")
