"""Web Push (RFC 8030, payload encrypted per RFC 8291 ``aes128gcm``, VAPID per RFC 8292)
to the boards and phones that subscribed, and the watch that notices a site without a
board during the night.

- ``PushSender`` sends one push to every subscription allowed to see a site (pywebpush),
  retrying a failure and recording it (log, metric, ``push_deliveries``); a subscription
  the push service says is gone (404/410) is deleted. Never drops a push silently.
- ``PushDispatcher`` follows the alert fan-out like a board and pushes every call (an
  open alert raised at a calling level, escalated or re-announced) with its room and rule,
  in Danish: a board in the background, or a phone in a pocket, still hears the call.
- ``BoardWatch`` records where the live boards are (``board_presence``) and, during a
  site's night window, when no board of the site has had a live WebSocket for
  ``NATTERO_BOARD_SILENCE_MINUTES``: a metric, the audit log, the site's health (the
  pre-shift check and the board's banner) and a push "ingen nattavle er forbundet på ...".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import requests
from psycopg_pool import ConnectionPool, PoolTimeout
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush
from starlette.concurrency import run_in_threadpool

from api.fanout import AlertFanout, Subscriber
from core.alerts import AlertChange, AlertStatus, Severity
from core.i18n import localizer, mark
from core.metrics import BOARD_SILENCES, PUSH_FAILURES, PUSH_GONE, PUSH_SENT
from core.night_window import NightWindow
from core.settings import Settings
from evaluation.vocabulary import RULES
from ingest import push as store
from ingest.audit import audit

log = logging.getLogger(__name__)

__all__ = ["BoardWatch", "PushDispatcher", "PushMessage", "PushSender"]

#: Changes of an open call that must reach a person now.
PUSHED_CHANGES = frozenset({AlertChange.RAISED, AlertChange.ESCALATED, AlertChange.REANNOUNCED})
GONE = frozenset({404, 410})
DELIVERY_THREADS = 8

CALL_TITLE = mark("Alert: {room}")
CALL_BODY = mark("{rule} at {site}")
NO_BOARD_TITLE = mark("No night board connected")
NO_BOARD_BODY = mark("No night board is connected at {site}")


@dataclass(frozen=True, slots=True)
class PushMessage:
    """What the service worker shows (``dashboard/sw.js``); JSON, encrypted on the wire."""

    key: str  # what is pushed, once per subscription (``push_deliveries.key``)
    site: str
    title: str
    body: str
    tag: str
    detail: dict[str, Any]

    def payload(self) -> str:
        return json.dumps({"title": self.title, "body": self.body, "tag": self.tag,
                           "site": self.site, **self.detail}, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class PushResult:
    sent: int = 0
    failed: int = 0
    gone: int = 0


class PushSender:
    """Sends a ``PushMessage`` to a site's subscriptions. Blocking (requests): call it in a
    thread (``run_in_threadpool``), never on the event loop."""

    def __init__(self, pool: ConnectionPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._vapid: Vapid02 | None = None

    def _signer(self, conn: psycopg.Connection) -> Vapid02:
        if self._vapid is None:
            keys = store.vapid_keys(conn)
            self._vapid = Vapid02.from_raw(keys.private_key.encode())
        return self._vapid

    def send(self, message: PushMessage, username: str | None = None) -> PushResult:
        """Push ``message`` to the site's subscriptions (``username``: only that account's)."""
        with self._pool.connection() as conn:
            signer = self._signer(conn)
            targets = [sub for sub in store.recipients(conn, message.site, username)
                       if store.claim_delivery(conn, sub.id, message.key, message.site)]
        if not targets:
            return PushResult()
        # Side by side: one dead or slow push service never delays another nurse's push.
        with ThreadPoolExecutor(min(len(targets), DELIVERY_THREADS),
                                thread_name_prefix="nattero-push") as pool:
            outcomes = list(pool.map(lambda sub: self._deliver_safely(signer, sub, message),
                                     targets))
        return PushResult(outcomes.count("sent"), outcomes.count("failed"),
                          outcomes.count("gone"))

    def _deliver_safely(self, signer: Vapid02, subscription: store.PushSubscription,
                        message: PushMessage) -> str:
        try:
            return self._deliver(signer, subscription, message)
        except Exception as exc:
            # Whatever went wrong with this one, it is recorded and the others still go.
            log.exception("push %s to subscription %d of %s failed unexpectedly",
                          message.key, subscription.id, subscription.username)
            PUSH_FAILURES.inc()
            with contextlib.suppress(psycopg.Error, PoolTimeout, OSError), \
                    self._pool.connection() as conn:
                store.finish_delivery(conn, subscription.id, message.key, sent=False,
                                      attempts=1, error=f"{type(exc).__name__}: {exc}"[:500])
            return "failed"

    def _deliver(self, signer: Vapid02, subscription: store.PushSubscription,
                 message: PushMessage) -> str:
        attempts = self._settings.push_attempts
        error = ""
        attempt = 0
        for attempt in range(1, attempts + 1):
            try:
                webpush(subscription.info(), message.payload(), vapid_private_key=signer,
                        vapid_claims={"sub": self._settings.push_contact},
                        ttl=self._settings.push_ttl_s, timeout=self._settings.push_timeout_s,
                        headers={"Urgency": "high", "Topic": message.tag[:32]})
            except WebPushException as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status in GONE:
                    # The browser unsubscribed or the subscription expired: it never comes back.
                    with self._pool.connection() as conn:
                        store.forget_subscription(conn, subscription_id=subscription.id)
                    PUSH_GONE.inc()
                    log.info("push subscription %d of %s is gone (%s); removed",
                             subscription.id, subscription.username, status)
                    return "gone"
                if exc.response is None:
                    # Refused before sending (e.g. keys no browser makes): no retry helps.
                    error = f"push not sent: {exc.message}"[:500]
                    break
                error = f"push service answered {status}: {exc.message}"[:500]
            except requests.RequestException as exc:
                error = f"push service unreachable: {type(exc).__name__}: {exc}"[:500]
            except ValueError as exc:
                # Keys the browser could never have made (refused at subscribe since): no
                # retry can help; recorded as failed.
                error = f"subscription keys unusable: {exc}"[:500]
                break
            else:
                with self._pool.connection() as conn:
                    store.finish_delivery(conn, subscription.id, message.key, sent=True,
                                          attempts=attempt, error=None)
                PUSH_SENT.inc()
                return "sent"
            log.warning("push %s to subscription %d of %s failed (attempt %d of %d): %s",
                        message.key, subscription.id, subscription.username, attempt,
                        attempts, error)
            if attempt < attempts:
                time.sleep(self._settings.push_retry_s * 2 ** (attempt - 1))
        with self._pool.connection() as conn:
            store.finish_delivery(conn, subscription.id, message.key, sent=False,
                                  attempts=attempt, error=error)
        PUSH_FAILURES.inc()
        log.error("push %s to subscription %d of %s given up after %d attempts: %s",
                  message.key, subscription.id, subscription.username, attempt, error)
        return "failed"


def call_message(alert: dict[str, Any], site_name: str) -> PushMessage:
    """The push of a call, in Danish: its room and rule (rooms, never people)."""
    t = localizer("da")
    rule = str(alert["rule"])
    rule_text = t.gettext(RULES[rule]) if rule in RULES else rule
    room = str(alert.get("room_label") or alert["room"])
    return PushMessage(
        key=f"alert:{alert['id']}:{alert['seq']}", site=str(alert["site"]),
        title=t.gettext(CALL_TITLE, room=room),
        body=t.gettext(CALL_BODY, rule=rule_text, site=site_name),
        tag=f"alert-{alert['id']}",
        detail={"alert": alert["id"], "room": alert["room"], "room_label": room,
                "rule": rule, "rule_text": rule_text, "severity": alert["severity"]})


def no_board_message(site: str, site_name: str, silent_since: datetime) -> PushMessage:
    t = localizer("da")
    return PushMessage(
        key=f"no_board:{site}:{silent_since.isoformat()}", site=site,
        title=t.gettext(NO_BOARD_TITLE),
        body=t.gettext(NO_BOARD_BODY, site=site_name), tag=f"no-board-{site}",
        detail={"kind": "no_board", "silent_since": silent_since.isoformat()})


def is_pushed_call(change: str, alert: dict[str, Any]) -> bool:
    return (change in PUSHED_CHANGES and alert.get("status") == AlertStatus.OPEN
            and alert.get("severity") != Severity.NOTICE and alert.get("called_at") is not None)


class PushDispatcher:
    """Follows the alert fan-out (as an internal subscriber, not a board) and pushes calls."""

    def __init__(self, fanout: AlertFanout, sender: PushSender, site_name: Callable[[str], str]
                 ) -> None:
        self._fanout = fanout
        self._sender = sender
        self._site_name = site_name

    async def run(self) -> None:
        await self._fanout.ready.wait()
        subscriber = self._fanout.subscribe(None, board=False)
        try:
            while True:
                subscriber = self._resubscribe_if_behind(subscriber)
                change = await subscriber.queue.get()
                if change is None:
                    continue
                frame = json.loads(change.message)
                alert = frame["alert"]
                if not is_pushed_call(frame["change"], alert):
                    continue
                try:
                    name = await run_in_threadpool(self._site_name, alert["site"])
                    await run_in_threadpool(self._sender.send, call_message(alert, name))
                except (psycopg.Error, PoolTimeout, OSError) as exc:
                    log.error("push of alert %s (%s) not sent: the database is unavailable "
                              "(%s)", alert["id"], frame["change"], exc)
                except Exception:
                    # The dispatcher must outlive any one push: the next call still goes out.
                    log.exception("push of alert %s (%s) failed unexpectedly", alert["id"],
                                  frame["change"])
        finally:
            self._fanout.unsubscribe(subscriber)

    def _resubscribe_if_behind(self, subscriber: Subscriber) -> Subscriber:
        if not subscriber.overflowed:
            return subscriber
        log.error("push dispatcher fell behind the alert stream; changes up to seq %d were "
                  "not pushed (the boards still show them)", self._fanout.seq)
        self._fanout.unsubscribe(subscriber)
        return self._fanout.subscribe(None, board=False)


class BoardWatch:
    """Where the boards are, and which site has none during its night (see module doc)."""

    def __init__(self, fanout: AlertFanout, pool: ConnectionPool, sender: PushSender,
                 settings: Settings, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_silence: Callable[[str, str, datetime], object] | None = None) -> None:
        """``on_silence(site, name, silent_since)``: also tell people by phone (the
        escalation's roster), after the push."""
        self._on_silence = on_silence
        self._fanout = fanout
        self._pool = pool
        self._sender = sender
        self._settings = settings
        self._now = now
        self._started = now()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.board_check_every_s)
            try:
                await run_in_threadpool(self.check, self._fanout.board_sites())
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                log.warning("board watch skipped a round: the database is unavailable (%s)",
                            exc)
            except Exception:
                # The watch must outlive any one round: the next night still needs it.
                log.exception("board watch round failed unexpectedly")

    def check(self, live: frozenset[str] | None) -> list[str]:
        """One round: record the live boards' sites (``None``: a board sees every site),
        then open or end silences; the sites newly found without a board."""
        now = self._now()
        limit = timedelta(minutes=self._settings.board_silence_minutes)
        newly: list[tuple[str, str, datetime]] = []
        with self._pool.connection() as conn:
            sites = store.silent_sites(conn)
            if self._settings.board_watch_sites:
                sites = [s for s in sites if s[0] in self._settings.board_watch_sites]
            live_sites = [s[0] for s in sites] if live is None else sorted(live)
            store.mark_boards_live(conn, live_sites, now)
            for site, name, tz, start, end, last_live in sites:
                window = NightWindow.parse(f"{start[:5]}-{end[:5]}", tz)
                night = window.night_of(now)
                if site in live_sites or night is None:
                    if store.end_silence(conn, site, now):
                        audit(conn, "system", "board.reconnected", site)
                    continue
                night_start = window.bounds(night)[0]
                # Silent since the last live board, but never before tonight began or this
                # process could have seen a board (a restart is not a silence of its own).
                silent_since = max(filter(None, (last_live, night_start)))
                if now - max(silent_since, self._started) < limit:
                    continue
                with conn.transaction():
                    if store.record_silence(conn, site, silent_since,
                                            {"minutes": self._settings.board_silence_minutes}):
                        audit(conn, "system", "board.none_connected", site,
                              detail={"silent_since": silent_since.isoformat(),
                                      "minutes": self._settings.board_silence_minutes})
                        newly.append((site, name, silent_since))
        for site, name, silent_since in newly:
            BOARD_SILENCES.labels(site=site).inc()
            log.error("no night board has been connected at %s since %s", site,
                      silent_since.isoformat())
            self._sender.send(no_board_message(site, name, silent_since))
            if self._on_silence is not None:
                self._on_silence(site, name, silent_since)
        return [site for site, _, _ in newly]


def site_namer(pool: ConnectionPool) -> Callable[[str], str]:
    """A site's display name (cached; the id when unknown)."""
    names: dict[str, str] = {}

    def name(site: str) -> str:
        if site not in names:
            with pool.connection() as conn:
                names.update((s[0], s[1]) for s in store.silent_sites(conn))
        return names.get(site, site)

    return name


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
