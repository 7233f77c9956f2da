"""``WS /api/v1/alerts/stream``: every alert change of the caller's sites, live, in order.

Browsers cannot set headers on a WebSocket, and a token in the URL ends up in logs, so
the board sends its token in its first message, ``{"type": "auth", "token": "..."}``,
within ``AUTH_WAIT_S`` of opening ``/api/v1/alerts/stream[?since=N]``. A ``?token=`` in the
URL is refused. Then the server sends (JSON text frames), in this order:

1. ``{"type": "hello", "seq": W, "server_time": ...}`` - W is the stream position now.
2. Without ``since``: ``{"type": "snapshot", "seq": W, "alerts": [open and acknowledged]}``.
   With ``since=N``: every visible change with N < seq <= W as a ``change`` message.
3. Live ``{"type": "change", "seq": s, "change": "raised|acknowledged|...", "alert": {...}}``
   with strictly increasing ``seq``.
4. ``{"type": "ping", "seq": W, "server_time": ...}`` after 10 s without a message; W is
   then a safe ``since`` for a reconnect (nothing visible between was missed).

Close codes: 4401 not logged in / token expired or revoked (also while the stream is
open: a password change, disable, role change or delete of the account, or the revoke of
an enrolled board, closes it within about a second, ``api.revocation``), 4403 role
without live data, 1013 the server is not ready or the board fell too far behind
(reconnect with ``since``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api import security
from api.deps import app_signing_secret, authenticate
from api.fanout import PAGE, AlertFanout, Subscriber, published_change
from api.revocation import AccountWatch
from api.users import Role, User
from core.alerts import AlertStatus
from core.metrics import WEBSOCKET_CLIENTS
from ingest import alerts
from ingest.alerts import AlertSnapshot, StoredAlertChange

router = APIRouter(tags=["alerts"])

PING_S = 10.0
READY_WAIT_S = 5.0
AUTH_WAIT_S = 10.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _authenticate(app: Any, token: str) -> tuple[User, security.TokenClaims]:
    pool: ConnectionPool = app.state.pool
    with pool.connection() as conn:
        return authenticate(app_signing_secret(app, conn), conn, token, app.state.clock())


AUTH_HOWTO = 'send {"type": "auth", "token": "..."} as the first message'


async def _first_message_token(websocket: WebSocket) -> str:
    """The token of the board's first message; TokenError if it is not an auth message."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    try:
        frame = json.loads(message.get("text") or "")
    except ValueError:
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != "auth":
        raise security.TokenError(f"not logged in: {AUTH_HOWTO}")
    token = frame.get("token")
    if not isinstance(token, str) or not token:
        raise security.TokenError(f"the auth message has no token: {AUTH_HOWTO}")
    return token


def _snapshot(pool: ConnectionPool, sites: list[str] | None) -> list[AlertSnapshot]:
    with pool.connection() as conn:
        found = alerts.list_alerts(conn, sites, AlertStatus.OPEN, limit=5000)
        found += alerts.list_alerts(conn, sites, AlertStatus.ACKNOWLEDGED, limit=5000)
    return sorted(found, key=lambda alert: alert.first_ts)


def _snapshot_frame(seq: int, snapshot: list[AlertSnapshot]) -> str:
    """The board's ``snapshot`` message, compact JSON."""
    return json.dumps({"type": "snapshot", "seq": seq,
                       "alerts": [alert.to_json() for alert in snapshot]},
                      separators=(",", ":"))


def _missed(pool: ConnectionPool, since: int,
            sites: list[str] | None) -> list[StoredAlertChange]:
    with pool.connection() as conn:
        return alerts.changes_since(conn, since, sites, limit=PAGE)


@router.websocket("/alerts/stream")
async def alert_stream(websocket: WebSocket, since: int | None = None) -> None:
    """Live alert changes; see the module docstring for the messages."""
    # Accept first: a close code (4401/4403) only reaches the client on an open socket.
    await websocket.accept()
    app = websocket.app
    if "token" in websocket.query_params:
        # Already in some proxy's log by now; refusing makes a client that still does it
        # fail loudly instead of leaking quietly every night.
        await websocket.close(CLOSE_UNAUTHENTICATED, f"no token in the URL: {AUTH_HOWTO}")
        return
    try:
        async with asyncio.timeout(AUTH_WAIT_S):
            token = await _first_message_token(websocket)
        user, claims = await run_in_threadpool(_authenticate, app, token)
    except TimeoutError:
        await websocket.close(CLOSE_UNAUTHENTICATED, f"no auth message in time: {AUTH_HOWTO}")
        return
    except WebSocketDisconnect:
        return
    except security.TokenError as exc:
        await websocket.close(CLOSE_UNAUTHENTICATED, str(exc)[:120])
        return
    except (psycopg.Error, OSError):
        await websocket.close(CLOSE_TRY_AGAIN, "database unavailable; reconnect shortly")
        return
    if user.role not in (Role.ADMIN, Role.STAFF):
        await websocket.close(CLOSE_FORBIDDEN, "live alerts need a staff account")
        return
    fanout: AlertFanout = app.state.fanout
    try:
        await asyncio.wait_for(fanout.ready.wait(), READY_WAIT_S)
    except TimeoutError:
        await websocket.close(CLOSE_TRY_AGAIN, "alert stream not ready; reconnect shortly")
        return
    authenticated_at = time.monotonic()
    subscriber = fanout.subscribe(user.visible_sites)
    watch: AccountWatch = app.state.account_watch
    watch.watching += 1
    guard = asyncio.ensure_future(
        _close_when_revoked(websocket, watch, claims, authenticated_at, subscriber))
    WEBSOCKET_CLIENTS.inc()
    try:
        await _serve(websocket, app.state.pool, fanout, subscriber, user, since)
    except (WebSocketDisconnect, psycopg.Error, OSError, RuntimeError):
        pass  # the board went away, or the database did: the board reconnects with `since`
    finally:
        guard.cancel()
        watch.watching -= 1
        fanout.unsubscribe(subscriber)
        WEBSOCKET_CLIENTS.dec()


async def _close_when_revoked(websocket: WebSocket, watch: AccountWatch,
                              claims: security.TokenClaims, authenticated_at: float,
                              subscriber: Subscriber) -> None:
    """Close the stream (4401) as soon as the watch sees its token revoked."""
    while True:
        await watch.next_read()
        if watch.revoked(claims, authenticated_at):
            # Already closing raises: the board is gone either way.
            with contextlib.suppress(RuntimeError, OSError):
                await websocket.close(CLOSE_UNAUTHENTICATED,
                                      "this login was revoked or the account changed; "
                                      "log in again")
            # Then wake the sender (which cancels this task, so not before the close).
            subscriber.hang_up()
            return


async def _serve(websocket: WebSocket, pool: ConnectionPool, fanout: AlertFanout,
                 subscriber: Subscriber, user: User, since: int | None) -> None:
    start = subscriber.start_seq
    await websocket.send_json({"type": "hello", "seq": start, "server_time": _now()})
    last_sent = start
    # Changes of an alert the snapshot already shows in a newer state are not re-sent.
    shown: dict[int, int] = {}
    if since is None or since < 0:
        snapshot = await run_in_threadpool(_snapshot, pool, user.visible_sites)
        shown = {alert.id: alert.seq for alert in snapshot}
        await websocket.send_text(_snapshot_frame(start, snapshot))
    else:
        after = since
        while after < start:
            rows = await run_in_threadpool(_missed, pool, after, user.visible_sites)
            rows = [row for row in rows if row.seq <= start]
            for row in rows:
                await websocket.send_text(published_change(row).message)
            if not rows or len(rows) < PAGE:
                break
            after = rows[-1].seq
    await _live(websocket, fanout, subscriber, last_sent, shown)


async def _live(websocket: WebSocket, fanout: AlertFanout, subscriber: Subscriber,
                last_sent: int, shown: dict[int, int]) -> None:
    # One plain ``queue.get`` per change (no task or wait-set per message): with 200 boards
    # each change wakes 200 of these loops, so their cost is the fan-out's latency.
    reader = asyncio.ensure_future(_until_disconnect(websocket, subscriber))
    try:
        while True:
            try:
                async with asyncio.timeout(PING_S):
                    change = await subscriber.queue.get()
            except TimeoutError:
                if subscriber.gone:
                    return
                if subscriber.overflowed:
                    await websocket.close(CLOSE_TRY_AGAIN, "too far behind; reconnect with since")
                    return
                await websocket.send_json({"type": "ping", "seq": max(last_sent, fanout.seq),
                                           "server_time": _now()})
                continue
            if change is None:
                return  # the board went away
            if change.seq <= last_sent or change.seq <= shown.get(change.alert_id, 0):
                continue
            await websocket.send_text(change.message)
            last_sent = change.seq
            if subscriber.overflowed and subscriber.queue.empty():
                await websocket.close(CLOSE_TRY_AGAIN, "too far behind; reconnect with since")
                return
    finally:
        reader.cancel()


async def _until_disconnect(websocket: WebSocket, subscriber: Subscriber) -> None:
    """Read and ignore what the board sends, until it goes away; then wake the sender."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, OSError, RuntimeError):
        return
    finally:
        subscriber.hang_up()
