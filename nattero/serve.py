"""``nattero serve``: the API, and by default the gateway+rules pipeline, in one process."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from core.settings import get_settings


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    pipeline: Annotated[bool, typer.Option(
        "--pipeline/--no-pipeline", help="also run the gateway and rules in this process")] = True,
) -> None:
    """Run the API (and by default the gateway and rules) until Ctrl-C."""
    import uvicorn

    from api.app import create_app
    from nattero.pipeline import start_pipeline

    try:
        settings = get_settings()
        settings.resolved_database_url()
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))
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
                proxy_headers=False, log_config=log_config, access_log=False)
