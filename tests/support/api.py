"""The API served by uvicorn in a thread, accounts, tokens and alerts.

The server runs the real app against the test stack once per session; ``restart()`` stops
and starts it on the same port, like httpx's test server. (``tests.support.board`` runs the
API as a process instead, for tests that kill it.)
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.sync.client import ClientConnection, connect

from api.app import create_app
from api.security import AddressLimiter
from api.users import create_user
from core.alerts import AlertChange
from core.settings import Settings, StackInfo, get_settings
from ingest.alerts import record_change
from tests.support.store import unique

PASSWORD = "natten-er-rolig-42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ApiServer:
    """The app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def app(self) -> FastAPI:
        assert self._server is not None
        app = self._server.config.app
        assert isinstance(app, FastAPI)
        return app

    def start(self) -> None:
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port,
                                ws="websockets-sansio", log_level="warning",
                                lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api-server",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.02)
        deadline = time.monotonic() + 20
        while not self.app.state.fanout.ready.is_set():
            assert time.monotonic() < deadline, "the alert listener did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
            self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def api_server(migrated: StackInfo) -> Iterator[ApiServer]:
    server = ApiServer(get_settings())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(api_server: ApiServer) -> ApiServer:
    """The running server, with a fresh per-address login limiter for this test."""
    api_server.app.state.login_limiter = AddressLimiter()
    return api_server


@pytest.fixture
def http(api: ApiServer) -> Iterator[httpx.Client]:
    # Programs' tests read the English alternative of the error messages; the Danish
    # default (no Accept-Language) is tested in tests/test_report.py.
    with httpx.Client(base_url=api.url, timeout=10,
                      headers={"Accept-Language": "en"}) as client:
        yield client


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    role: str


@pytest.fixture
def make_user(db: psycopg.Connection) -> Callable[..., Account]:
    """Create an account (password ``PASSWORD``) for a role and its sites."""

    def make(role: str, *sites: str) -> Account:
        username = unique(role)
        create_user(db, username, PASSWORD, role, list(sites))
        return Account(username, PASSWORD, role)

    return make


@contextlib.contextmanager
def open_stream(ws_url: str, token: str, since: int | None = None
                ) -> Iterator[ClientConnection]:
    """Open the live stream and send the token in its first message, as the board does."""
    query = f"?since={since}" if since is not None else ""
    with connect(f"{ws_url}/api/v1/alerts/stream{query}", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        yield ws


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token_for(http: httpx.Client) -> Callable[[Account], str]:
    """Log in over HTTP; returns the bearer token."""

    def login(account: Account) -> str:
        response = http.post("/api/v1/auth/token",
                             data={"username": account.username, "password": account.password})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    return login


@pytest.fixture
def headers_for(token_for: Callable[[Account], str]) -> Callable[[Account], dict[str, str]]:
    """Log in over HTTP; returns the Authorization header."""
    return lambda account: bearer(token_for(account))


@pytest.fixture
def raise_alert(db: psycopg.Connection) -> Callable[..., int]:
    """Raise an open alert through the store's change path, as the rules engine does;
    returns its id."""

    def raise_(site: str, room: str = "f1", rule: str = "left_flat", severity: str = "normal",
               device: str | None = None, call: bool = True) -> int:
        """``call=False`` raises a quiet situation (shown quietly, never sounded)."""
        now = datetime.now(UTC)
        with db.transaction():
            row = db.execute(
                "INSERT INTO alerts (site, room, device, rule, severity, episode_key, first_ts,"
                " last_ts, detail, called_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', %s) "
                "RETURNING id",
                (site, room, device, rule, severity, unique(f"{site}:{room}:{rule}"), now, now,
                 now if call else None),
            ).fetchone()
            assert row is not None
            record_change(db, int(row[0]), AlertChange.RAISED)
        return int(row[0])

    return raise_
