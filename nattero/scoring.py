"""Scoring a simulation against the store: the alerts it raised, once the pipeline caught up.

``fetch_alerts(settings)`` gives ``nattero simulate`` (and tests, and the bench) its alert
source: it waits until every distinct event the simulation sent is stored, then until the
rules engine's timers have settled, and reads the ``alerts`` table as
``simulators.ground_truth.AlertRecord``s; it only reads. ``answer_calls(settings)`` is the
one writer: it stores simulated staff's answers (``nattero simulate --respond``) through the
same change path the board's "Jeg tager den" and "Afslut" use, with the simulated times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg

from ingest import scoring as stored
from simulators.errors import SimulatorError
from simulators.ground_truth import AlertRecord

if TYPE_CHECKING:
    from core.settings import Settings
    from simulators.command import SentEvent, SimulationResult
    from simulators.responses import CallAnswer

__all__ = ["CatchUpError", "StoredAlerts", "answer_calls", "fetch_alerts"]

# Who took the calls of a simulation: a name that says so on the board and in the report.
SIMULATED_STAFF = "simuleret-nattevagt"

# Timers fire on the rules engine's ticking thread (every 0.2 s); an alert count that has
# not moved for this long after the last event is stored is taken as final.
SETTLE_S = 1.5


class CatchUpError(SimulatorError):
    """The pipeline did not store every event sent within the time allowed."""


class StoredAlerts:
    """Reads a site's alerts from the store; waits for the pipeline first (``CatchesUp``)."""

    def __init__(self, settings: Settings, *, poll_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._poll_s = poll_s
        self._clock = clock
        self.caught_up_at: float | None = None   # clock() when the last event was stored

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self._settings.resolved_database_url(), autocommit=True)

    def __call__(self, site: str, start: datetime, end: datetime) -> list[AlertRecord]:
        """Alerts of ``site`` whose first trigger lies in [start, end), oldest first."""
        with self._connect() as conn:
            triggers = stored.alerts_triggered(conn, site, start, end)
        return [AlertRecord(site=t.site, room=t.room, rule=t.rule, ts=t.first_ts,
                            called_at=t.called_at, id=t.id, severity=t.severity)
                for t in triggers]

    def wait_caught_up(self, result: SimulationResult, timeout: float = 300.0) -> None:
        """Wait until every event sent is stored, then until the alerts stop changing."""
        deadline = self._clock() + timeout
        with self._connect() as conn:
            missing = dict(result.sent_events)
            while missing:
                for site, sent in list(missing.items()):
                    stored = stored_count(conn, site, sent)
                    if stored >= len(sent):
                        del missing[site]
                if not missing:
                    break
                if self._clock() > deadline:
                    site, sent = next(iter(missing.items()))
                    raise CatchUpError(
                        f"after {timeout:.0f} s the store holds {stored_count(conn, site, sent)}"
                        f" of the {len(sent)} events sent for site {site!r}; is the gateway "
                        f"(`nattero serve` or `nattero pipeline`) running for these sites?")
                time.sleep(self._poll_s)
            self.caught_up_at = self._clock()
            self._settle(conn, result.sites, deadline)

    def _settle(self, conn: psycopg.Connection, sites: list[str], deadline: float) -> None:
        last, since = None, self._clock()
        while self._clock() < deadline:
            progress = stored.alert_progress(conn, sites)
            if progress != last:
                last, since = progress, self._clock()
            elif self._clock() - since >= SETTLE_S:
                return
            time.sleep(self._poll_s)


def stored_count(conn: psycopg.Connection, site: str, sent: list[SentEvent]) -> int:
    """How many of the events sent (device, id, ts) the store holds."""
    if not sent:
        return 0
    return stored.count_stored_events(
        conn, site, [stored.SentKey(e.device, e.id, datetime.fromisoformat(e.ts)) for e in sent])


def fetch_alerts(settings: Settings) -> StoredAlerts:
    """The alert source of ``nattero simulate``: the store the pipeline writes to."""
    return StoredAlerts(settings)


def answer_calls(settings: Settings) -> Callable[[Sequence[CallAnswer]], int]:
    """Stores simulated staff's answers: each call taken and resolved at its planned time,
    with its outcome, as ``SIMULATED_STAFF``. A call already taken or resolved (the same
    nights simulated again, or a person at a board) is left as it is. Returns how many
    were stored."""
    from ingest import alerts as stored_alerts

    def store(answers: Sequence[CallAnswer]) -> int:
        stored = 0
        with psycopg.connect(settings.resolved_database_url(), autocommit=True) as conn:
            for answer in answers:
                try:
                    with conn.transaction():
                        stored_alerts.acknowledge(conn, answer.alert_id, SIMULATED_STAFF,
                                                  now=answer.taken_at)
                        stored_alerts.resolve(conn, answer.alert_id, SIMULATED_STAFF,
                                              answer.outcome, now=answer.resolved_at)
                except (stored_alerts.IllegalTransition, stored_alerts.AlertNotFound):
                    continue
                stored += 1
        return stored

    return store
