"""``nattero``: one command line for the stack, the schema, provisioning and the services.

Every verb has ``--help``; verbs that print data have ``--json``. A ``NatteroError``
(bad arguments, a missing stack, a duplicate device, a database that is not there) prints
one red line ``error: ...`` to stderr and exits 1; any other exception is a bug and keeps
its traceback.

This module must stay cheap to import (``nattero --help`` answers in well under half a
second): the verbs live in ``nattero.commands`` and import the store, the broker client,
the API and the evaluation inside their bodies, never at module level.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from core.errors import NatteroError
from nattero import __version__
from nattero.commands import (
    backtest,
    backup,
    certs,
    evaluation,
    privacy,
    roster,
    services,
    simulation,
    sites,
    stack,
    users,
)
from nattero.commands.output import verb_group
from nattero.unavailable import translate

__all__ = ["app", "main"]


class _ReportingGroup(TyperGroup):
    """Turns a NatteroError raised by any verb into one red line and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NatteroError as exc:
            _report(exc)
        except Exception as exc:
            translated = translate(exc)
            if translated is None:
                raise  # a bug: keep the traceback
            _report(translated)


def _report(exc: NatteroError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


app = verb_group("Nattero: night monitoring for residential care homes.", cls=_ReportingGroup,
                 pretty_exceptions_enable=False)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"nattero {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="print the version and exit")] = False) -> None:
    """Nattero: night monitoring for residential care homes."""


for _verb in (stack.up, stack.down, stack.status, stack.migrate, stack.bootstrap, services.serve,
              services.gateway, services.pipeline, simulation.simulate, evaluation.export,
              evaluation.report, backtest.backtest, services.demo, backup.backup,
              backup.restore):
    app.command()(_verb)
app.add_typer(sites.site_app, name="site")
app.add_typer(sites.room_app, name="room")
app.add_typer(sites.device_app, name="device")
app.add_typer(sites.bridge_app, name="bridge")
app.add_typer(sites.broker_app, name="broker")
app.add_typer(users.user_app, name="user")
app.add_typer(roster.roster_app, name="roster")
app.add_typer(services.maintenance_app, name="maintenance")
app.add_typer(privacy.erase_app, name="erase")
app.add_typer(privacy.audit_app, name="audit")
sites.site_app.command("notes")(privacy.site_notes)
app.add_typer(certs.certs_app, name="certs")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
