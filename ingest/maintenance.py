"""Periodic store maintenance in a background thread: rollup refresh and retention (raw
events and dead letters, then resolved alerts, the audit log and the rollups).

``Maintenance(dsn, every_s=60)``: every round refreshes the 15-minute rollups
(``ingest.rollups``); every ``reconcile_every_s`` (hourly) the refresh also re-aggregates the
last 48 hours by event time; every ``retention_every_s`` (hourly) it applies retention
(``ingest.retention``). A database error is logged and the round retried at the next tick
(with a growing pause, at most ``every_s * 5``): the thread never dies of one and never
takes the process down. The process that owns it (``nattero serve``/``nattero pipeline``)
starts and stops it; ``nattero maintenance run`` runs one round in the foreground.

Several processes may run it against one database: the rounds are serialised by an
advisory lock inside the database.

``nattero maintenance loop`` (or ``python -m ingest.maintenance loop``) runs the same loop in
the foreground, for a deployment that runs maintenance as its own service
(``NATTERO_MAINTENANCE=off`` for ``serve``/``pipeline``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg

from ingest import retention, rollups

log = logging.getLogger(__name__)


class Maintenance:
    def __init__(self, dsn: str, every_s: float = 60, *, retention_every_s: float = 3600,
                 reconcile_every_s: float = 3600,
                 reconcile_hours: int = rollups.DEFAULT_RECONCILE_HOURS,
                 retention_enabled: bool = True) -> None:
        self._dsn = dsn
        self.every_s = every_s
        self.retention_every_s = retention_every_s
        self.reconcile_every_s = reconcile_every_s
        self.reconcile_hours = reconcile_hours
        self.retention_enabled = retention_enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retention = float("-inf")
        self._last_reconcile = time.monotonic()  # the first refresh is complete anyway
        self.rounds = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_report: dict[str, Any] | None = None

    # -- one round ----------------------------------------------------------------------
    def run_once(self, *, retention_now: bool | None = None, reconcile_now: bool | None = None,
                 rebuild: bool = False) -> dict[str, Any]:
        """Refresh the rollups and, when due, apply retention. Raises on database errors."""
        now = time.monotonic()
        do_reconcile = (now - self._last_reconcile >= self.reconcile_every_s
                        if reconcile_now is None else reconcile_now)
        do_retention = self.retention_enabled and (
            now - self._last_retention >= self.retention_every_s
            if retention_now is None else retention_now)
        report: dict[str, Any] = {}
        with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5,
                             application_name="nattero-maintenance") as conn:
            result = rollups.refresh(
                conn, reconcile_hours=self.reconcile_hours if do_reconcile else None,
                rebuild=rebuild)
            report["rollup"] = result.as_dict()
            if do_reconcile:
                self._last_reconcile = now
            if do_retention:
                report["retention"] = retention.apply_retention(conn).as_dict()
                report["record_retention"] = retention.expire_records(conn).as_dict()
                self._last_retention = now
        self.rounds += 1
        self.last_report = report
        return report

    # -- the thread -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nattero-maintenance",
                                        daemon=True)
        self._thread.start()
        log.info("maintenance started: rollup refresh every %s s, retention every %s s",
                 self.every_s, self.retention_every_s if self.retention_enabled else "never")

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("maintenance: the round in progress did not end within %s s", timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop_soon(self) -> None:
        """Ask the loop to end after the round in progress (any thread, a signal handler)."""
        self._stop.set()

    def run_forever(self) -> None:
        """The loop of ``start`` in the calling thread, until ``stop_soon``."""
        self._stop.clear()
        self._run()

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                self.run_once()
            except Exception as exc:  # a round must never kill the thread
                self.failures += 1
                self.consecutive_failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc).strip()}"
                delay = min(self.every_s * 5, self.every_s * self.consecutive_failures)
                log.error("maintenance round failed (%d in a row), retrying in %.0f s: %s",
                          self.consecutive_failures, delay, self.last_error,
                          exc_info=not isinstance(exc, psycopg.OperationalError))
                continue
            if self.consecutive_failures:
                log.info("maintenance recovered after %d failed round(s)",
                         self.consecutive_failures)
            self.consecutive_failures = 0
            self.last_error = None
            delay = self.every_s
