"""``nattero up``, ``down``, ``status`` and ``migrate``: the local stack and the schema."""

from __future__ import annotations

import typer

from nattero.commands.config import current_settings
from nattero.commands.output import JsonOption, print_record

__all__ = ["down", "migrate", "status", "up"]


def up(as_json: JsonOption = False) -> None:
    """Start (or find running) the private PostgreSQL+TimescaleDB and Mosquitto."""
    from deploy.stack import up as stack_up

    settings = current_settings()
    info = stack_up(settings)
    print_record({"database_url": info.database_url, "mqtt_host": info.mqtt_host,
                  "mqtt_port": info.mqtt_port, "state_dir": str(settings.state_dir.resolve())},
                 as_json)


def down() -> None:
    """Stop the local stack (data stays in the state directory)."""
    from deploy.stack import down as stack_down

    stack_down(current_settings())
    typer.echo("stopped")


def status(as_json: JsonOption = False) -> None:
    """What of the local stack is running."""
    from deploy.stack import status as stack_status

    print_record(stack_status(current_settings()), as_json)


def migrate(as_json: JsonOption = False) -> None:
    """Bring the database schema up to date."""
    from ingest.migrate import current_revision, upgrade

    url = current_settings().sqlalchemy_url()
    upgrade(url)
    revision = current_revision(url)
    if as_json:
        print_record({"revision": revision}, as_json)
    else:
        typer.echo(f"schema at revision {revision}")
