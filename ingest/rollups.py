"""Rollups of the events hypertable per 15-minute bucket, maintained incrementally.

Two plain tables (migration 0004), both keyed on UTC 15-minute buckets
(``time_bucket('15 minutes', ts)``):

- ``event_rollup(site, bucket, room, kind, events)``: how many events, and
  ``event_rollup_1h`` the same per UTC hour (summed from it; no longer read by exports,
  which decide k-suppression per quarter hour and sum hours and days from quarters);
- ``event_rollup_out(site, room, bucket, seconds)``: seconds out of flat (door closed ->
  next door open with no bed event between and at most 3 h apart), for every room; the
  export keeps only flats.

``refresh`` finds what changed by *arrival*: every event with ``received_at`` after the last
refresh (minus ``overlap``, for batches that committed a little after they arrived) marks
its bucket dirty, whatever its own ``ts`` (late, buffered, replayed or out-of-order events
included). Events stored more than 5 minutes after their ``received_at`` (a batch held
through a database outage, a bulk load with historical arrival times) are marked by the
trigger ``events_backdated`` in ``rollup_backdated`` instead; the writer's live rows never
fire it. Dirty count buckets are re-aggregated from the raw events; a dirty door/bed
event re-derives the minutes out of its room within 3 hours either side (a new event can
only change pairs that close within 3 h). Re-aggregating is idempotent, so an overlap that
re-reads a few events is harmless.

The first refresh builds the tables from all events. ``reconcile_hours`` (hourly in
``ingest.maintenance``) also re-aggregates the last 48 hours by event time, a cheap belt
and braces.

Buckets whose raw events were dropped by retention (before ``raw_kept_from``) are never
rewritten: the rollup is then the only record of them.

Every exact local bucket of 15 minutes, 1 hour or 1 day is a union of these UTC buckets in
any zone whose offset is a whole number of quarter hours (``exact_for``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from core.errors import NotConfigured

log = logging.getLogger(__name__)

BUCKET = timedelta(minutes=15)
OUT_GAP = timedelta(hours=3)
DEFAULT_OVERLAP = timedelta(minutes=15)
DEFAULT_RECONCILE_HOURS = 48
LOCK_KEY = 0x6E61_7474_726F_6C6C  # "nattroll": one refresh/retention at a time
DOOR_BED = ("door.open", "door.closed", "bed.exit", "bed.enter")
# Above this many new events (a bulk import, a first start on a full store) a full build is
# much quicker than re-aggregating bucket by bucket.
FULL_BUILD_ABOVE = 1_000_000
_DOOR_BED_SQL = ", ".join(f"'{kind}'" for kind in DOOR_BED)


@dataclass(frozen=True, slots=True)
class RollupState:
    initialized: bool
    refreshed_to: datetime | None
    refreshed_at: datetime | None
    raw_kept_from: datetime | None
    reconciled_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefreshResult:
    full: bool
    count_buckets: int
    out_rooms: int
    skipped_dropped: int
    refreshed_to: datetime
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {"full": self.full, "count_buckets": self.count_buckets,
                "out_rooms": self.out_rooms, "skipped_before_retention": self.skipped_dropped,
                "refreshed_to": self.refreshed_to.isoformat(), "seconds": self.seconds}


def read_state(conn: psycopg.Connection) -> RollupState | None:
    """The rollup's watermark; None when the schema predates migration 0004."""
    row = conn.execute("SELECT to_regclass('rollup_state')").fetchone()
    if row is None or row[0] is None:
        return None
    state = conn.execute("SELECT initialized, refreshed_to, refreshed_at, raw_kept_from, "
                         "reconciled_at FROM rollup_state WHERE id = 1").fetchone()
    return RollupState(*state) if state else None


def timescale_license(conn: psycopg.Connection) -> str:
    """'timescale' for the full (community) edition, 'apache' for the Apache-2 build."""
    row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return (row[0] if row and row[0] else "apache").lower()


# -- refresh ----------------------------------------------------------------------------

# Dirty events: everything that arrived since the last refresh (minus the overlap) and
# lies where raw events are still kept.
_DIRTY = """
CREATE TEMP TABLE rollup_dirty ON COMMIT DROP AS
SELECT site, room, ts, kind FROM events
WHERE received_at > %(since)s AND ts >= %(kept_from)s
"""
# The same, once a refresh has recorded its snapshot (migration 0005): of the events in the
# overlap (arrived before the previous watermark), only those of transactions that refresh
# could not see, i.e. that committed after its snapshot: it counted all the others. Without
# this a burst of arrivals (a gateway catching up after an outage, a simulator, an import)
# would be re-counted by every round for the whole overlap. ``xmin`` is widened to a full
# transaction id against the current snapshot (the overlap's rows are minutes old, far from
# a wraparound).
_DIRTY_UNSEEN = """
CREATE TEMP TABLE rollup_dirty ON COMMIT DROP AS
SELECT e.site, e.room, e.ts, e.kind
FROM events e
CROSS JOIN (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS ref) r
WHERE e.received_at > %(since)s AND e.ts >= %(kept_from)s
  AND (e.received_at > %(seen_to)s OR NOT pg_visible_in_snapshot(
        ((((r.ref >> 32) - (e.xmin::text::bigint > (r.ref & 4294967295))::int) << 32)
         + e.xmin::text::bigint)::text::xid8, %(seen)s::pg_snapshot))
"""
_DIRTY_RECONCILE = """
INSERT INTO rollup_dirty
SELECT site, room, ts, kind FROM events WHERE ts >= %(since)s AND ts >= %(kept_from)s
"""
# Marks of events stored long after they arrived (trigger events_backdated, migration 0004),
# read first so that only marks whose events this refresh can see are consumed.
_MARKS = """
CREATE TEMP TABLE rollup_marks ON COMMIT DROP AS
SELECT id, site, bucket FROM rollup_backdated
"""
_DIRTY_MARKED = """
INSERT INTO rollup_dirty
SELECT e.site, e.room, e.ts, e.kind
FROM (SELECT DISTINCT site, bucket FROM rollup_marks WHERE bucket >= %(kept_from)s) m
JOIN events e ON e.site = m.site AND e.ts >= m.bucket AND e.ts < m.bucket + interval '15 minutes'
WHERE e.ts >= %(lo)s AND e.ts < %(hi)s
"""
_MARKS_DONE = "DELETE FROM rollup_backdated WHERE id IN (SELECT id FROM rollup_marks)"
_SKIPPED = """
SELECT count(*) FROM events WHERE received_at > %(since)s AND ts < %(kept_from)s
"""
_COUNT_BUCKETS = """
CREATE TEMP TABLE rollup_dirty_buckets ON COMMIT DROP AS
SELECT DISTINCT site, time_bucket('15 minutes', ts) AS bucket FROM rollup_dirty
"""
# Re-counted buckets are compared with what the rollup holds and only the difference is
# written: a reconcile of 48 hours in which nothing changed writes nothing (no WAL for the
# writer's commits to flush behind, no dead rows), and only hours whose quarters changed are
# re-summed. Bounds as constants so TimescaleDB excludes chunks at plan time.
_COUNT_FRESH = """
CREATE TEMP TABLE rollup_counts ON COMMIT DROP AS
SELECT e.site, d.bucket, e.room, e.kind, count(*)::int AS events
FROM rollup_dirty_buckets d
JOIN events e ON e.site = d.site AND e.ts >= d.bucket AND e.ts < d.bucket + interval '15 minutes'
WHERE e.ts >= %(lo)s AND e.ts < %(hi)s
GROUP BY 1, 2, 3, 4
"""
# Rows of re-counted buckets that no longer exist (EXCEPT: a set operation; an anti-join
# with the DELETE here was planned as a merge anti join that ran for minutes on 70,000
# buckets).
_COUNT_GONE = """
CREATE TEMP TABLE rollup_gone ON COMMIT DROP AS
SELECT r.site, r.bucket, r.room, r.kind
FROM event_rollup r JOIN rollup_dirty_buckets d ON r.site = d.site AND r.bucket = d.bucket
EXCEPT
SELECT site, bucket, room, kind FROM rollup_counts
"""
_COUNT_GONE_DELETE = """
DELETE FROM event_rollup r USING rollup_gone g
WHERE r.site = g.site AND r.bucket = g.bucket AND r.room = g.room AND r.kind = g.kind
"""
_CHANGED = """
CREATE TEMP TABLE rollup_changed ON COMMIT DROP AS SELECT site, bucket FROM rollup_gone
"""
_COUNT_UPSERT = """
WITH changed AS (
    INSERT INTO event_rollup AS r (site, bucket, room, kind, events)
    SELECT site, bucket, room, kind, events FROM rollup_counts
    ON CONFLICT (site, bucket, room, kind) DO UPDATE SET events = excluded.events
    WHERE r.events <> excluded.events
    RETURNING r.site, r.bucket)
INSERT INTO rollup_changed SELECT site, bucket FROM changed
"""
_HOURS_DIRTY = """
CREATE TEMP TABLE rollup_dirty_hours ON COMMIT DROP AS
SELECT DISTINCT site, time_bucket('1 hour', bucket) AS bucket FROM rollup_changed
"""
_HOURS_DELETE = """
DELETE FROM event_rollup_1h r USING rollup_dirty_hours d
WHERE r.site = d.site AND r.bucket = d.bucket
"""
_HOURS_INSERT = """
INSERT INTO event_rollup_1h (site, bucket, room, kind, events)
SELECT q.site, d.bucket, q.room, q.kind, sum(q.events)
FROM rollup_dirty_hours d
JOIN event_rollup q ON q.site = d.site AND q.bucket >= d.bucket
 AND q.bucket < d.bucket + interval '1 hour'
GROUP BY 1, 2, 3, 4
"""
_HOURS_FULL = """
INSERT INTO event_rollup_1h (site, bucket, room, kind, events)
SELECT site, time_bucket('1 hour', bucket), room, kind, sum(events)
FROM event_rollup WHERE bucket >= %(kept_from)s
GROUP BY 1, 2, 3, 4
"""
_COUNT_FULL = """
INSERT INTO event_rollup (site, bucket, room, kind, events)
SELECT site, time_bucket('15 minutes', ts), room, kind, count(*)
FROM events WHERE ts >= %(kept_from)s
GROUP BY 1, 2, 3, 4
"""
# Per room, the span of buckets whose minutes out may have changed: 3 h either side of
# every dirty door/bed event, never reaching into the 3 h after the retention horizon
# (their pairs may start in dropped chunks).
_OUT_RANGES = f"""
CREATE TEMP TABLE rollup_out_ranges ON COMMIT DROP AS
SELECT site, room,
       greatest(time_bucket('15 minutes', min(ts) - interval '3 hours'),
                %(out_floor)s) AS lo,
       time_bucket('15 minutes', max(ts) + interval '3 hours') + interval '15 minutes' AS hi
FROM rollup_dirty WHERE kind IN ({_DOOR_BED_SQL})
GROUP BY site, room
"""
_OUT_RANGES_FULL = f"""
CREATE TEMP TABLE rollup_out_ranges ON COMMIT DROP AS
SELECT site, room,
       greatest(time_bucket('15 minutes', min(ts) - interval '3 hours'),
                %(out_floor)s) AS lo,
       time_bucket('15 minutes', max(ts) + interval '3 hours') + interval '15 minutes' AS hi
FROM events WHERE kind IN ({_DOOR_BED_SQL}) AND ts >= %(kept_from)s
GROUP BY site, room
"""
# Buckets of the ranges that no longer have an out (EXCEPT, as for the counts).
_OUT_DELETE = """
DELETE FROM event_rollup_out o USING (
    SELECT x.site, x.room, x.bucket
    FROM event_rollup_out x JOIN rollup_out_ranges g ON x.site = g.site AND x.room = g.room
     AND x.bucket >= g.lo AND x.bucket < g.hi
    EXCEPT
    SELECT site, room, bucket FROM rollup_out_fresh) gone
WHERE o.site = gone.site AND o.room = gone.room AND o.bucket = gone.bucket
"""
# As for the counts, only buckets whose seconds changed are written.
_OUT_UPSERT = """
INSERT INTO event_rollup_out AS o (site, room, bucket, seconds)
SELECT site, room, bucket, seconds FROM rollup_out_fresh
ON CONFLICT (site, room, bucket) DO UPDATE SET seconds = excluded.seconds
WHERE o.seconds <> excluded.seconds
"""
# The same pairing as evaluation.occupancy's raw query, on the whole room history within
# [lo - 3 h, hi + 3 h): every out overlapping [lo, hi) starts and ends in there.
_OUT_FRESH = f"""
CREATE TEMP TABLE rollup_out_fresh ON COMMIT DROP AS
WITH seq AS (
    SELECT e.site, e.room, e.ts, e.kind, g.lo, g.hi,
           lead(e.ts) OVER w AS next_ts, lead(e.kind) OVER w AS next_kind
    FROM rollup_out_ranges g
    JOIN events e ON e.site = g.site AND e.room = g.room
     AND e.ts >= g.lo - interval '3 hours' AND e.ts < g.hi + interval '3 hours'
    WHERE e.kind IN ({_DOOR_BED_SQL}) AND e.ts >= %(lo)s AND e.ts < %(hi)s
    WINDOW w AS (PARTITION BY e.site, e.room ORDER BY e.ts, e.kind, e.device, e.event_id)),
outs AS (
    SELECT site, room, greatest(ts, lo) AS left_at, least(next_ts, hi) AS back_at
    FROM seq
    WHERE kind = 'door.closed' AND next_kind = 'door.open'
      AND next_ts - ts <= interval '3 hours' AND next_ts > lo AND ts < hi)
SELECT o.site, o.room, b.bucket,
       sum(extract(epoch FROM least(o.back_at, b.bucket + interval '15 minutes')
                              - greatest(o.left_at, b.bucket))) AS seconds
FROM outs o
CROSS JOIN LATERAL generate_series(time_bucket('15 minutes', o.left_at), o.back_at,
                                   interval '15 minutes') AS b(bucket)
WHERE least(o.back_at, b.bucket + interval '15 minutes') > greatest(o.left_at, b.bucket)
GROUP BY 1, 2, 3
"""

_FAR_PAST = datetime.fromisoformat("1900-01-01T00:00:00+00:00")


def _lock(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))


def refresh(conn: psycopg.Connection, *, overlap: timedelta = DEFAULT_OVERLAP,
            reconcile_hours: int | None = None, rebuild: bool = False) -> RefreshResult:
    """Bring both rollups up to date with every event committed so far (one transaction).

    ``reconcile_hours``: also re-aggregate that many hours back by event time.
    ``rebuild``: start over from all raw events still kept (the first refresh does this).
    Events of the overlap that the previous refresh already counted are not counted again.
    """
    started = time.monotonic()
    if read_state(conn) is None:
        raise NotConfigured("the schema has no rollups yet (migration 0004); run `nattero migrate`")
    with conn.transaction():
        _lock(conn)
        conn.execute("SET LOCAL jit = off")
        conn.execute("SET LOCAL work_mem = '128MB'")
        row = conn.execute("SELECT initialized, refreshed_to, raw_kept_from, now(), "
                           "refreshed_snapshot FROM rollup_state WHERE id = 1 FOR UPDATE"
                           ).fetchone()
        if row is None:
            raise NotConfigured("rollup_state has no row; run `nattero migrate`")
        initialized, refreshed_to, raw_kept_from, now, seen_snapshot = row
        # Before anything is read: every transaction visible here is counted by this refresh.
        snapshot_row = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
        assert snapshot_row is not None
        seen = seen_snapshot is not None
        kept_from = raw_kept_from or _FAR_PAST
        params: dict[str, object] = {"kept_from": kept_from,
                                     "out_floor": kept_from + OUT_GAP if raw_kept_from
                                     else _FAR_PAST}
        full = rebuild or not initialized or refreshed_to is None
        skipped = 0
        conn.execute(_MARKS)
        if not full:
            pending = conn.execute(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM events WHERE received_at > %s "
                "LIMIT %s) x) + (SELECT count(*) FROM rollup_marks)",
                (refreshed_to if seen else refreshed_to - overlap,
                 FULL_BUILD_ABOVE + 1)).fetchone()
            if pending is not None and pending[0] > FULL_BUILD_ABOVE:
                log.info("rollup: more than %d new events; rebuilding instead", FULL_BUILD_ABOVE)
                full = True
        if full:
            if raw_kept_from is None:
                conn.execute("TRUNCATE event_rollup, event_rollup_1h, event_rollup_out")
            else:  # keep what retention left behind; rebuild where raw events remain
                conn.execute("DELETE FROM event_rollup WHERE bucket >= %s", (kept_from,))
                conn.execute("DELETE FROM event_rollup_1h WHERE bucket >= %s", (kept_from,))
                conn.execute("DELETE FROM event_rollup_out WHERE bucket >= %s",
                             (params["out_floor"],))
            conn.execute(_COUNT_FULL, params)
            conn.execute(_HOURS_FULL, params)
            buckets_row = conn.execute("SELECT count(DISTINCT (site, bucket)) FROM event_rollup "
                                       "WHERE bucket >= %s", (kept_from,)).fetchone()
            count_buckets = int(buckets_row[0]) if buckets_row else 0
            conn.execute(_OUT_RANGES_FULL, params)
        else:
            params["since"] = refreshed_to - overlap
            if seen:
                conn.execute(_DIRTY_UNSEEN, {**params, "seen_to": refreshed_to,
                                             "seen": seen_snapshot})
            else:
                conn.execute(_DIRTY, params)
            marks = conn.execute("SELECT min(bucket), max(bucket) FROM rollup_marks "
                                 "WHERE bucket >= %s", (kept_from,)).fetchone()
            if marks is not None and marks[0] is not None:
                conn.execute(_DIRTY_MARKED, {**params, "lo": marks[0], "hi": marks[1] + BUCKET})
            if reconcile_hours:
                conn.execute(_DIRTY_RECONCILE,
                             {**params, "since": now - timedelta(hours=reconcile_hours)})
            skipped_row = conn.execute(_SKIPPED, params).fetchone() if raw_kept_from else None
            skipped = int(skipped_row[0]) if skipped_row else 0
            if skipped:
                log.warning("rollup: %d late event(s) before the retention horizon %s are "
                            "not counted (their bucket's raw events were dropped)",
                            skipped, kept_from.isoformat())
            conn.execute(_COUNT_BUCKETS)
            # Real row counts for the planner: a handful of buckets (a nested loop into the
            # events index) or a replayed month (a hash join over the range).
            conn.execute("ANALYZE rollup_dirty_buckets")
            bounds = conn.execute("SELECT count(*), min(bucket), max(bucket) "
                                  "FROM rollup_dirty_buckets").fetchone()
            assert bounds is not None
            count_buckets = int(bounds[0])
            if count_buckets:
                conn.execute(_COUNT_FRESH, {"lo": bounds[1], "hi": bounds[2] + BUCKET})
                conn.execute("ANALYZE rollup_counts")
                conn.execute(_COUNT_GONE)
                conn.execute(_COUNT_GONE_DELETE)
                conn.execute(_CHANGED)
                conn.execute(_COUNT_UPSERT)
                conn.execute(_HOURS_DIRTY)
                conn.execute("ANALYZE rollup_dirty_hours")
                conn.execute(_HOURS_DELETE)
                conn.execute(_HOURS_INSERT)
            conn.execute(_OUT_RANGES, params)
        conn.execute("DELETE FROM rollup_out_ranges WHERE hi <= lo")
        conn.execute("ANALYZE rollup_out_ranges")
        ranges = conn.execute("SELECT count(*), min(lo), max(hi) FROM rollup_out_ranges"
                              ).fetchone()
        assert ranges is not None
        out_rooms = int(ranges[0])
        if out_rooms:
            conn.execute(_OUT_FRESH, {"lo": ranges[1] - OUT_GAP, "hi": ranges[2] + OUT_GAP})
            conn.execute("ANALYZE rollup_out_fresh")
            conn.execute(_OUT_DELETE)
            conn.execute(_OUT_UPSERT)
        conn.execute(_MARKS_DONE)
        conn.execute("UPDATE rollup_state SET initialized = true, refreshed_to = %s, "
                     "refreshed_snapshot = %s, refreshed_at = clock_timestamp()"
                     + (", reconciled_at = %s" if reconcile_hours else "") + " WHERE id = 1",
                     (now, snapshot_row[0], now) if reconcile_hours
                     else (now, snapshot_row[0]))
    result = RefreshResult(full, count_buckets, out_rooms, skipped, now,
                           round(time.monotonic() - started, 3))
    log.info("rollup refreshed%s: %d bucket(s) re-counted, minutes out re-derived in %d "
             "room(s), complete to %s, %.2f s", " (full build)" if full else "",
             count_buckets, out_rooms, now.isoformat(timespec="seconds"), result.seconds)
    return result


# -- coverage (used by the export) ------------------------------------------------------

def exact_for(tz: ZoneInfo, start: datetime, end: datetime, step_s: int = 900) -> bool:
    """Whether local buckets of 15 min / 1 h / 1 d are unions of UTC buckets of ``step_s``
    (900: ``event_rollup``, 3600: ``event_rollup_1h``) over [start, end): the zone's offset
    is a whole number of steps on every day (checked daily; offsets change at most twice a
    year) and the bounds are on steps."""
    for bound in (start, end):
        if bound.timestamp() % step_s:
            return False
    moment = start
    while moment <= end:
        offset = moment.astimezone(tz).utcoffset()
        if offset is None or offset.total_seconds() % step_s:
            return False
        moment += timedelta(days=1)
    return True


# Buckets of the site and period holding events that arrived around or after the last
# refresh; covered when their raw counts equal the rollup's. Events are only ever inserted
# (retention aside), so equal counts per (room, kind) mean the refresh saw exactly these
# events, and, having seen them as new, re-derived the minutes out around them.
_RECENT_MATCH = """
WITH recent AS (
    SELECT DISTINCT time_bucket('15 minutes', ts) AS bucket FROM events
    WHERE site = %(site)s AND ts >= %(lo)s AND ts < %(hi)s AND received_at > %(since)s),
raw AS (
    SELECT e.room, r.bucket, e.kind, count(*)::int AS events
    FROM recent r JOIN events e ON e.site = %(site)s AND e.ts >= r.bucket
     AND e.ts < r.bucket + interval '15 minutes'
    WHERE e.ts >= %(lo)s - interval '15 minutes' AND e.ts < %(hi)s + interval '15 minutes'
    GROUP BY 1, 2, 3),
rolled AS (
    SELECT x.room, x.bucket, x.kind, x.events
    FROM recent r JOIN event_rollup x ON x.site = %(site)s AND x.bucket = r.bucket)
SELECT NOT EXISTS (SELECT * FROM raw EXCEPT SELECT * FROM rolled)
   AND NOT EXISTS (SELECT * FROM rolled EXCEPT SELECT * FROM raw)
"""


def covers(conn: psycopg.Connection, site: str, start: datetime, end: datetime, *,
           overlap: timedelta = DEFAULT_OVERLAP) -> bool:
    """Whether the rollups hold exactly what the raw events of [start, end) would give.

    True when they were built and every event of that site and period (and 3 h around it,
    for the minutes out) that arrived within ``overlap`` of the last refresh or after it is
    already counted. Also true when the period reaches back before the retention horizon:
    the raw events are gone there, the rollup is the record.
    """
    state = read_state(conn)
    if state is None or not state.initialized or state.refreshed_to is None:
        return False
    if state.raw_kept_from is not None and start < state.raw_kept_from + OUT_GAP:
        return True
    marked = conn.execute("SELECT EXISTS (SELECT 1 FROM rollup_backdated WHERE site = %s "
                          "AND bucket >= %s AND bucket < %s)",
                          (site, start - OUT_GAP - BUCKET, end + OUT_GAP)).fetchone()
    if marked is not None and marked[0]:
        return False
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")
        row = conn.execute(_RECENT_MATCH, {"site": site, "lo": start - OUT_GAP,
                                           "hi": end + OUT_GAP,
                                           "since": state.refreshed_to - overlap}).fetchone()
    return row is not None and bool(row[0])
