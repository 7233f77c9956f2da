"""Batched, idempotent writes of events, status changes and dead letters.

One batch is one transaction: events are COPYed into a per-connection staging table and
moved with ``INSERT .. ON CONFLICT DO NOTHING`` so a redelivered message is stored once.
Hooks (the rules engine) see only the events that were new and answer with intents, which
the writer applies in the same transaction (``ingest.alert_intents``), so alerts are
committed together with the events that raised them. A hook runs no SQL: the layouts it
may need for a device it does not know yet are read for it (``ingest.rule_layouts``).

Dead letters are limited per sender (a device, or the topic a message came on) and UTC
minute: the first ``dead_letters_per_minute`` are stored with at most
``dead_letter_payload_bytes`` of their payload, every one is counted in
``dead_letter_minutes``. A device flooding the gateway with bad messages thus costs a few
rows a minute, and the batches carrying other devices' events stay small. Two more limits
hold per minute: one per bridge (a bridge account may publish under any device name of its
prefix, so per-device limits alone would not bound it) and one for the whole installation,
so the table's growth is bounded whoever sends (counted under ``bridge:<prefix>`` and ``*``).

Fencing. A writer of a leased worker (several ``nattero pipeline`` processes sharing the
sites, ``ingest.leases``) is given a ``fence``: the last statement of every transaction,
just before the commit, checks that the worker still holds the leases of the batch's sites,
so a paused old owner whose lease was taken over cannot commit (``LeaseLost``, a
``StoreUnavailable``: nothing is acknowledged). Without a fence (the default single worker)
nothing of this runs.

The writer never gives up on a batch because the database is away: ``write`` raises
``StoreUnavailable`` and the caller retries the same batch (the gateway withholds the
broker acknowledgement meanwhile).

Intents outlive a lost transaction. The hooks have already evaluated a batch when its
transaction is lost (the connection broke in the middle of applying the alerts, or at the
commit: a database failover, a restart), and the rules engine evaluates an input once, so
the retry of the same batch gives no intents again. The writer therefore keeps the intents
of a batch it could not commit and applies them first in its next transaction, whichever
batch that is; ``apply_intents`` is idempotent, so a commit that did happen although the
connection broke before its answer (the events then come back as duplicates) changes
nothing the second time. Without this, a fall alert raised in the instant the database
failed over would be gone.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import psycopg
from psycopg import sql

from core.errors import Unavailable
from core.events import Event, EventKind, StatusChange
from core.intents import Intent
from ingest.alert_intents import apply_intents
from ingest.rule_layouts import StoredLayouts, read_layouts

log = logging.getLogger(__name__)

DEAD_LETTERS_PER_MINUTE = 20
DEAD_LETTERS_PER_MINUTE_PER_BRIDGE = 100
DEAD_LETTERS_PER_MINUTE_TOTAL = 500
TOTAL_SENDER = "*"
DEAD_LETTER_PAYLOAD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    detail: str
    sender: str = ""  # who the dead letter is charged to; the topic when empty
    bridge: str = ""  # the bridge prefix it also counts against; empty for a native device

    @property
    def charged_to(self) -> str:
        return self.sender or self.topic

    @property
    def minute(self) -> datetime:
        return self.received_at.replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class StoredEventRow:
    """An event as stored (with the room it happened in), returned for new rows only."""

    event: Event
    room: str
    received_at: datetime


@dataclass(slots=True)
class Batch:
    events: list[tuple[Event, datetime]] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.events) + len(self.statuses) + len(self.dead_letters)


@dataclass(frozen=True, slots=True)
class BatchResult:
    new_events: list[StoredEventRow]  # filled only when hooks need them
    stored: int
    duplicates: int
    dead_letters: int


# (new events oldest first, status changes, the layouts as of this transaction) -> intents.
# The layouts are read only when the hook calls for them: a new device's first event.
BatchHook = Callable[
    [list[StoredEventRow], list[StatusChange], Callable[[], StoredLayouts]], Sequence[Intent]]


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def copy_text(events: list[tuple[Event, datetime]]) -> str:
    """Events as COPY text rows. Built by hand: psycopg's per-row formatting was a third of
    the writer's time at 15,000 events/s. Ids are free text, so they are escaped."""
    rows = []
    for event, received_at in events:
        battery = "\\N" if event.battery is None else str(event.battery)
        occupied = "\\N" if event.occupied is None else ("t" if event.occupied else "f")
        # Site and device ids are slugs (checked when provisioned); the event id is free text.
        rows.append(f"{event.site}\t{event.device}\t{_text(event.id)}\t"
                    f"{event.ts.isoformat()}\t{event.kind.value}\t{battery}\t{occupied}\t"
                    f"{received_at.isoformat()}\n")
    return "".join(rows)


class StoreUnavailable(Unavailable):
    """The database could not be reached or the connection broke; retry the batch later."""


class WriteFence(Protocol):
    """Checks, inside the writing transaction, that this process may write for ``sites``;
    raises (a ``StoreUnavailable``) if not. ``ingest.leases.LeaseFence`` is the one."""

    def prepare(self, conn: psycopg.Connection) -> None:
        """Called once on each new connection of a fenced writer."""

    def check(self, conn: psycopg.Connection, sites: Iterable[str]) -> None: ...


def batch_sites(batch: Batch) -> set[str]:
    """The sites a batch writes events or presence for."""
    return ({event.site for event, _ in batch.events}
            | {change.site for change in batch.statuses})


_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS events_staging (
    site text, device text, event_id text, ts timestamptz, kind text, battery smallint,
    occupied boolean, received_at timestamptz
) ON COMMIT DELETE ROWS
"""

_MOVE = """
INSERT INTO events (site, device, event_id, ts, room, kind, battery, occupied, received_at)
SELECT s.site, s.device, s.event_id, s.ts, d.room, s.kind, s.battery, s.occupied,
       s.received_at
FROM events_staging s JOIN devices d ON d.site = s.site AND d.id = s.device
ON CONFLICT DO NOTHING
"""
_RETURNING = ("RETURNING site, device, event_id, ts, room, kind, battery, occupied, "
              "received_at")

_TOUCH_DEVICES = """
UPDATE devices d SET
    last_event_at = GREATEST(d.last_event_at, x.last_ts),
    last_received_at = GREATEST(d.last_received_at, x.last_received),
    battery = COALESCE(x.battery, d.battery)
FROM (
    SELECT site, device, max(ts) AS last_ts, max(received_at) AS last_received,
           (array_agg(battery ORDER BY ts DESC) FILTER (WHERE battery IS NOT NULL))[1] AS battery
    FROM events_staging GROUP BY site, device
) x
WHERE d.site = x.site AND d.id = x.device
"""

_PRESENCE = """
UPDATE devices SET presence = %s, presence_at = %s,
    last_received_at = GREATEST(last_received_at, presence_at)
WHERE site = %s AND id = %s AND (presence_at IS NULL OR presence_at <= %s)
"""

_DEAD = """
INSERT INTO dead_letters (received_at, topic, payload, reason, detail, truncated, sender,
                          payload_length)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

# The no-op update locks the sender's row for this minute (created if new) and returns how
# many are stored already: a second writer counting the same sender waits here, so the
# limit holds across gateways.
_LOCK_MINUTE = """
INSERT INTO dead_letter_minutes AS m (minute, sender, received, stored) VALUES (%s, %s, 0, 0)
ON CONFLICT (minute, sender) DO UPDATE SET received = m.received
RETURNING m.stored
"""
_COUNT_MINUTE = """
UPDATE dead_letter_minutes SET received = received + %s, stored = stored + %s
WHERE minute = %s AND sender = %s
"""


# The connection is gone (a fenced writer's idle transaction ended by the server counts:
# an InternalError by its SQLSTATE class, but nothing is wrong with the batch).
_CONNECTION_LOST = (psycopg.OperationalError, psycopg.InterfaceError,
                    psycopg.errors.IdleInTransactionSessionTimeout)


class EventWriter:
    """Owns one database connection; not thread-safe (one writer thread uses it)."""

    def __init__(self, dsn: str, hooks: Sequence[BatchHook] = (), *,
                 dead_letters_per_minute: int = DEAD_LETTERS_PER_MINUTE,
                 dead_letters_per_minute_per_bridge: int = DEAD_LETTERS_PER_MINUTE_PER_BRIDGE,
                 dead_letters_per_minute_total: int = DEAD_LETTERS_PER_MINUTE_TOTAL,
                 dead_letter_payload_bytes: int = DEAD_LETTER_PAYLOAD_BYTES,
                 fence: WriteFence | None = None) -> None:
        self._dsn = dsn
        self._fence = fence
        self._hooks = list(hooks)
        self._dead_per_minute = dead_letters_per_minute
        self._dead_per_bridge = dead_letters_per_minute_per_bridge
        self._dead_total = dead_letters_per_minute_total
        self._dead_payload_bytes = dead_letter_payload_bytes
        self._conn: psycopg.Connection | None = None
        # The intents of batches whose transaction was lost, applied first in the next one.
        self._carried: list[Intent] = []

    def add_hook(self, hook: BatchHook) -> None:
        self._hooks.append(hook)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(self._dsn, connect_timeout=3, autocommit=False)
                if self._fence is not None:
                    self._fence.prepare(conn)
                conn.execute(_STAGING)
                conn.commit()
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(str(exc).strip()) from exc
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write(self, batch: Batch) -> BatchResult:
        conn = self._connection()
        carried = self._carried
        try:
            result = self._write(conn, batch)
            conn.commit()
            self._carried = []
            return result
        except _CONNECTION_LOST as exc:
            self.close()
            raise StoreUnavailable(str(exc).strip()) from exc
        except Exception:
            if not conn.closed:
                conn.rollback()
            if carried and self._carried is not carried:
                # Refused, not lost, with the carried intents in it: they may be why, so
                # they get no third try (the caller retries the batch's messages alone).
                log.error("dropping %d alert change(s) of an earlier lost transaction: the "
                          "database refused the transaction that applied them again",
                          len(carried))
                self._carried = self._carried[len(carried):]
            raise

    def _write(self, conn: psycopg.Connection, batch: Batch) -> BatchResult:
        new_rows: list[StoredEventRow] = []
        with conn.cursor() as cur:
            if batch.events:
                with cur.copy(
                    "COPY events_staging (site, device, event_id, ts, kind, battery, occupied, "
                    "received_at) FROM STDIN"
                ) as copy:
                    copy.write(copy_text(batch.events))
                if self._hooks:
                    cur.execute(_MOVE + _RETURNING)
                    for (site, device, event_id, ts, room, kind, battery, occupied,
                         received_at) in cur.fetchall():
                        new_rows.append(StoredEventRow(
                            Event(site, device, event_id, ts, EventKind(kind), battery,
                                  occupied),
                            room, received_at))
                    stored = len(new_rows)
                else:  # nobody needs the rows back: only count them
                    cur.execute(_MOVE)
                    stored = cur.rowcount
                cur.execute(_TOUCH_DEVICES)
            else:
                stored = 0
            for change in batch.statuses:
                cur.execute(_PRESENCE, (change.presence.value, change.ts, change.site,
                                        change.device, change.ts))
            if batch.dead_letters:
                self._store_dead_letters(cur, batch.dead_letters)
        new_rows.sort(key=lambda row: row.event.ts)
        # Every hook first, then the intents: a hook may wait for the rules' engine lock,
        # which must never happen while this transaction holds the change lock.
        intents = [intent for hook in self._hooks
                   for intent in hook(new_rows, batch.statuses, lambda: read_layouts(conn))]
        if self._carried:
            intents = self._carried + intents
        # Kept until the commit is seen (``write``): a lost transaction leaves them here.
        self._carried = intents
        apply_intents(conn, intents)
        if self._fence is not None:
            # Last, just before the commit: the lease rows are locked (FOR SHARE) only for
            # the commit itself, so a takeover never waits behind a long batch.
            self._fence.check(conn, batch_sites(batch) | {intent.site for intent in intents})
        return BatchResult(new_events=new_rows, stored=stored,
                           duplicates=len(batch.events) - stored,
                           dead_letters=len(batch.dead_letters))

    def _limits(self, record: DeadLetterRecord) -> list[tuple[str, int]]:
        """The counters a dead letter is charged to, each with its limit per minute."""
        limits = [(record.charged_to, self._dead_per_minute)]
        if record.bridge:
            limits.append((f"bridge:{record.bridge}", self._dead_per_bridge))
        limits.append((TOTAL_SENDER, self._dead_total))
        return limits

    def _store_dead_letters(self, cur: psycopg.Cursor[tuple[int]],
                            records: list[DeadLetterRecord]) -> int:
        """Count every record, store the first few per sender, bridge and minute (and no more
        than the installation's limit); returns how many were stored."""
        charged = [(record, self._limits(record)) for record in records]
        arrived = Counter((record.minute, counter) for record, limits in charged
                          for counter, _ in limits)
        room: dict[tuple[datetime, str], int] = {}
        limit_of = {counter: limit for _, limits in charged for counter, limit in limits}
        # Sorted: two writers lock the same counters' rows in the same order, never crosswise.
        for minute, counter in sorted(arrived):
            cur.execute(_LOCK_MINUTE, (minute, counter))
            row = cur.fetchone()
            already = int(row[0]) if row else 0
            room[(minute, counter)] = max(limit_of[counter] - already, 0)
        kept: list[DeadLetterRecord] = []
        for record, limits in charged:
            keys = [(record.minute, counter) for counter, _ in limits]
            if all(room[key] > 0 for key in keys):
                for key in keys:
                    room[key] -= 1
                kept.append(record)
        stored = Counter((record.minute, counter) for record in kept
                         for counter, _ in self._limits(record))
        cur.executemany(_COUNT_MINUTE, [(count, stored[key], *key)
                                        for key, count in sorted(arrived.items())])
        cap = self._dead_payload_bytes
        cur.executemany(_DEAD, [
            (d.received_at, d.topic, d.payload[:cap], d.reason, d.detail, len(d.payload) > cap,
             d.charged_to, len(d.payload)) for d in kept])
        return len(kept)

    def dead_letter_alone(self, record: DeadLetterRecord) -> None:
        """Store one dead letter in its own transaction (used when a batch is rejected)."""
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                self._store_dead_letters(cur, [record])
            conn.commit()
        except _CONNECTION_LOST as exc:
            self.close()
            raise StoreUnavailable(str(exc).strip()) from exc


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(sql.SQL("SELECT to_regclass({})").format(sql.Literal(name))).fetchone()
    return row is not None and row[0] is not None
