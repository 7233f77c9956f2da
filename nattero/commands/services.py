"""The long-running verbs: ``serve``, ``gateway``, ``pipeline``, ``maintenance run|loop``,
``demo``."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nattero.commands.config import current_settings
from nattero.commands.output import JsonOption, verb_group

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["demo", "gateway", "maintenance_app", "pipeline", "serve"]

maintenance_app = verb_group("Store maintenance: rollup refresh and retention.")


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    pipeline: Annotated[bool, typer.Option(
        "--pipeline/--no-pipeline", help="also run the gateway and rules in this process")] = True,
    ssl_certfile: Annotated[Path | None, typer.Option(
        help="serve HTTPS with this certificate (PEM; `nattero certs server`), e.g. without "
        "a reverse proxy")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        help="the certificate's private key (PEM)")] = None,
) -> None:
    """Run the API (and by default the gateway and rules) until Ctrl-C."""
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise typer.BadParameter("--ssl-certfile and --ssl-keyfile go together: give both")
    import uvicorn

    from api.app import create_app
    from nattero.pipeline import start_pipeline

    settings = current_settings()
    settings.resolved_database_url()  # no stack and no URL: say so before starting anything
    log_config = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {"uvicorn.access": {"level": "WARNING"}},
    }
    # Gateway, rules and the WebSocket loop share one interpreter: a shorter GIL switch
    # interval lets an alert hop threads in well under the default 5 ms per hop.
    sys.setswitchinterval(0.0005)
    app = create_app(settings, companion=start_pipeline if pipeline else None,
                     owns_process=True)
    uvicorn.run(app, host=host, port=port,
                ws="websockets-sansio", ws_ping_interval=20.0, ws_ping_timeout=20.0,
                # Alerts are small JSON frames: compressing each for every board costs more
                # latency than the bytes it saves.
                ws_per_message_deflate=False,
                proxy_headers=False, log_config=log_config, access_log=False,
                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def gateway() -> None:
    """Run the MQTT gateway and ingest alone (no API)."""
    from gateway.service import Gateway

    _logging()
    service = Gateway(current_settings())
    _stop_on_signals(service.stop)
    service.start()
    service.wait()


def pipeline(
    leases: Annotated[bool | None, typer.Option(
        "--leases/--no-leases", help="share the sites with other `nattero pipeline` workers "
        "through leases in the database, each site owned by one worker (default: "
        "NATTERO_PIPELINE_LEASES, off)")] = None,
    site: Annotated[list[str] | None, typer.Option(
        help="with --leases: a site this worker may own (repeat; default: "
        "NATTERO_GATEWAY_SITES, empty: share all sites)")] = None,
    worker_id: Annotated[str | None, typer.Option(
        help="this worker's name in the leases (default: host, pid and a random part)")] = None,
) -> None:
    """Run the gateway and the rules engine (events in, alerts out) without the API."""
    from core.process import freeze_startup_objects
    from nattero.pipeline import start_pipeline

    _logging()
    settings = current_settings()
    update: dict[str, object] = {}
    if leases is not None:
        update["pipeline_leases"] = leases
    if site:
        update["gateway_sites"] = list(site)
    if worker_id:
        update["worker_id"] = worker_id
    settings = settings.model_copy(update=update) if update else settings
    if settings.pipeline_leases:
        _leased_pipeline(settings)
        return
    running = start_pipeline(settings)
    freeze_startup_objects()
    _stop_on_signals(running.stop)
    running.gateway.wait()


def _leased_pipeline(settings: Settings) -> None:
    from ingest.maintenance import Maintenance
    from nattero.lease_keeper import LeaseKeeper

    settings.resolved_database_url()  # no stack and no URL: say so before starting anything
    keeper = LeaseKeeper(settings)
    maintenance: Maintenance | None = None
    if settings.maintenance == "thread":
        maintenance = Maintenance(settings.resolved_database_url(),
                                  every_s=settings.maintenance_every_s,
                                  reconcile_every_s=settings.maintenance_reconcile_every_s)
        maintenance.start()

    stopped: list[bool] = []

    def stop() -> None:  # from a signal, then again on the way out: once is enough
        if stopped:
            return
        stopped.append(True)
        keeper.stop()
        if maintenance is not None:
            maintenance.stop()

    logging.getLogger(__name__).info("worker %s sharing sites through leases", keeper.owner)
    _stop_on_signals(stop)
    keeper.start()
    try:
        keeper.wait()
    finally:
        stop()  # after a fatal error too: the sites are handed over at once


@maintenance_app.callback()
def _maintenance() -> None:
    """Store maintenance: rollup refresh and retention (``serve``/``pipeline`` run it every
    minute by themselves)."""


@maintenance_app.command("run")
def maintenance_run(
    no_retention: Annotated[bool, typer.Option("--no-retention",
                                               help="only refresh the rollups")] = False,
    reconcile: Annotated[bool, typer.Option(
        "--reconcile", help="also re-aggregate the last 48 hours by event time")] = False,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="rebuild the rollups from every raw event still kept")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run one maintenance round now: refresh the rollups, then apply retention."""
    from ingest.maintenance import Maintenance

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    job = Maintenance(current_settings().resolved_database_url(),
                      retention_enabled=not no_retention)
    report = job.run_once(retention_now=not no_retention, reconcile_now=reconcile,
                          rebuild=rebuild)
    if as_json:
        typer.echo(json.dumps(report))
        return
    roll = report["rollup"]
    typer.echo(f"rollup: {'full build, ' if roll['full'] else ''}{roll['count_buckets']} "
               f"bucket(s) re-counted, {roll['out_rooms']} room(s) re-derived, complete to "
               f"{roll['refreshed_to']} ({roll['seconds']} s)")
    if "retention" in report:
        ret = report["retention"]
        typer.echo(f"retention ({ret['mode']}, {ret['days']} days): {ret['chunks_dropped']} "
                   f"chunk(s) dropped, raw events kept from {ret['raw_kept_from'] or 'the start'}"
                   f", {ret['dead_letters_deleted']} dead letter(s) deleted"
                   + (f"; skipped: {ret['skipped']}" if ret["skipped"] else ""))


@maintenance_app.command("loop")
def maintenance_loop(
    every: Annotated[float, typer.Option(help="seconds between rounds")] = 60,
    reconcile_every: Annotated[float, typer.Option(
        help="seconds between re-aggregations of the last 48 hours")] = 3600,
) -> None:
    """Run rounds until SIGTERM or Ctrl-C: maintenance as a service of its own (then run
    ``serve``/``pipeline`` with NATTERO_MAINTENANCE=off)."""
    import signal

    from ingest.maintenance import Maintenance

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    job = Maintenance(current_settings().resolved_database_url(), every_s=every,
                      reconcile_every_s=reconcile_every)
    signal.signal(signal.SIGTERM, lambda signum, frame: job.stop_soon())
    signal.signal(signal.SIGINT, lambda signum, frame: job.stop_soon())
    job.run_forever()


def demo(
    host: Annotated[str, typer.Option(help="address of the board")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the board")] = 8000,
    speed: Annotated[str, typer.Option(
        help="simulation speed: 60 = a night in 9 minutes")] = "60",
    nights: Annotated[int, typer.Option(min=1, help="nights to play")] = 7,
) -> None:
    """Run everything: stack, five simulated sites, rules, API and the live board."""
    from nattero.demo import run_demo

    run_demo(host, port, speed, nights)


def _stop_on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: object) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
