"""The replicated database (``deploy.ha``) beside the test stack, and a night board that
keeps every change it receives, for the failover and chaos tests."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from websockets.exceptions import WebSocketException

from core.settings import Settings, get_settings, sqlalchemy_url
from deploy import ha
from ingest.migrate import upgrade
from tests.support.api import open_stream


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def replicated_database(name: str, port_offset: int) -> Iterator[tuple[Settings, str]]:
    """A monitor and two nodes, migrated, in ``<test state dir>/<name>`` on the test
    stack's PostgreSQL port + ``port_offset`` (+ 10..12), or the next three ports free;
    removed afterwards."""
    base = get_settings()
    # These ports lie in the kernel's range for outgoing connections: one of the suite's
    # many connections may hold one just now (seen once), so take three that are free.
    while not all(port_is_free(base.pg_port + port_offset + ha.MONITOR_PORT_OFFSET + n)
                  for n in range(3)):
        port_offset += 3
    settings = base.model_copy(update={"state_dir": base.state_dir / name,
                                       "pg_port": base.pg_port + port_offset})
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    try:
        url = ha.up(settings, secrets.token_urlsafe(16))
        upgrade(sqlalchemy_url(url))
        yield settings, url
    finally:
        ha.down(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def count(url: str, sql: str, *args: object) -> int:
    """One number from the database, or -1 while no node takes connections."""
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(sql, args).fetchone()
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return -1


class Board:
    """A night board's live stream, in a thread: it reconnects with ``since`` when its
    connection is closed (as the page does), and keeps every change it receives with the
    monotonic time it arrived."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.changes: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self._ws_url = ws_url
        self._token = token
        self._seq: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with open_stream(self._ws_url, self._token, since=self._seq) as ws:
                    while not self._stop.is_set():
                        try:
                            message = json.loads(ws.recv(timeout=1))
                        except TimeoutError:
                            continue
                        if message["type"] in ("hello", "snapshot") and self._seq is None:
                            self._seq = message["seq"]
                        elif message["type"] == "change":
                            self.changes.append(message)
                            self.arrived.append(time.monotonic())
                            self._seq = message["seq"]
            # Closed, refused, or refused by the balancer while no process is up (a 503).
            except (WebSocketException, OSError, TimeoutError):
                time.sleep(0.5)

    def raised(self, rule: str) -> list[dict[str, Any]]:
        """The alerts of ``rule`` this board was told were raised, in order."""
        return [c["alert"] for c in self.changes
                if c["change"] == "raised" and c["alert"]["rule"] == rule]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
