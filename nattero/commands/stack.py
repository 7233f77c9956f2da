"""``nattero up``, ``down``, ``status`` and ``migrate``: the local stack and the schema."""

from __future__ import annotations

from typing import Annotated

import typer

from nattero.commands.config import current_settings
from nattero.commands.output import JsonOption, print_record

__all__ = ["bootstrap", "down", "migrate", "status", "up"]


def up(as_json: JsonOption = False,
       tls: Annotated[bool, typer.Option(
           "--tls", help="the broker also listens with TLS (NATTERO_MQTT_TLS_PORT, default "
           "the MQTT port + 1), with a certificate from the stack's own CA; stays on")] = False,
       ha: Annotated[bool, typer.Option(
           "--ha", help="a replicated database with automatic failover (pg_auto_failover: a "
           "monitor and two nodes on the PostgreSQL port + 10, 11, 12) instead of one; "
           "for a new state directory; stays on")] = False,
       ) -> None:
    """Start (or find running) the private PostgreSQL+TimescaleDB and Mosquitto."""
    from deploy.stack import up as stack_up

    settings = current_settings()
    info = stack_up(settings, tls=tls, ha=ha)
    record: dict[str, object] = {
        "database_url": info.database_url, "mqtt_host": info.mqtt_host,
        "mqtt_port": info.mqtt_port, "state_dir": str(settings.state_dir.resolve())}
    if info.mqtt_tls_port is not None:
        record |= {"mqtt_tls_port": info.mqtt_tls_port, "tls_ca_file": info.tls_ca_file}
    if info.ha:
        from deploy.stack import status as stack_status

        record["database_nodes"] = stack_status(settings)["database_nodes"]
    print_record(record, as_json)


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


def bootstrap(as_json: JsonOption = False) -> None:
    """Make an installation ready: bring the schema up to date and create the gateway's
    broker account if it is missing (idempotent; compose's bootstrap service, or once after
    an upgrade). Needs NATTERO_DATABASE_URL, the broker admin and gateway accounts."""
    from deploy.stack import ensure_gateway_account
    from ingest.migrate import current_revision, upgrade

    settings = current_settings()
    url = settings.sqlalchemy_url()
    upgrade(url)
    created = [ensure_gateway_account(host, port, settings.broker_admin_account(),
                                      settings.gateway_account(),
                                      tls=settings.mqtt_tls_context())
               for host, port in settings.central_brokers()]
    print_record({"revision": current_revision(url), "gateway_account":
                  "created" if any(created) else "exists"}, as_json)
