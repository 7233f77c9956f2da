"""Several API processes behind HAProxy: a board whose process dies loses nothing.

Issue 18 §2, on the real parts: Debian's haproxy with ``deploy/haproxy/nattero.cfg``, two
`nattero serve --no-pipeline`-style API processes (the real app, each with its own
LISTEN), and a board's WebSocket through the balancer. The process serving the board is
killed with SIGKILL; an alert is raised while the board is cut off; the board reconnects
through the same address with ``since`` and gets exactly that change from the other
process, and logs in again there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed

from core.settings import StackInfo
from deploy.balancer import Balancer
from tests.support.api import Account, free_port, open_stream
from tests.support.board import ApiProcess
from tests.support.proxy import CuttableProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def balancer(tmp_path: Path, api_process: Callable[..., ApiProcess]
             ) -> Iterator[tuple[Balancer, ApiProcess, ApiProcess]]:
    first = api_process()
    second = api_process()
    front = Balancer(tmp_path, [("127.0.0.1", first.port), ("127.0.0.1", second.port)],
                     free_port())
    front.start()
    try:
        assert wait_until(lambda: front.up() == {"api1", "api2"}, 20), front.up()
        yield front, first, second
    finally:
        front.stop()


def _login(url: str, account: Account) -> str:
    response = httpx.post(f"{url}/api/v1/auth/token", timeout=10,
                          data={"username": account.username, "password": account.password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_a_board_whose_api_process_dies_reconnects_through_haproxy_and_misses_nothing(
        site: str, db: psycopg.Connection, balancer: tuple[Balancer, ApiProcess, ApiProcess],
        make_user: Callable[..., Account], raise_alert: Callable[..., int]) -> None:
    front, first, second = balancer
    nurse = make_user("staff", site)
    token = _login(front.url, nurse)
    # Which process serves this board: stop the other one's health, so HAProxy (leastconn)
    # must send the stream to ``first``; then bring ``second`` back.
    second.kill()
    assert wait_until(lambda: front.up() == {"api1"}, 20), front.up()
    with open_stream(front.ws_url, token) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello"
        seen = hello["seq"]
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        second.start()
        assert wait_until(lambda: front.up() == {"api1", "api2"}, 20), front.up()
        first.kill()  # the board's process dies: no close frame, as in a crash
        with pytest.raises((ConnectionClosed, TimeoutError)):
            while True:
                ws.recv(timeout=10)
    # Raised while the board is cut off from every process.
    missed = raise_alert(site)
    # The same address, at once: HAProxy redispatches to the live process.
    with open_stream(front.ws_url, token, since=seen) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        change = json.loads(ws.recv(timeout=10))
    assert change["type"] == "change" and change["change"] == "raised"
    assert change["alert"]["id"] == missed and change["seq"] > seen
    # Logging in again also works through the balancer with one process dead.
    assert _login(front.url, nurse)


def test_a_board_stays_connected_through_a_database_outage_and_gets_the_alert_after_it(
        site: str, db: psycopg.Connection, tmp_path: Path, migrated: StackInfo,
        make_user: Callable[..., Account], raise_alert: Callable[..., int]) -> None:
    """The database goes away (as in a failover): every API process fails /readyz and
    HAProxy takes both out. The board's WebSocket must stay open (it was closed, and the
    page came back only after its reconnect pauses, up to 5 s, once the database was
    back), and the alert raised as the database returns reaches it at once."""
    proxy = CuttableProxy.to_database(migrated.database_url)
    apis = [ApiProcess(env={"NATTERO_DATABASE_URL": proxy.url(migrated.database_url)})
            for _ in range(2)]
    front: Balancer | None = None
    try:
        for api in apis:
            api.start()
        front = Balancer(tmp_path, [("127.0.0.1", api.port) for api in apis], free_port())
        front.start()
        balancer = front
        assert wait_until(lambda: balancer.up() == {"api1", "api2"}, 20), balancer.up()
        token = _login(front.url, make_user("staff", site))
        with open_stream(front.ws_url, token) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
            assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
            proxy.cut()
            assert wait_until(lambda: balancer.up() == set(), 20), balancer.up()
            proxy.restore()
            alert = raise_alert(site)
            started = time.monotonic()
            while (message := json.loads(ws.recv(timeout=10)))["type"] == "ping":
                pass
            took = time.monotonic() - started
        assert message["type"] == "change" and message["alert"]["id"] == alert
        assert took < 3.0, f"the alert reached the board {took:.1f} s after the outage"
    finally:
        if front is not None:
            front.stop()
        for api in apis:
            api.stop()
        proxy.close()
