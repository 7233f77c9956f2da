"""``create_app``: the FastAPI application with its lifespan (pool, alert listener and,
optionally, the gateway+rules pipeline in the same process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter, FastAPI, HTTPException, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api import errors, push, redaction
from api.channels import EmailChannel, PushChannel
from api.clock import system_clock
from api.db import open_pool
from api.escalation import EscalationWatch, notify_no_board
from api.fanout import AlertFanout
from api.headers import SecurityHeaders
from api.revocation import AccountWatch
from api.routes import (
    admin,
    alarm_load,
    alerts,
    auth,
    backtest,
    bases,
    boards,
    bridges,
    experience,
    exports,
    health,
    layout_changes,
    oidc,
    privacy,
    reports,
    roster,
    rounds,
    site_import,
    sites,
    staff,
    stream,
    totp,
)
from api.routes import push as push_routes
from api.security import AddressLimiter
from core.errors import NatteroError
from core.process import freeze_startup_objects
from core.settings import Settings

log = logging.getLogger(__name__)

# What the board cannot work without; the other pages and scripts come with them.
BOARD_FILES = ("index.html", "login.html", "js/board.js", "js/api.js", "css/board.css")
PAGES = frozenset({"index", "login", "admin", "evaluator", "handover", "alarmload"})
ASSET_FOLDERS = ("js", "css", "img")
# The installed app's files, served from the root: a service worker controls only the
# paths below its own, so /sw.js, never /js/sw.js.
APP_FILES = {"sw.js": "text/javascript", "manifest.webmanifest": "application/manifest+json"}


class DashboardMissing(NatteroError):
    """The board's pages are not installed beside the API (a wheel built without them)."""


def dashboard_dir() -> Path:
    """The installed ``dashboard`` package's folder, checked to hold the board's files.

    Raises ``DashboardMissing`` rather than serving an API without its board: staff
    would see a 404 where the night's alerts should be."""
    try:
        root = files("dashboard")
    except ModuleNotFoundError as err:
        raise DashboardMissing(
            "the night board (package 'dashboard') is not installed beside the API; "
            "reinstall nattero from a wheel or checkout that includes dashboard/") from err
    folder = Path(str(root))
    missing = [name for name in BOARD_FILES if not (folder / name).is_file()]
    if missing:
        raise DashboardMissing(
            f"the night board's files {missing} are missing from {folder}; reinstall "
            f"nattero (pip install nattero-*.whl, or pip install -e . in a checkout)")
    return folder

DESCRIPTION = """Nattero's REST API and live alert stream.

Log in at `POST /api/v1/auth/token` (form `username`, `password`) and send the token as
`Authorization: Bearer ...`. Errors are JSON `{"detail": "<what went wrong>"}`.
The live stream is a WebSocket at `/api/v1/alerts/stream?since=SEQ`; its first message
must be `{"type": "auth", "token": "..."}` (never put a token in a URL). It is not listed
below, as OpenAPI does not describe WebSockets.
"""


class Companion(Protocol):
    """Something that runs beside the API in the same process (the gateway+rules pipeline)."""

    def stop(self) -> None: ...


def create_app(settings: Settings, *,
               companion: Callable[[Settings], Companion] | None = None,
               owns_process: bool = False) -> FastAPI:
    """The app; ``companion`` is started with it and stopped after it (``nattero serve``
    passes the gateway+rules pipeline, so the API never imports the composition root).
    ``owns_process``: the app is the whole process (``nattero serve``), so it may tune the
    process's garbage collector once started (not when embedded, e.g. in tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Again here: uvicorn configures logging after create_app, in some set-ups anew.
        redaction.install()
        pool = open_pool(settings)
        fanout = AlertFanout(settings, pool)
        watch = AccountWatch(pool)
        app.state.pool = pool
        app.state.fanout = fanout
        app.state.account_watch = watch
        sender = push.PushSender(pool, settings)
        app.state.push_sender = sender
        listener = asyncio.create_task(fanout.run(), name="nattero-alert-listener")
        watcher = asyncio.create_task(watch.run(), name="nattero-account-watch")
        pusher = asyncio.create_task(
            push.PushDispatcher(fanout, sender, push.site_namer(pool)).run(),
            name="nattero-push-dispatcher")
        channels = (PushChannel(sender), EmailChannel(pool, settings))
        boards = asyncio.create_task(push.BoardWatch(
            fanout, pool, sender, settings,
            on_silence=lambda site, name, since: notify_no_board(
                pool, channels, settings, site, name, since)).run(),
            name="nattero-board-watch")
        escalator = asyncio.create_task(
            EscalationWatch(pool, channels, settings).run(), name="nattero-escalation")
        running: Companion | None = None
        try:
            if companion is not None:
                running = await run_in_threadpool(companion, settings)
                app.state.pipeline = running
            if owns_process:
                freeze_startup_objects()
            yield
        finally:
            for task in (pusher, boards, escalator, listener, watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if running is not None:
                await run_in_threadpool(running.stop)
            await run_in_threadpool(pool.close)

    app = FastAPI(title="Nattero", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.login_limiter = AddressLimiter()
    app.state.clock = system_clock  # tests move it (api.clock)
    app.state.signing_secret = None  # read from the database on first use (api.deps)
    redaction.install()
    app.state.pipeline = None
    errors.install(app)
    app.add_middleware(SecurityHeaders)

    v1 = APIRouter(prefix="/api/v1")
    for module in (auth, oidc, boards, alerts, stream, sites, admin, backtest, alarm_load, privacy,
                   exports, reports, push_routes, rounds, experience, site_import, bases,
                   layout_changes, staff, roster, totp, bridges):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(health.router)
    _serve_dashboard(app, dashboard_dir())
    return app


def _serve_dashboard(app: FastAPI, folder: Path) -> None:
    """The pages, scripts and styles of the board, and nothing else of its folder (not
    ``package.json``, ``node_modules`` of the tests, or the package's Python files)."""
    for asset in ASSET_FOLDERS:
        app.mount(f"/{asset}", StaticFiles(directory=folder / asset), name=asset)

    async def page(name: str = "index") -> FileResponse:
        if name not in PAGES:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
        return FileResponse(folder / f"{name}.html", media_type="text/html")

    def app_file(name: str, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
        async def serve() -> FileResponse:
            # Always revalidated: a new board version must reach installed tablets at once.
            return FileResponse(folder / name, media_type=media_type,
                                headers={"Cache-Control": "no-cache"})
        return serve

    for name, media_type in APP_FILES.items():
        app.add_api_route(f"/{name}", app_file(name, media_type), methods=["GET", "HEAD"],
                          include_in_schema=False)
    app.add_api_route("/", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/{name}.html", page, methods=["GET", "HEAD"], include_in_schema=False)
