"""``nattero backtest``: replay a site's stored nights with proposed rule settings.

Reads the store directly (no API); writes nothing. The proposal is ``--set RULE.FIELD=VALUE``
(for ``--room ROOM``, or the whole site) or ``--rules FILE``. Exit code 0 also when the
proposal is risky: the table says so in red and ``--json`` has ``"risky": true``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nattero.commands.config import connect_store
from nattero.commands.evaluation import LanguageName
from nattero.commands.output import JsonOption, date_option

__all__ = ["backtest"]


def backtest(
    site: Annotated[str, typer.Argument(help="site id")],
    from_: Annotated[str, typer.Option("--from", help="first night, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last night, inclusive")],
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="file of proposed settings (JSON or TOML)")] = None,
    room: Annotated[str | None, typer.Option(
        help="with --set: the room the settings are for (default: the whole site)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="RULE.FIELD=VALUE, e.g. left_flat.minutes=25 (repeat)")] = None,
    as_json: JsonOption = False,
    lang: Annotated[LanguageName, typer.Option(
        "--lang", help="language of the table: da (Danish) or en")] = "da",
) -> None:
    """Replay stored nights with proposed rule settings in a sandbox and compare."""
    from rich.console import Console

    from backtest import ProposalError, changes_from_file, changes_from_sets, run_backtest
    from backtest.terminal import print_backtest
    from core.i18n import localizer

    first, last = date_option(from_, "--from"), date_option(to, "--to")
    assert first is not None and last is not None
    if rules is not None and (set_ or room):
        raise ProposalError("give either --rules FILE or --room/--set, not both")
    if rules is not None:
        changes = changes_from_file(rules)
    elif set_:
        changes = changes_from_sets(set_, room)
    else:
        raise ProposalError("nothing to try: give --set RULE.FIELD=VALUE (with --room ROOM "
                            "for one room) or --rules FILE")
    with connect_store() as conn:
        test = run_backtest(conn, site, first, last, changes)
    if as_json:
        typer.echo(json.dumps(test.to_json()))
        return
    print_backtest(test, localizer(lang), Console())
