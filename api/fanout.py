"""One ``LISTEN nattero_alerts`` per process, fanned out to every connected board.

The listener owns a dedicated async connection. A notification normally carries the whole
change (``ingest.alerts.notification``): when it is the next ``seq``, it goes straight onto
the queue of every subscriber allowed to see its site, framed once as the board's JSON
message (``change_frame``: the alert's JSON is spliced in as the store encoded it, not
parsed and re-encoded) - no database read between the commit and the boards. Anything else
(a ``seq`` past a hole, a payload with the ``seq`` alone, a reconnect) makes it read the
new rows of ``alert_changes`` once, through the pool. No board ever queries the database
for live changes.

Order and completeness: changes are numbered under a transaction-level advisory lock
(``ingest.alerts.lock_changes``), held from the number's draw to the end of its
transaction, so they commit, and PostgreSQL delivers their notifications, in ``seq``
order. A hole below a change that is committed is therefore settled: the transaction that
drew the missing number ended before this one could draw its own, without committing it
(rolled back), or the number was never drawn (a sequence skips up to 32 numbers when a
standby is promoted). The fan-out publishes such a change at once, whether it learns of
it by notification or by a catch-up read; waiting there for the hole would only delay the
alerts after every failover. ``seq`` (the watermark) is the last change published; every
change at or below it has been delivered to every subscriber, which makes it a safe
``since`` for a board.

If the database goes away the listener tries again every ``LISTEN_RETRY_S`` and catches
up from the watermark, so subscribers see neither a duplicate nor a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from api.db import APPLICATION_NAME
from core.alerts import AlertChange
from core.settings import Settings
from ingest.alerts import (
    NOTIFY_CHANNEL,
    StoredAlertChange,
    changes_since,
    listen_for_changes,
    newest_change,
)

log = logging.getLogger(__name__)

# Between the listener's tries to reach the database: every board waits for this
# listener to find a new primary, and a refused try costs little.
LISTEN_RETRY_S = 0.5
QUEUE_SIZE = 2000
PAGE = 5000


@dataclass(frozen=True, slots=True)
class PublishedChange:
    seq: int
    site: str
    alert_id: int
    message: str  # {"type": "change", ...} encoded once for all subscribers


def change_frame(seq: int, change: AlertChange, alert_json: str) -> str:
    """The board's ``change`` message, compact JSON: ``{"type": "change", "seq": ...,
    "change": ..., "alert": {...}}``. ``alert_json`` is ``AlertSnapshot.json_text()``."""
    return f'{{"type":"change","seq":{seq},"change":"{change.value}","alert":{alert_json}}}'


def published_change(stored: StoredAlertChange) -> PublishedChange:
    """A change read from ``alert_changes``, framed for the boards."""
    alert = stored.alert
    return PublishedChange(stored.seq, alert.site, alert.id,
                           change_frame(stored.seq, stored.change, alert.json_text()))


def from_notification(payload: str) -> PublishedChange | int | None:
    """The change a NOTIFY payload carries (``ingest.alerts.notification``), or only its
    ``seq`` when it carries no more; None for a payload of another form (the listener then
    reads the table)."""
    parts = payload.split("\t", 4)
    try:
        if len(parts) == 5:
            seq, site, alert_id, change, alert_json = parts
            return PublishedChange(int(seq), site, int(alert_id),
                                   change_frame(int(seq), AlertChange(change), alert_json))
        return int(payload)
    except ValueError:
        return None


@dataclass(eq=False)
class Subscriber:
    """One board. ``start_seq``: the watermark when it subscribed; live changes follow it."""

    sites: frozenset[str] | None
    start_seq: int
    # None: the board went away (put by ``hang_up``), so the sender stops waiting.
    queue: asyncio.Queue[PublishedChange | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False
    gone: bool = False
    #: A board's WebSocket; False for the process's own followers (the push dispatcher),
    #: which are neither counted as boards nor make a site's board present.
    board: bool = True

    def sees(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def hang_up(self) -> None:
        self.gone = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue: the next send fails
            self.queue.put_nowait(None)


class AlertFanout:
    def __init__(self, settings: Settings, pool: ConnectionPool) -> None:
        self._url = settings.resolved_database_url()
        self._pool = pool
        self._subscribers: set[Subscriber] = set()
        self.seq = 0
        self.listening = False
        self.ready = asyncio.Event()

    # -- subscribers (called on the event loop) ----------------------------------------------
    def subscribe(self, sites: list[str] | None, *, board: bool = True) -> Subscriber:
        subscriber = Subscriber(None if sites is None else frozenset(sites), self.seq,
                                board=board)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        """Connected boards."""
        return sum(1 for subscriber in self._subscribers if subscriber.board)

    def board_sites(self) -> frozenset[str] | None:
        """The sites with a live board here; None when a board sees every site (admin)."""
        sites: set[str] = set()
        for subscriber in self._subscribers:
            if not subscriber.board or subscriber.gone:
                continue
            if subscriber.sites is None:
                return None
            sites |= subscriber.sites
        return frozenset(sites)

    def _publish(self, change: PublishedChange) -> None:
        for subscriber in self._subscribers:
            if subscriber.overflowed or not subscriber.sees(change.site):
                continue
            try:
                subscriber.queue.put_nowait(change)
            except asyncio.QueueFull:
                # A board that cannot keep up is closed; it reconnects with `since`.
                subscriber.overflowed = True
        self.seq = change.seq

    # -- the listener -------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                log.warning("alert listener lost the database (%s); reconnecting in %.1f s",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                            LISTEN_RETRY_S)
            except Exception:
                # Never let the listener die: every board would then stay connected,
                # receive pings and hear no alert again.
                log.exception("alert listener failed; starting again in %.1f s",
                              LISTEN_RETRY_S)
            self.listening = False
            await asyncio.sleep(LISTEN_RETRY_S)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, application_name=f"{APPLICATION_NAME}:listen",
                keepalives=1, keepalives_idle=10, keepalives_interval=5,
                keepalives_count=3) as conn:
            if not self.ready.is_set():
                # Start at the newest change; the catch-up after LISTEN covers the moment
                # between this query and LISTEN, so nothing committed in between is lost.
                self.seq = await newest_change(conn)
            await listen_for_changes(conn)
            self.ready.set()
            self.listening = True
            log.info("listening on %s from seq %d", NOTIFY_CHANNEL, self.seq)
            await self._catch_up()
            while True:
                behind = False
                async for notify in conn.notifies(timeout=30.0, stop_after=1):
                    change = from_notification(notify.payload)
                    if change is None:
                        behind = True
                        continue
                    seq = change if isinstance(change, int) else change.seq
                    if isinstance(change, PublishedChange) and seq == self.seq + 1:
                        self._publish(change)  # the usual case: no read, no thread hop
                    else:
                        behind = behind or seq > self.seq
                if behind:
                    await self._catch_up()

    async def _catch_up(self) -> None:
        while True:
            rows = await run_in_threadpool(self._read_after, self.seq)
            if not self._publish_committed(rows) or len(rows) < PAGE:
                return

    def _read_after(self, seq: int) -> list[StoredAlertChange]:
        with self._pool.connection() as conn:
            return changes_since(conn, seq, None, limit=PAGE)

    def _publish_committed(self, rows: list[StoredAlertChange]) -> int:
        """Publish the committed changes of a catch-up read (in ``seq`` order) above the
        watermark; a hole below one of them is settled (module docstring) and skipped."""
        published = 0
        for row in rows:
            seq = row.seq
            if seq <= self.seq:
                continue
            if seq != self.seq + 1:
                log.info("alert changes %d..%d were never committed (a rolled-back "
                         "transaction, or numbers a promoted standby skipped); going on",
                         self.seq + 1, seq - 1)
            self._publish(published_change(row))
            published += 1
        return published

