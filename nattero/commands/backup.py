"""``nattero backup`` and ``nattero restore``: pgBackRest and the broker's accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import typer

from nattero.commands.config import current_settings
from nattero.commands.output import JsonOption, print_record, print_rows

__all__ = ["backup", "restore"]


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a time like 2026-11-23T02:10:00+01:00",
                                 param_hint="--to") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no time zone; add one like +01:00 or Z",
                                 param_hint="--to")
    return moment


def backup(
    kind: Annotated[Literal["full", "incr", "diff"], typer.Option(
        "--type", help="full, incr (changes since the last backup) or diff")] = "incr",
    list_only: Annotated[bool, typer.Option("--list", help="list the backups, make none")] = False,
    as_json: JsonOption = False,
) -> None:
    """Back up the database (pgBackRest) and the broker's accounts of the local stack."""
    from deploy import backup as backups

    settings = current_settings()
    if list_only:
        print_rows(backups.backups(settings), as_json)
        return
    print_record(backups.backup(settings, kind), as_json)


def restore(
    to: Annotated[str | None, typer.Option(
        "--to", help="restore to this moment (ISO 8601 with a zone); default: all archived")
    ] = None,
    broker: Annotated[bool, typer.Option(
        "--broker", help="also put back the broker's accounts from the newest copy before --to")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Restore the local stack's database to a point in time, then start the stack.

    Stop the services that write (``nattero serve``) and the stack (``nattero down``) first.
    """
    from deploy import backup as backups
    from deploy import stack

    settings = current_settings()
    result = backups.restore(settings, _moment(to), broker=broker)
    stack.up(settings)
    stack.wait_promoted(settings)
    print_record(result.as_dict(), as_json)
