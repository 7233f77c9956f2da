"""The SQL of the anonymous occupancy export: per time bucket and room, event counts,
minutes out of the flat and rest, from the raw events or from the rollups.

``evaluation.occupancy`` decides what to ask (level, bucket, source) and what leaves the
export (pseudonyms, suppression); this module builds the statements and streams their rows
through a server-side cursor, so a year of events never sits in memory. Both sources give
the same rows (``ingest.rollups`` says when the rollups cover a period exactly).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import psycopg

__all__ = ["DISTURBANCES", "KINDS", "KIND_COLUMNS", "Rollup", "occupancy_buckets"]

FETCH_ROWS = 5000

# Which rollup rows come from: the 15-minute one; None means the raw events.
Rollup = Literal["15m"]

# Event kinds counted per bucket (column name, stored kind), in export order.
KINDS: tuple[tuple[str, str], ...] = (
    ("door_open", "door.open"), ("door_closed", "door.closed"), ("bed_exit", "bed.exit"),
    ("bed_enter", "bed.enter"), ("motion", "motion"), ("presence_on", "presence.on"),
    ("presence_off", "presence.off"), ("heartbeat", "heartbeat"))
# Kinds that mean someone is up and about; a room without them (and not out) is at rest.
DISTURBANCES = ("door.open", "bed.exit", "motion", "presence.on")
KIND_COLUMNS = tuple(name for name, _ in KINDS)


_SUMS = ", ".join(f"coalesce(ev.{name}, 0) AS {name}" for name in KIND_COLUMNS)
_ROOM_BUCKETS = f"""
room_buckets AS (
    SELECT coalesce(ev.bucket, om.bucket) AS bucket, coalesce(ev.room, om.room) AS room,
           r.kind AS room_kind, {_SUMS},
           coalesce(ev.disturbances, 0) AS disturbances,
           coalesce(om.minutes_out, 0) AS minutes_out
    FROM ev
    FULL JOIN out_minutes om ON om.bucket = ev.bucket AND om.room = ev.room
    JOIN rooms r ON r.site = %(site)s AND r.id = coalesce(ev.room, om.room))
"""


def _room_buckets_sql(zoned: bool) -> str:
    counts = ",\n".join(f"count(*) FILTER (WHERE e.kind = '{kind}') AS {name}"
                        for name, kind in KINDS)
    disturbances = ", ".join(f"'{kind}'" for kind in DISTURBANCES)
    bucket = ("time_bucket(%(width)s::interval, e.ts, %(tz)s)" if zoned
              else "time_bucket(%(width)s::interval, e.ts)")
    left_bucket = bucket.replace("e.ts", "o.left_at")
    return f"""
WITH ev AS (
    SELECT {bucket} AS bucket, e.room,
           {counts},
           count(*) FILTER (WHERE e.kind IN ({disturbances})) AS disturbances
    FROM events e
    WHERE e.site = %(site)s AND e.ts >= %(start)s AND e.ts < %(end)s
    GROUP BY 1, 2),
seq AS (
    SELECT e.room, e.ts, e.kind,
           lead(e.ts) OVER w AS next_ts, lead(e.kind) OVER w AS next_kind
    FROM events e
    JOIN rooms r ON r.site = e.site AND r.id = e.room AND r.kind = 'flat'
    WHERE e.site = %(site)s
      AND e.ts >= %(start)s - interval '3 hours' AND e.ts < %(end)s + interval '3 hours'
      AND e.kind IN ('door.open', 'door.closed', 'bed.exit', 'bed.enter')
    WINDOW w AS (PARTITION BY e.room ORDER BY e.ts, e.kind, e.device, e.event_id)),
outs AS (
    SELECT room, greatest(ts, %(start)s) AS left_at, least(next_ts, %(end)s) AS back_at
    FROM seq
    WHERE kind = 'door.closed' AND next_kind = 'door.open'
      AND next_ts - ts <= interval '3 hours' AND next_ts > %(start)s AND ts < %(end)s),
out_minutes AS (
    SELECT b.bucket, o.room,
           sum(extract(epoch FROM least(o.back_at, b.bucket + %(width)s::interval)
                                  - greatest(o.left_at, b.bucket))) / 60.0 AS minutes_out
    FROM outs o
    -- From one bucket early: in the hour repeated when summer time ends, the zoned
    -- time_bucket of a moment may name the later of the two equal wall-clock buckets.
    CROSS JOIN LATERAL generate_series({left_bucket} - %(width)s::interval,
                                       o.back_at, %(width)s::interval) AS b(bucket)
    WHERE least(o.back_at, b.bucket + %(width)s::interval) > greatest(o.left_at, b.bucket)
    GROUP BY 1, 2),
""" + _ROOM_BUCKETS


def _rollup_buckets_sql(zoned: bool) -> str:
    """The same CTEs from the 15-minute rollups (exact when ``rollups.exact_for``): counts
    from ``event_rollup``, minutes out from ``event_rollup_out``. The hourly rollup cannot
    serve an export: suppression is decided per quarter hour."""
    counts = ",\n".join(
        f"coalesce(sum(r.events) FILTER (WHERE r.kind = '{kind}'), 0)::bigint AS {name}"
        for name, kind in KINDS)
    disturbances = ", ".join(f"'{kind}'" for kind in DISTURBANCES)
    bucket = ("time_bucket(%(width)s::interval, {col}, %(tz)s)" if zoned
              else "time_bucket(%(width)s::interval, {col})")
    return f"""
WITH ev AS (
    SELECT {bucket.format(col="r.bucket")} AS bucket, r.room,
           {counts},
           coalesce(sum(r.events) FILTER (WHERE r.kind IN ({disturbances})), 0)::bigint
               AS disturbances
    FROM event_rollup r
    WHERE r.site = %(site)s AND r.bucket >= %(start)s AND r.bucket < %(end)s
    GROUP BY 1, 2),
out_minutes AS (
    SELECT {bucket.format(col="o.bucket")} AS bucket, o.room, sum(o.seconds) / 60.0 AS minutes_out
    FROM event_rollup_out o
    JOIN rooms r ON r.site = o.site AND r.id = o.room AND r.kind = 'flat'
    WHERE o.site = %(site)s AND o.bucket >= %(start)s AND o.bucket < %(end)s
    GROUP BY 1, 2),
""" + _ROOM_BUCKETS


def _published_sql(quarter_zoned: bool, coarse: str | None, rollup: Rollup | None) -> str:
    """``room_buckets`` per quarter hour, then the published cells only, summed into the
    export's buckets (``coarse`` is the SQL of a coarser bucket of ``{col}``, or None for
    15 minutes).

    ``quarters``: rooms contributing per quarter; a quarter with fewer than ``k`` is
    suppressed. ``published``: per export bucket and room, the sums over its published
    quarters only -- a suppressed quarter's figures never enter any row, at any level or
    bucket width, so no difference of exports can bring them back. ``coarse_buckets``: per
    export bucket, how many of its quarters were suppressed and the most rooms any of them
    had (what a suppressed bucket still shows)."""
    ctes = _rollup_buckets_sql(quarter_zoned) if rollup else _room_buckets_sql(quarter_zoned)
    to_bucket = coarse or "{col}"
    sums = ", ".join(f"sum(rb.{name}) AS {name}" for name in KIND_COLUMNS)
    return ctes + f""",
quarters AS (
    SELECT bucket AS quarter, count(*) AS rooms FROM room_buckets GROUP BY bucket),
coarse_buckets AS (
    SELECT {to_bucket.format(col="q.quarter")} AS bucket,
           count(*) FILTER (WHERE q.rooms < %(k)s) AS quarters_suppressed,
           max(q.rooms) AS most_rooms
    FROM quarters q GROUP BY 1),
published AS (
    SELECT {to_bucket.format(col="rb.bucket")} AS bucket, rb.room, rb.room_kind, {sums},
           sum(rb.disturbances) AS disturbances, sum(rb.minutes_out) AS minutes_out
    FROM room_buckets rb JOIN quarters q ON q.quarter = rb.bucket
    WHERE q.rooms >= %(k)s
    GROUP BY 1, 2, 3)
"""


def _coarse(zoned: bool | None) -> str | None:
    if zoned is None:
        return None
    return ("time_bucket(%(coarse)s::interval, {col}, %(tz)s)" if zoned
            else "time_bucket(%(coarse)s::interval, {col})")


def _room_sql(quarter_zoned: bool, zoned: bool | None, rollup: Rollup | None) -> str:
    names = ", ".join(f"p.{name}::bigint" for name in KIND_COLUMNS)
    return _published_sql(quarter_zoned, _coarse(zoned), rollup) + f"""
SELECT p.bucket, p.room, p.room_kind, {names}, round(p.minutes_out::numeric, 1)::float8,
       p.disturbances = 0 AND p.minutes_out = 0, c.quarters_suppressed
FROM published p JOIN coarse_buckets c ON c.bucket = p.bucket
ORDER BY p.bucket, p.room"""


def _site_sql(quarter_zoned: bool, zoned: bool | None, rollup: Rollup | None) -> str:
    sums = ", ".join(f"sum({name})::bigint AS {name}" for name in KIND_COLUMNS)
    names = ", ".join(f"s.{name}" for name in KIND_COLUMNS)
    return _published_sql(quarter_zoned, _coarse(zoned), rollup) + f""",
site_buckets AS (
    SELECT bucket, count(*) AS rooms_contributing,
           count(*) FILTER (WHERE disturbances > 0 OR minutes_out > 0) AS rooms_active,
           count(*) FILTER (WHERE room_kind = 'flat') AS flats_contributing,
           count(*) FILTER (WHERE room_kind = 'flat' AND disturbances = 0 AND minutes_out = 0)
               AS flats_at_rest,
           {sums}, round(sum(minutes_out)::numeric, 1)::float8 AS minutes_out
    FROM published GROUP BY bucket)
SELECT c.bucket, coalesce(s.rooms_contributing, c.most_rooms), s.rooms_active,
       s.flats_contributing, s.flats_at_rest, {names}, s.minutes_out,
       c.quarters_suppressed, s.bucket IS NULL
FROM coarse_buckets c LEFT JOIN site_buckets s ON s.bucket = c.bucket
ORDER BY c.bucket"""


def occupancy_buckets(conn: psycopg.Connection, *, site: str, tz: str, start: datetime,
                      end: datetime, quarter_zoned: bool, width: str | None,
                      zoned: bool, rollup: Rollup | None, per_room: bool,
                      k: int) -> Iterator[tuple[Any, ...]]:
    """The rows of one site in [start, end), streamed, with k-suppression per quarter hour.

    Quarter hours (``quarter_zoned``: cut in the site's local time ``tz``) with fewer than
    ``k`` contributing rooms are suppressed; the export's buckets (``width``, a PostgreSQL
    interval such as "1 hour", or None for 15 minutes; ``zoned`` cuts them in local time)
    sum only the published quarters.

    Per room (published cells only): ``(bucket, room, room_kind, *KIND_COLUMNS,
    minutes_out, at_rest, quarters_suppressed)``; per site: ``(bucket, rooms_contributing,
    rooms_active, flats_contributing, flats_at_rest, *KIND_COLUMNS, minutes_out,
    quarters_suppressed, suppressed)`` where a suppressed bucket (no published quarter)
    has None for every figure and, as ``rooms_contributing``, the most rooms any of its
    quarters had. ``bucket`` is an aware datetime. ``conn`` must not be in a transaction:
    the site is read in its own (a server-side cursor needs one).
    """
    coarse = zoned if width is not None else None
    sql = (_room_sql(quarter_zoned, coarse, rollup) if per_room
           else _site_sql(quarter_zoned, coarse, rollup))
    params = {"site": site, "tz": tz, "start": start, "end": end, "width": "15 minutes",
              "coarse": width, "k": k}
    with conn.transaction():
        # Bucket arithmetic (a day is 23 or 25 hours at DST) follows the session zone.
        conn.execute("SELECT set_config('TimeZone', %s, true)", (tz,))
        # JIT compiles thousands of functions over a year of daily chunks (seconds of
        # overhead for a sub-second query); a little more work_mem keeps the hash
        # aggregate off disk.
        conn.execute("SET LOCAL jit = off")
        conn.execute("SET LOCAL work_mem = '128MB'")
        with conn.cursor(name=f"occupancy-{site}") as cur:
            cur.itersize = FETCH_ROWS
            cur.execute(sql, params)
            yield from cur
