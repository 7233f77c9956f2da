"""``nattero``: one command line for the stack, the schema, provisioning and the services.

Every verb has ``--help``. Expected failures (bad arguments, missing stack, a duplicate
device) print one clear line to stderr and exit 1; they never print a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

from core.events import DeviceKind, DeviceSource, RoomKind
from core.settings import get_settings

app = typer.Typer(help="Nattero: night monitoring for residential care homes.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
site_app = typer.Typer(help="Sites: a care home with its time zone and night window.",
                       no_args_is_help=True)
room_app = typer.Typer(help="Rooms: flats, common rooms and building exits.", no_args_is_help=True)
device_app = typer.Typer(help="Devices: sensors with their own broker credentials.",
                         no_args_is_help=True)
app.add_typer(site_app, name="site")
app.add_typer(room_app, name="room")
app.add_typer(device_app, name="device")
bridge_app = typer.Typer(help="Bridges: Zigbee2MQTT and ChirpStack servers, each with its own "
                              "broker account.", no_args_is_help=True)
app.add_typer(bridge_app, name="bridge")
user_app = typer.Typer(help="User accounts: admin, staff (per site), evaluator.",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def friendly_errors(func: F) -> F:
    """Turn the domain's expected errors into one readable line and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from deploy.stack import StackError
        from provisioning import ProvisioningError
        from provisioning.broker_accounts import BrokerAccountError

        try:
            return func(*args, **kwargs)
        except (ProvisioningError, StackError, BrokerAccountError, ValueError) as exc:
            _fail(str(exc))
        except RuntimeError as exc:  # settings: no stack configured
            _fail(str(exc))
        except _db_errors() as exc:
            _fail(f"the database is not reachable ({str(exc).strip().splitlines()[0]}); "
                  "start the local stack with `nattero up` or check NATTERO_DATABASE_URL")

    return wrapper  # type: ignore[return-value]


def _db_errors() -> tuple[type[Exception], ...]:
    import psycopg
    import sqlalchemy.exc

    return (psycopg.OperationalError, sqlalchemy.exc.OperationalError)


def _audit(action: str, site: str | None, target: str | None,
           detail: dict[str, Any] | None = None) -> None:
    """Admin changes made on the command line go to the audit log like the API's do."""
    import getpass

    import psycopg

    from ingest.audit import audit

    actor = f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"
    with psycopg.connect(get_settings().resolved_database_url(), autocommit=True) as conn:
        audit(conn, actor, action, site, target, detail or {})


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for key, value in data.items():
            typer.echo(f"{key}: {value}")


@app.command()
@friendly_errors
def up(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Start (or find running) the private PostgreSQL+TimescaleDB and Mosquitto."""
    from deploy.stack import up as stack_up

    info = stack_up(get_settings())
    _print({"database_url": info.database_url, "mqtt_host": info.mqtt_host,
            "mqtt_port": info.mqtt_port, "state_dir": str(get_settings().state_dir.resolve())},
           as_json)


@app.command()
@friendly_errors
def down() -> None:
    """Stop the local stack (data stays in the state directory)."""
    from deploy.stack import down as stack_down

    stack_down(get_settings())
    typer.echo("stopped")


@app.command()
@friendly_errors
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What of the local stack is running."""
    from deploy.stack import status as stack_status

    _print(stack_status(get_settings()), as_json)


@app.command()
@friendly_errors
def migrate() -> None:
    """Bring the database schema up to date."""
    from ingest.migrate import current_revision, upgrade

    url = get_settings().sqlalchemy_url()
    upgrade(url)
    typer.echo(f"schema at revision {current_revision(url)}")


@site_app.command("add")
@friendly_errors
def site_add(
    site: Annotated[str, typer.Argument(help="short id, e.g. solsikken")],
    name: Annotated[str, typer.Option(help="display name")],
    tz: Annotated[str, typer.Option(help="IANA time zone")] = "Europe/Copenhagen",
    night: Annotated[str, typer.Option(help="night window HH:MM-HH:MM")] = "22:00-07:00",
) -> None:
    """Add a site."""
    from provisioning import add_site

    add_site(get_settings(), site, name, tz, night)
    _audit("site.add", site, site, {"name": name, "tz": tz, "night": night})
    typer.echo(f"site {site} added")


@room_app.command("add")
@friendly_errors
def room_add(
    site: str, room: str,
    kind: Annotated[RoomKind, typer.Option(help="flat, common or exit")],
    label: Annotated[str | None, typer.Option(help="shown on the board; never a name")] = None,
) -> None:
    """Add a room to a site."""
    from provisioning import add_room

    add_room(get_settings(), site, room, kind, label)
    _audit("room.add", site, room, {"kind": kind.value, "label": label})
    typer.echo(f"room {site}/{room} added")


@room_app.command("basis")
@friendly_errors
def room_basis(
    site: str, room: str,
    consent: Annotated[bool, typer.Option("--consent", help="the resident consented")] = False,
    decision: Annotated[str | None, typer.Option(help="municipal decision reference")] = None,
    valid_from: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    valid_to: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
) -> None:
    """Record why a flat may be monitored; without a valid basis it raises no alerts."""
    from provisioning import record_basis

    record_basis(get_settings(), site, room, consent=consent, decision_ref=decision,
                 valid_from=_date(valid_from, "--valid-from"),
                 valid_to=_date(valid_to, "--valid-to"))
    _audit("room.basis", site, room, {"consent": consent, "decision": decision,
                                      "valid_from": valid_from, "valid_to": valid_to})
    typer.echo(f"basis recorded for {site}/{room}")


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} {value!r} is not a date like 2026-11-23") from None


@device_app.command("add")
@friendly_errors
def device_add(
    site: str, device: str,
    room: Annotated[str, typer.Option(help="room the device sits in")],
    kind: Annotated[DeviceKind, typer.Option(help="door, bed, motion or exit")],
    heartbeat: Annotated[int, typer.Option(help="heartbeat interval, seconds")] = 300,
    source: Annotated[DeviceSource, typer.Option(help="native, zigbee2mqtt or chirpstack")] =
        DeviceSource.NATIVE,
    external_id: Annotated[str | None, typer.Option(help="bridge name / DevEUI")] = None,
    mapping: Annotated[str | None, typer.Option(help="vendor mapping for chirpstack")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Provision a device; prints its MQTT username and password once."""
    from provisioning import add_device

    creds = add_device(get_settings(), site, device, room, kind, heartbeat, source=source,
                       external_id=external_id, mapping=mapping)
    _audit("device.add", site, device, {"room": room, "kind": kind.value,
                                        "source": source.value, "external_id": external_id})
    data: dict[str, Any] = {"site": site, "device": device, "username": creds.username,
                            "password": creds.password}
    if source != DeviceSource.NATIVE:
        data = {"site": site, "device": device, "source": source.value,
                "external_id": external_id}
    _print(data, as_json)
    if not as_json and source == DeviceSource.NATIVE:
        typer.echo("the password is shown only this once; store it in the device now", err=True)


@device_app.command("revoke")
@friendly_errors
def device_revoke(site: str, device: str) -> None:
    """Remove a device's access immediately (it is disconnected and refused)."""
    from provisioning import revoke_device

    revoke_device(get_settings(), site, device)
    _audit("device.revoke", site, device)
    typer.echo(f"device {site}/{device} revoked")


@device_app.command("list")
@friendly_errors
def device_list(site: Annotated[str | None, typer.Option()] = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Devices with their presence, battery and last event."""
    from provisioning import list_devices

    rows = [{"site": d.site, "device": d.id, "room": d.room, "kind": d.kind,
             "presence": d.presence, "battery": d.battery,
             "last_event_at": d.last_event_at.isoformat() if d.last_event_at else None,
             "revoked": d.revoked_at is not None} for d in list_devices(get_settings(), site)]
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        for row in rows:
            typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))


@bridge_app.command("add")
@friendly_errors
def bridge_add(
    name: Annotated[str, typer.Argument(help="short id, e.g. zigbee-solsikken")],
    source: Annotated[DeviceSource, typer.Option(help="zigbee2mqtt or chirpstack")],
    application_id: Annotated[str | None, typer.Option(
        help="chirpstack: publish only under application/ID/#")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a bridge's broker account; prints its MQTT username and password once."""
    from provisioning.bridges import add_bridge

    creds = add_bridge(get_settings(), name, source, application_id=application_id)
    _audit("bridge.add", None, name, {"source": source.value})
    _print({"bridge": name, "source": source.value, "username": creds.username,
            "password": creds.password}, as_json)
    if not as_json:
        typer.echo("the password is shown only this once; put it in the bridge's "
                   "configuration now", err=True)


@bridge_app.command("revoke")
@friendly_errors
def bridge_revoke(name: str) -> None:
    """Delete a bridge's broker account (it is disconnected and refused; devices stay)."""
    from provisioning.bridges import revoke_bridge

    revoke_bridge(get_settings(), name)
    _audit("bridge.revoke", None, name)
    typer.echo(f"bridge {name} revoked")


@app.command()
@friendly_errors
def gateway() -> None:
    """Run the MQTT gateway and ingest alone (no API)."""
    from gateway.service import Gateway

    _logging()
    service = Gateway(get_settings())
    _stop_on_signals(service.stop)
    service.start()
    service.wait()


@app.command()
@friendly_errors
def pipeline() -> None:
    """Run the gateway and the rules engine (events in, alerts out) without the API."""
    from core.process import freeze_startup_objects
    from nattero.pipeline import start_pipeline

    _logging()
    running = start_pipeline(get_settings())
    freeze_startup_objects()
    _stop_on_signals(running.stop)
    running.gateway.wait()


def _stop_on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: object) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_service_verbs() -> None:
    from api.commands import user_add
    from nattero.serve import serve as api_serve
    from simulators.command import simulate

    user_app.command("add")(user_add)
    app.command("serve")(api_serve)
    app.command("simulate")(friendly_errors(simulate))
    import simulators.command as simulation
    from nattero.scoring import fetch_alerts

    simulation.alert_source_hook = fetch_alerts
    from evaluation.commands import export as evaluation_export
    from evaluation.commands import report as evaluation_report
    from ingest.maintenance import app as maintenance_app
    from nattero.demo import demo

    app.add_typer(maintenance_app, name="maintenance")

    app.command("export")(evaluation_export)
    app.command("report")(evaluation_report)

    app.command("demo")(friendly_errors(demo))


_register_service_verbs()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
