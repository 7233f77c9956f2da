"""How verbs print data: ``key: value`` lines for people, one JSON document with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Annotated, Any

import typer

__all__ = ["JsonOption", "print_record", "print_rows", "verb_group"]

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def verb_group(help: str, **options: Any) -> typer.Typer:
    """A group of verbs (``nattero site ...``) whose help is printed without rich.

    Plain help on purpose: rich's renderer costs a tenth of a second or more on every
    ``--help``, and click's plain usage errors are one clear line.
    """
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **options)


def date_option(value: str | None, option: str) -> date | None:
    """An ISO date given to ``option``, or a usage error naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-23",
                                 param_hint=option) from None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def print_record(data: Mapping[str, Any], as_json: bool) -> None:
    """One object: ``key: value`` lines, or a JSON object."""
    plain = {key: _plain(value) for key, value in data.items()}
    if as_json:
        typer.echo(json.dumps(plain))
        return
    for key, value in plain.items():
        typer.echo(f"{key}: {value}")


def print_rows(rows: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    """A list: one ``key=value`` line per row, or a JSON array."""
    plain = [{key: _plain(value) for key, value in row.items()} for row in rows]
    if as_json:
        typer.echo(json.dumps(plain))
        return
    for row in plain:
        typer.echo("  ".join(f"{key}={value}" for key, value in row.items()))
