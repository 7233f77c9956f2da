"""Escalation to people: a call nobody has taken goes on to the night's second person, then
to the on-call coordinator (the site's roster), and a site without a board at night goes to
the person on duty and the second person.

``EscalationWatch`` looks every ``NATTERO_ESCALATION_CHECK_EVERY_S`` for open calls whose
wait for a step is over (``ingest.roster.due_steps``: the site's policy or the settings'
minutes per severity after the call began). Each step is claimed per channel in
``escalation_steps`` before it is sent, so two API processes never send it twice, then sent
through every channel the person can be reached on (``api.channels``) with retries, and
logged on the alert: ``passed_on`` on its card and a ``passed_on`` change on its timeline,
sent or failed (with the error). An acknowledged or resolved call is never sent on.
Never raises out of a round: the next round, and the next call, still need it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from api.channels import Channel, deliver_with_retry
from api.push import NO_BOARD_BODY, NO_BOARD_TITLE, PushMessage
from core.i18n import localizer, mark
from core.metrics import ESCALATION_STEPS
from core.night_window import NightWindow
from core.settings import Settings
from evaluation.vocabulary import RULES
from ingest import roster as store
from ingest.audit import audit
from ingest.push import silent_sites

log = logging.getLogger(__name__)

__all__ = ["EscalationWatch", "nights_around", "notify_no_board"]

ROLES = {"duty": mark("person on duty"), "second": mark("second person"),
         "coordinator": mark("on-call coordinator")}
CALL_TITLE = mark("Call not taken: {room}")
CALL_BODY = mark("{rule}, {room} at {site}: not taken for {minutes} minutes. "
                 "You are the {role} tonight.")
SEND_THREADS = 8


def nights_around(at: datetime, tz: str, night_spec: str) -> tuple[date, ...]:
    """The nights whose roster answers for ``at``: the night it falls in, else (daytime)
    the coming night, then the last one."""
    window = NightWindow.parse(night_spec, tz)
    night = window.night_of(at)
    if night is not None:
        return (night,)
    day = at.astimezone(window.tz).date()
    return (day, day - timedelta(days=1))


def defaults(settings: Settings) -> dict[str, store.Policy]:
    return {severity: store.Policy(settings.escalation_second_minutes[severity],
                                   settings.escalation_coordinator_minutes[severity])
            for severity in ("normal", "high")
            if severity in settings.escalation_second_minutes
            and severity in settings.escalation_coordinator_minutes}


class _Sites:
    """Sites' names, zones and night windows (read once a round)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.rows = {row[0]: row for row in silent_sites(conn)}

    def name(self, site: str) -> str:
        return str(self.rows[site][1]) if site in self.rows else site

    def nights(self, site: str, at: datetime) -> tuple[date, ...]:
        _, _, tz, start, end, _ = self.rows[site]
        return nights_around(at, tz, f"{start[:5]}-{end[:5]}")


def call_message(due: store.DueStep, site_name: str) -> PushMessage:
    t = localizer("da")
    rule = t.gettext(RULES[due.rule]) if due.rule in RULES else due.rule
    room = due.room_label or due.room
    minutes = (due.due_at - due.called_at).total_seconds() / 60
    return PushMessage(
        key=f"escalation:{due.alert_id}:{due.step}", site=due.site,
        title=t.gettext(CALL_TITLE, room=room),
        body=t.gettext(CALL_BODY, rule=rule, room=room, site=site_name, minutes=t.number(minutes, 0)
                       if minutes >= 1 else t.number(minutes, 1),
                       role=t.gettext(ROLES[due.step])),
        tag=f"alert-{due.alert_id}",
        detail={"alert": due.alert_id, "room": due.room, "room_label": room, "rule": due.rule,
                "severity": due.severity, "step": due.step})


class EscalationWatch:
    """Sends unacknowledged calls on to people (see the module doc)."""

    def __init__(self, pool: ConnectionPool, channels: Sequence[Channel], settings: Settings,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sites: list[str] | None = None) -> None:
        self._pool = pool
        self._channels = channels
        self._settings = settings
        self._now = now
        self._sites = sites

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.escalation_check_every_s)
            try:
                await run_in_threadpool(self.check)
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                log.warning("escalation skipped a round: the database is unavailable (%s)", exc)
            except Exception:
                log.exception("escalation round failed unexpectedly")

    def check(self) -> list[tuple[int, str]]:
        """One round: send every due step; the (alert, step) pairs taken."""
        now = self._now()
        with self._pool.connection() as conn:
            due = store.due_steps(conn, now, defaults(self._settings), self._sites)
            if not due:
                return []
            sites = _Sites(conn)
        # Side by side: a slow mail server retrying one step never delays another call.
        with ThreadPoolExecutor(min(len(due), SEND_THREADS),
                                thread_name_prefix="nattero-escalation") as threads:
            taken = list(threads.map(lambda d: self._take(d, sites), due))
        return [(d.alert_id, d.step) for d, ok in zip(due, taken, strict=True) if ok]

    def _take(self, due: store.DueStep, sites: _Sites) -> bool:
        try:
            return self._send_on(due, sites)
        except Exception:
            log.exception("escalation of alert %d to the %s failed unexpectedly",
                          due.alert_id, due.step)
            return False

    def _send_on(self, due: store.DueStep, sites: _Sites) -> bool:
        with self._pool.connection() as conn:
            roster = store.night_roster(conn, due.site, sites.nights(due.site, due.called_at))
            person = roster.person(due.step) if roster is not None else None
            usable = [c for c in self._channels
                      if person is not None and c.reachable(conn, person, due.site)]
            if not usable:
                # Nobody to send it to is a fact the board must show, not a silence; a site
                # without any roster that night has not taken up escalation: recorded only.
                status = "nobody" if person is None else "unreachable"
                with conn.transaction():
                    if not store.claim_step(conn, due.alert_id, due.step, "none", person,
                                            due.due_at):
                        return False
                    store.finish_step(conn, due.alert_id, due.step, "none", status=status,
                                      attempts=0, error=None)
                    if roster is None:
                        return False
                    self._log(conn, due, {"step": due.step, "channel": "none",
                                          "status": status, "at": self._now().isoformat(),
                                          "attempts": 0, "error": None}, escalate=False)
                log.error("alert %d was not taken, but the %s of %s cannot be reached (%s)",
                          due.alert_id, due.step, due.site, status)
                return True
            claimed = [c for c in usable
                       if store.claim_step(conn, due.alert_id, due.step, c.name, person,
                                           due.due_at)]
        assert person is not None
        if not claimed:
            return False  # another process has it
        message = call_message(due, sites.name(due.site))
        for channel in claimed:
            result = deliver_with_retry(channel, person, message,
                                        self._settings.channel_attempts,
                                        self._settings.channel_retry_s,
                                        wanted=lambda: self._still_open(due.alert_id))
            with self._pool.connection() as conn, conn.transaction():
                store.finish_step(conn, due.alert_id, due.step, channel.name,
                                  status=result.status, attempts=result.attempts,
                                  error=result.error)
                self._log(conn, due, {"step": due.step, "channel": channel.name,
                                      "status": result.status, "at": self._now().isoformat(),
                                      "attempts": result.attempts, "error": result.error},
                          escalate=result.status == "sent")
                audit(conn, "system", f"escalation.{result.status}", due.site,
                      str(due.alert_id), {"step": due.step, "channel": channel.name,
                                          "to": person, "attempts": result.attempts})
        ESCALATION_STEPS.labels(step=due.step).inc()
        return True

    def _still_open(self, alert_id: int) -> bool:
        """Whether the call is still not taken: one taken while a channel was retrying is
        not sent on (its step ends "cancelled")."""
        with self._pool.connection() as conn:
            return store.call_still_open(conn, alert_id)

    def _log(self, conn: psycopg.Connection, due: store.DueStep, entry: dict[str, Any],
             escalate: bool) -> None:
        store.record_passed_on(conn, due.alert_id, entry, self._now(), escalate)


def notify_no_board(pool: ConnectionPool, channels: Sequence[Channel], settings: Settings,
                    site: str, site_name: str, silent_since: datetime) -> list[str]:
    """Tell the night's person on duty and second person that no board of ``site`` is
    connected ("Ingen nattavle er forbundet på ..."), on every channel but Web Push (the
    site's staff have had that push already); who was told."""
    t = localizer("da")
    message = PushMessage(
        key=f"no_board:{site}:{silent_since.isoformat()}", site=site,
        title=t.gettext(NO_BOARD_TITLE), body=t.gettext(NO_BOARD_BODY, site=site_name),
        tag=f"no-board-{site}", detail={"kind": "no_board"})
    with pool.connection() as conn:
        sites = _Sites(conn)
        roster = store.night_roster(conn, site, sites.nights(site, silent_since))
        people = [p for p in dict.fromkeys((roster.duty, roster.second) if roster else ())
                  if p is not None]
        targets = [(person, c) for person in people for c in channels
                   if c.name != "push" and c.reachable(conn, person, site)]
    told: list[str] = []
    for person, channel in targets:
        result = deliver_with_retry(channel, person, message, settings.channel_attempts,
                                    settings.channel_retry_s)
        with pool.connection() as conn:
            audit(conn, "system", f"board.none_connected.{result.status}", site, person,
                  {"channel": channel.name, "attempts": result.attempts,
                   "error": result.error})
        if result.status == "sent":
            told.append(person)
    if not people:
        log.error("no night board at %s, and no roster tonight to tell a person by phone",
                  site)
    return told
