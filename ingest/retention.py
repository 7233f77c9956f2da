"""Retention for every table that holds what happened at night.

Table (default days, setting):

- events, raw: 400, ``NATTERO_RETENTION_DAYS``
- event_rollup, event_rollup_1h, event_rollup_out: 1826 (5 years),
  ``NATTERO_ROLLUP_RETENTION_DAYS``
- alerts once resolved (with alert_changes, alert_triggers): 400,
  ``NATTERO_ALERT_RETENTION_DAYS``
- audit_log: 730, ``NATTERO_AUDIT_RETENTION_DAYS``
- dead_letters, dead_letter_minutes: 30, ``NATTERO_DEAD_LETTER_RETENTION_DAYS``

Rollups are kept at least as long as the raw events; alerts count from their resolving.

An alert that is still open or acknowledged is never deleted, whatever its age.

Raw events older than ``NATTERO_RETENTION_DAYS`` (default 400) and dead letters
(and their per-sender counts, ``dead_letter_minutes``) older than
``NATTERO_DEAD_LETTER_RETENTION_DAYS`` (default 30); and, whatever their age, the oldest dead
letters beyond ``NATTERO_DEAD_LETTER_MAX_ROWS`` (default 1,000,000, about 4 GiB with the
4 KiB payload cap): the per-minute limits of the writer bound how fast the table grows, this
bounds how big it gets. Their counts in ``dead_letter_minutes`` stay (one row per sender and
minute), so what was cut is still visible.

Events go a whole chunk (one day) at a time with ``drop_chunks('events', older_than =>
now() - days)``: TimescaleDB drops only chunks that end before that moment, so nothing newer
than the retention is ever dropped. In the Apache edition Nattero runs this itself (from
``ingest.maintenance``); with the full edition (``timescaledb.license = 'timescale'``) a
retention policy (``add_retention_policy``) does it in the database.

The 15-minute rollups (``ingest.rollups``) are refreshed first and keep the aggregates of
dropped days; ``rollup_state.raw_kept_from`` records where raw events begin, so a refresh
never rewrites an aggregate whose events are gone. Dropping is refused while the rollups
have never been built (the aggregates would be lost with the events).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import psycopg

from ingest import rollups

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 400
DEFAULT_DEAD_LETTER_DAYS = 30
DEFAULT_DEAD_LETTER_MAX_ROWS = 1_000_000
DEFAULT_ROLLUP_DAYS = 1826
DEFAULT_ALERT_DAYS = 400
DEFAULT_AUDIT_DAYS = 730
MIN_RETENTION_DAYS = 1


def _setting(name: str, env: str, default: int) -> int:
    """The setting from ``core.settings`` once it has the field, else the environment."""
    try:
        from core.settings import get_settings

        value = getattr(get_settings(), name, None)
    except Exception:  # settings invalid or unavailable: the environment still counts
        value = None
    if value is None:
        raw = os.environ.get(env)
        try:
            value = int(raw) if raw else default
        except ValueError:
            log.warning("%s=%r is not a whole number of days; using %d", env, raw, default)
            value = default
    return int(value)


def retention_days() -> int:
    return _setting("retention_days", "NATTERO_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)


def dead_letter_days() -> int:
    return _setting("dead_letter_retention_days", "NATTERO_DEAD_LETTER_RETENTION_DAYS",
                    DEFAULT_DEAD_LETTER_DAYS)


def dead_letter_max_rows() -> int:
    return _setting("dead_letter_max_rows", "NATTERO_DEAD_LETTER_MAX_ROWS",
                    DEFAULT_DEAD_LETTER_MAX_ROWS)


def rollup_days() -> int:
    return _setting("rollup_retention_days", "NATTERO_ROLLUP_RETENTION_DAYS",
                    DEFAULT_ROLLUP_DAYS)


def alert_days() -> int:
    return _setting("alert_retention_days", "NATTERO_ALERT_RETENTION_DAYS", DEFAULT_ALERT_DAYS)


def audit_days() -> int:
    return _setting("audit_retention_days", "NATTERO_AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_DAYS)


@dataclass(frozen=True, slots=True)
class RecordRetention:
    """What went from the tables beside the raw events and dead letters."""

    alert_days: int
    audit_days: int
    rollup_days: int
    alerts_deleted: int
    audit_deleted: int
    rollup_rows_deleted: int

    def as_dict(self) -> dict[str, int]:
        return {"alert_days": self.alert_days, "audit_days": self.audit_days,
                "rollup_days": self.rollup_days, "alerts_deleted": self.alerts_deleted,
                "audit_deleted": self.audit_deleted,
                "rollup_rows_deleted": self.rollup_rows_deleted}


# Resolved alerts only; their triggers (keyed by episode) and change rows (cascade) go along.
_OLD_ALERTS = """
WITH gone AS (
    DELETE FROM alerts WHERE status = 'resolved'
      AND coalesce(resolved_at, last_ts) < now() - %(keep)s::interval
    RETURNING episode_key),
triggers AS (
    DELETE FROM alert_triggers t USING gone WHERE t.episode_key = gone.episode_key)
SELECT count(*) FROM gone
"""


def expire_records(conn: psycopg.Connection, *, alerts: int | None = None,
                   audit: int | None = None, rollup: int | None = None,
                   events: int | None = None) -> RecordRetention:
    """Delete resolved alerts, audit rows and rollups older than their retention (days).

    Rollups are kept at least as long as the raw events (``events``): a rollup is what is
    left of a day whose raw events are gone, never the other way round.
    """
    alerts = alert_days() if alerts is None else alerts
    audit = audit_days() if audit is None else audit
    rollup = rollup_days() if rollup is None else rollup
    rollup = max(rollup, retention_days() if events is None else events)
    if min(alerts, audit, rollup) < MIN_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MIN_RETENTION_DAYS} day(s); "
                         f"got alerts {alerts}, audit {audit}, rollups {rollup}")
    with conn.transaction():
        row = conn.execute(_OLD_ALERTS, {"keep": f"{alerts} days"}).fetchone()
        alerts_deleted = int(row[0]) if row else 0
        # Triggers whose alert is gone by another path (a room erased, an alert deleted).
        conn.execute("DELETE FROM alert_triggers t WHERE ts < now() - %s::interval AND NOT "
                     "EXISTS (SELECT 1 FROM alerts a WHERE a.episode_key = t.episode_key)",
                     (f"{alerts} days",))
        audit_deleted = conn.execute("DELETE FROM audit_log WHERE at < now() - %s::interval",
                                     (f"{audit} days",)).rowcount
        rollup_deleted = 0
        for table in ("event_rollup", "event_rollup_1h", "event_rollup_out"):
            rollup_deleted += conn.execute(
                f"DELETE FROM {table} WHERE bucket < now() - %s::interval",
                (f"{rollup} days",)).rowcount
    result = RecordRetention(alerts, audit, rollup, alerts_deleted, audit_deleted,
                             rollup_deleted)
    if alerts_deleted or audit_deleted or rollup_deleted:
        log.info("retention: deleted %d resolved alert(s) older than %d days, %d audit row(s) "
                 "older than %d days, %d rollup row(s) older than %d days", alerts_deleted,
                 alerts, audit_deleted, audit, rollup_deleted, rollup)
    return result


# Strictly older than the cap-th newest dead letter.
_DEAD_LETTERS_OVER_CAP = """
DELETE FROM dead_letters WHERE received_at < (
    SELECT received_at FROM dead_letters ORDER BY received_at DESC OFFSET %s LIMIT 1)
"""


@dataclass(frozen=True, slots=True)
class RetentionResult:
    mode: str  # "drop_chunks" (Nattero) or "policy" (TimescaleDB job)
    days: int
    chunks_dropped: int
    raw_kept_from: str | None
    dead_letters_deleted: int
    skipped: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "days": self.days, "chunks_dropped": self.chunks_dropped,
                "raw_kept_from": self.raw_kept_from,
                "dead_letters_deleted": self.dead_letters_deleted, "skipped": self.skipped}


_CHUNKS_TO_DROP = """
SELECT count(*), max(range_end) FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'events'
  AND range_end <= now() - %(keep)s::interval
"""


def _ensure_policy(conn: psycopg.Connection, days: int) -> None:
    """The full edition's retention job on ``events``, replaced when ``days`` changed."""
    row = conn.execute(
        "SELECT job_id, config->>'drop_after' FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = 'events'").fetchone()
    wanted = f"{days} days"
    if row is not None:
        current = conn.execute("SELECT %s::interval = %s::interval",
                               (row[1], wanted)).fetchone()
        if current and current[0]:
            return
        conn.execute("SELECT remove_retention_policy('events')")
    conn.execute("SELECT add_retention_policy('events', drop_after => %s::interval)", (wanted,))
    log.info("retention policy on events: drop chunks older than %s", wanted)


def apply_retention(conn: psycopg.Connection, days: int | None = None,
                    dead_letter_retention: int | None = None,
                    dead_letter_rows: int | None = None) -> RetentionResult:
    """Drop raw event chunks older than ``days`` and dead letters older than their retention.

    Run after ``rollups.refresh`` (``ingest.maintenance`` does); ``conn`` in autocommit mode.
    """
    days = retention_days() if days is None else days
    dl_days = dead_letter_days() if dead_letter_retention is None else dead_letter_retention
    dl_rows = dead_letter_max_rows() if dead_letter_rows is None else dead_letter_rows
    if days < MIN_RETENTION_DAYS or dl_days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MIN_RETENTION_DAYS} day(s); "
                         f"got events {days}, dead letters {dl_days}")
    keep = f"{days} days"
    with conn.transaction():
        deleted = conn.execute(
            "DELETE FROM dead_letters WHERE received_at < now() - %s::interval",
            (f"{dl_days} days",)).rowcount
        # The oldest go first; rows that share the cut-off's time stay (a few over the cap).
        deleted += conn.execute(_DEAD_LETTERS_OVER_CAP, (max(dl_rows - 1, 0),)).rowcount
        # The per-sender counts of dead letters go with them.
        conn.execute("DELETE FROM dead_letter_minutes WHERE minute < now() - %s::interval",
                     (f"{dl_days} days",))
    state = rollups.read_state(conn)
    if state is None or not state.initialized:
        log.warning("retention: the rollups were never built; no event chunk dropped "
                    "(run `nattero maintenance run` first)")
        return RetentionResult("drop_chunks", days, 0, None, deleted, skipped="rollup not built")
    full = rollups.timescale_license(conn) == "timescale"
    with conn.transaction():
        # Same lock as the refresh: no refresh re-aggregates a day while it is dropped.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (rollups.LOCK_KEY,))
        count_row = conn.execute(_CHUNKS_TO_DROP, {"keep": keep}).fetchone()
        to_drop, boundary = (int(count_row[0]), count_row[1]) if count_row else (0, None)
        if to_drop and not full:
            # Whatever arrived for those days since the last refresh goes into the rollups
            # before the raw events go (same transaction, same lock).
            rollups.refresh(conn)
        if full:
            _ensure_policy(conn, days)
            mode, dropped = "policy", 0
        else:
            mode = "drop_chunks"
            dropped = 0
            if to_drop:
                rows = conn.execute("SELECT drop_chunks('events', older_than => "
                                    "now() - %s::interval)", (keep,)).fetchall()
                dropped = len(rows)
        if boundary is not None:
            conn.execute("UPDATE rollup_state SET raw_kept_from = greatest(raw_kept_from, %s) "
                         "WHERE id = 1", (boundary,))
        kept_row = conn.execute("SELECT raw_kept_from FROM rollup_state WHERE id = 1").fetchone()
    kept_from = kept_row[0].isoformat() if kept_row and kept_row[0] else None
    if dropped or deleted:
        log.info("retention: dropped %d event chunk(s) older than %s (raw events kept from %s), "
                 "deleted %d dead letter(s) older than %d days", dropped, keep, kept_from,
                 deleted, dl_days)
    return RetentionResult(mode, days, dropped, kept_from, deleted)
