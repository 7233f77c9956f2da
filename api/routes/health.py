"""``/healthz`` (the process answers), ``/readyz`` (database, broker, and the pipeline when
this process runs one), ``/metrics`` (Prometheus text).

Rules behind (``rules.runtime``: a burst whose rules work ran past the writer's budget) do
not make the process unready, since events are still stored and alerts follow, only later;
``/readyz`` names them under ``degraded``."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import datetime
from typing import Literal

import psycopg
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api import security
from api.deps import ConnDep, NowDep, TokenDep, app_signing_secret, authenticate
from api.errors import Refusal
from api.fanout import AlertFanout
from api.users import Role
from core.metrics import WEBSOCKET_CLIENTS
from core.settings import Settings
from ingest.health import ping

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    detail: str
    degraded: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and answering."""
    return Health()


def _database_ok(pool: ConnectionPool) -> None:
    with pool.connection(timeout=CHECK_TIMEOUT_S) as conn:
        ping(conn)


async def _check_database(pool: ConnectionPool) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(_database_ok, pool), CHECK_TIMEOUT_S + 1)
    except Exception as exc:  # any failure means "not ready"; the text says which
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return f"down: {type(exc).__name__}: {first_line}"
    return "ok"


async def _check_broker(host: str, port: int) -> str:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CHECK_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return f"down: cannot connect to {host}:{port} ({type(exc).__name__})"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return "ok"


async def _check_brokers(settings: Settings) -> tuple[str, str | None]:
    """The broker check: ``ok`` while one central broker answers (the gateway listens on
    each), with what is degraded when some do not; ``down: ...`` when none does."""
    brokers = settings.central_brokers()
    results = await asyncio.gather(*(_check_broker(host, port) for host, port in brokers))
    down = [result for result in results if result != "ok"]
    if len(down) == len(results):
        return "; ".join(down), None
    if down:
        return "ok", "; ".join(down)
    return "ok", None


@router.get("/readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "a dependency is down"}})
async def readyz(request: Request) -> JSONResponse:
    """200 when the database and the broker are reachable (and the alert listener and, if
    run here, the gateway are connected); 503 naming what is down."""
    state = request.app.state
    database, (broker, brokers_degraded) = await asyncio.gather(
        _check_database(state.pool), _check_brokers(state.settings))
    checks = {"database": database, "broker": broker}
    fanout: AlertFanout = state.fanout
    checks["alert_listener"] = "ok" if fanout.listening else "down: not listening"
    pipeline = getattr(state, "pipeline", None)
    degraded: dict[str, str] = {}
    if brokers_degraded:
        degraded["brokers"] = f"a central broker is away: {brokers_degraded}"
    if pipeline is not None:
        checks["gateway"] = "ok" if pipeline.gateway.connected else "down: not connected"
        rules = getattr(pipeline, "rules", None)
        behind: dict[str, int] = rules.behind() if rules is not None else {}
        if behind:
            degraded["rules"] = "behind, catching up: " + ", ".join(
                f"{site} ({count} inputs to evaluate)" for site, count in sorted(behind.items()))
    down = [name for name, result in checks.items() if result != "ok"]
    detail = f"not ready: {', '.join(down)} down" if down else "ready"
    if degraded:
        detail += f" (degraded: {', '.join(degraded)})"
    body = Readiness(status="not ready" if down else "ready", checks=checks, detail=detail,
                     degraded=degraded)
    return JSONResponse(body.model_dump(), status_code=503 if down else 200)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}})
def metrics(request: Request, conn: ConnDep, token: TokenDep, now: NowDep) -> Response:
    """Prometheus metrics of this process, for the metrics token (NATTERO_METRICS_TOKEN)
    or an admin's login token."""
    _check_metrics_reader(request, conn, token, now)
    fanout: AlertFanout = request.app.state.fanout
    WEBSOCKET_CLIENTS.set(fanout.subscriber_count)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _check_metrics_reader(request: Request, conn: psycopg.Connection,
                          token: str | None, now: datetime) -> None:
    """The metrics name sites' load and the gateway's state: not for anyone on the network."""
    settings: Settings = request.app.state.settings
    expected = settings.metrics_token
    if token and expected and secrets.compare_digest(token.encode(), expected.encode()):
        return
    if token:
        try:
            user, _claims = authenticate(app_signing_secret(request.app, conn), conn, token,
                                         now)
        except security.TokenError:
            user = None
        if user is not None and user.role == Role.ADMIN:
            return
    raise Refusal(status.HTTP_401_UNAUTHORIZED,
                  "/metrics needs the metrics token (NATTERO_METRICS_TOKEN) or an admin's "
                  "login token as 'Authorization: Bearer ...'",
                  headers={"WWW-Authenticate": "Bearer"})
