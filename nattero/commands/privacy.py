"""Data-protection verbs: ``nattero erase room|user``, ``nattero audit list|export`` and
``nattero site notes``. They call the same store functions as the admin API
(``ingest.erasure``, ``ingest.audit``) and write their own audit rows (actor ``cli:<login>``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from nattero.commands.audit import cli_actor, record
from nattero.commands.config import connect_store
from nattero.commands.output import JsonOption, print_record, print_rows, verb_group

__all__ = ["audit_app", "erase_app", "site_notes"]

erase_app = verb_group("Erase personal data: a room's history, a user account.")
audit_app = verb_group("The audit log: who did what, when (read and export).")

YesOption = Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")]


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a time like 2026-11-23T02:10:00+01:00",
                                 param_hint=option) from None


@erase_app.command("room")
def erase_room(
    site: Annotated[str, typer.Argument(help="site id")],
    room: Annotated[str, typer.Argument(help="room id")],
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Erase every row of a room's history (a resident moved out): events, rollups, alerts,
    dead letters, monitoring bases. The room and its devices stay; record the next
    resident's basis with `nattero room basis`."""
    from ingest.erasure import erase_room as erase

    if not yes:
        typer.confirm(f"erase all history of room {room} on site {site}? This cannot be "
                      "undone (except by restoring a backup)", abort=True)
    with connect_store() as conn:
        erased = erase(conn, site, room, cli_actor())
    print_record(erased.as_dict(), as_json)


@erase_app.command("user")
def erase_user(
    username: Annotated[str, typer.Argument(help="the account's login name")],
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Delete a disabled account and replace its name with a pseudonym in the audit log and
    the alerts it handled. Disable it first: `nattero user disable USERNAME`."""
    from api.users import normalise_username
    from ingest.erasure import erase_user as erase

    name = normalise_username(username)
    if not yes:
        typer.confirm(f"erase user {name}? Its name is replaced by a pseudonym everywhere",
                      abort=True)
    with connect_store() as conn:
        erased = erase(conn, name, cli_actor())
    print_record(erased.as_dict(), as_json)


FromOption = Annotated[str | None, typer.Option("--from", help="at or after (ISO 8601)")]
ToOption = Annotated[str | None, typer.Option("--to", help="before (ISO 8601)")]
ActorOption = Annotated[str | None, typer.Option("--actor", help="only this actor")]
ActionOption = Annotated[str | None, typer.Option(
    "--action", help="only this action (alert.resolve), or a prefix ending in a dot (alert.)")]
SiteOption = Annotated[str | None, typer.Option("--site", help="only this site")]


@audit_app.command("list")
def audit_list(since: FromOption = None, until: ToOption = None, actor: ActorOption = None,
               action: ActionOption = None, site: SiteOption = None,
               limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
               as_json: JsonOption = False) -> None:
    """The newest-last audit rows matching the filters."""
    from ingest.audit import read_audit

    with connect_store() as conn:
        entries = read_audit(conn, since=_moment(since, "--from"), until=_moment(until, "--to"),
                             actor=actor, action=action, site=site, limit=limit)
    print_rows([entry.as_dict() for entry in entries], as_json)


@audit_app.command("export")
def audit_export(
    fmt: Annotated[Literal["csv", "json"], typer.Option("--format", help="csv or json")] = "csv",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="write to this file (default: standard output)")] = None,
    since: FromOption = None, until: ToOption = None, actor: ActorOption = None,
    action: ActionOption = None, site: SiteOption = None,
) -> None:
    """Every audit row matching the filters, as CSV or JSON (for a SIEM or the DPO)."""
    from ingest.audit import audit_csv, read_audit

    with connect_store() as conn:
        entries = read_audit(conn, since=_moment(since, "--from"), until=_moment(until, "--to"),
                             actor=actor, action=action, site=site, limit=None)
    text = (audit_csv(entries) if fmt == "csv"
            else json.dumps([e.as_dict() for e in entries], ensure_ascii=False) + "\n")
    record("audit.export", site, None, {"format": fmt, "rows": len(entries)})
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(entries)} audit rows written to {output}", err=True)


def site_notes(
    site: Annotated[str, typer.Argument(help="site id")],
    allow: Annotated[bool, typer.Option(
        "--allow/--forbid", help="allow free-text resolve notes, or outcome codes only")],
) -> None:
    """Allow or forbid free-text notes when staff resolve an alert (default: forbidden;
    the board warns staff never to write names when allowed)."""
    from core.errors import NatteroError
    from ingest.sites import set_resolve_notes

    with connect_store() as conn:
        if not set_resolve_notes(conn, site, allow):
            raise NatteroError(f"site '{site}' does not exist; list sites with: "
                               "nattero site list")
    record("site.resolve_notes", site, site, {"allowed": allow})
    typer.echo(f"free-text resolve notes on {site}: {'allowed' if allow else 'forbidden'}")
