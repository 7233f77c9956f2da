"""The anonymous occupancy export: activity per time bucket, per site or per pseudonymised room.

Rows are aggregated in the database (``time_bucket`` in the site's time zone) and read
through a server-side cursor, so a year of events never sits in memory. What leaves this
module never holds a room id, a room label, a device id or an event's own timestamp:
only bucket starts (15 minutes or coarser), room pseudonyms and counts.

Site level sums over the rooms that reported in a bucket (any event, heartbeats
included: the *contributing* rooms). A bucket with fewer than ``k`` contributing rooms is
suppressed: its figures are left empty and ``suppressed`` is true.

*Minutes out of flat* is an estimate from a flat's door and bed sensors: the time from a
door closing to the next door opening, when no bed event lies between them (the resident
went out and came back) and the gap is at most three hours.

Source: the 15-minute rollups of ``ingest.rollups`` when they cover the site and period
exactly (``Source.AUTO``: refreshed after every event of the period arrived, zone offsets
on quarter hours), else the raw events. Both give the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg

from evaluation.period import Period, SiteInfo
from evaluation.pseudonyms import RoomPseudonyms
from ingest import rollups

DEFAULT_K = 5
FETCH_ROWS = 5000


class Level(StrEnum):
    SITE = "site"
    ROOM = "room"


class Source(StrEnum):
    AUTO = "auto"  # the rollups where they cover the request exactly, else raw events
    ROLLUP = "rollup"  # the rollups whenever the zone allows it (tests, benches)
    EVENTS = "events"  # always the raw events


class Bucket(StrEnum):
    QUARTER = "15m"
    HOUR = "1h"
    DAY = "1d"

    @property
    def interval(self) -> str:
        return {"15m": "15 minutes", "1h": "1 hour", "1d": "1 day"}[self.value]

    @property
    def minutes(self) -> int:
        return {"15m": 15, "1h": 60, "1d": 1440}[self.value]


# Event kinds counted per bucket (column name, stored kind), in export order.
KINDS: tuple[tuple[str, str], ...] = (
    ("door_open", "door.open"), ("door_closed", "door.closed"), ("bed_exit", "bed.exit"),
    ("bed_enter", "bed.enter"), ("motion", "motion"), ("presence_on", "presence.on"),
    ("presence_off", "presence.off"), ("heartbeat", "heartbeat"))
# Kinds that mean someone is up and about; a room without them (and not out) is at rest.
DISTURBANCES = ("door.open", "bed.exit", "motion", "presence.on")
KIND_COLUMNS = tuple(name for name, _ in KINDS)

ROOM_COLUMNS = ("bucket", "site", "room", "room_kind", *KIND_COLUMNS,
                "minutes_out_of_flat", "at_rest")
SITE_COLUMNS = ("bucket", "site", "rooms_contributing", "rooms_active", "flats_contributing",
                "flats_at_rest", *KIND_COLUMNS, "minutes_out_of_flat", "suppressed")


@dataclass(frozen=True, slots=True)
class OccupancyRequest:
    sites: tuple[str, ...]
    period: Period
    level: Level = Level.SITE
    bucket: Bucket = Bucket.QUARTER
    k: int = DEFAULT_K

    @property
    def columns(self) -> tuple[str, ...]:
        return ROOM_COLUMNS if self.level is Level.ROOM else SITE_COLUMNS


@dataclass(slots=True)
class Manifest:
    """What an export holds; finished (rows, suppression) once its rows are read."""

    request: OccupancyRequest
    format: str
    timezones: dict[str, str]
    rows: int = 0
    suppressed_rows: int = 0
    rows_per_site: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # site -> "rollup" | "events"
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        req = self.request
        return {
            "export": "occupancy", "version": 1,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "parameters": {"sites": list(req.sites), "level": req.level.value,
                           "bucket": req.bucket.value, "k": req.k, "format": self.format},
            "period": {"from": req.period.first.isoformat(), "to": req.period.last.isoformat(),
                       "inclusive": True, "timezones": self.timezones,
                       "bucket_start": "local time of the site, ISO 8601 with offset"},
            "columns": list(req.columns),
            "rows": self.rows, "rows_per_site": self.rows_per_site,
            "source": self.sources,
            "suppression": {
                "applies_to": "site level (aggregates over rooms)",
                "applied": req.level is Level.SITE and self.suppressed_rows > 0,
                "k": req.k, "suppressed_rows": self.suppressed_rows,
                "rule": f"a bucket with fewer than {req.k} contributing rooms has its "
                        "figures left empty and suppressed = true"},
            "pseudonyms": ("room = HMAC-SHA256 keyed by the server secret and this period; "
                           "stable inside the period, unlinkable across periods")
                          if req.level is Level.ROOM else None,
            "definitions": {
                "at_rest": "no door.open, bed.exit, motion or presence.on and no time out of "
                           "the flat in the bucket",
                "minutes_out_of_flat": "door closed to next door open with no bed event "
                                       "between (at most 3 h), clipped to the bucket",
                "contributing": "rooms with any event in the bucket, heartbeats included"},
        }


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


def _rollup_buckets_sql(zoned: bool, hourly: bool = False) -> str:
    """The same CTEs from the rollups (exact when ``rollups.exact_for``): counts from
    ``event_rollup`` (15 minutes) or ``event_rollup_1h``, minutes out per 15 minutes."""
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
    FROM {"event_rollup_1h" if hourly else "event_rollup"} r
    WHERE r.site = %(site)s AND r.bucket >= %(start)s AND r.bucket < %(end)s
    GROUP BY 1, 2),
out_minutes AS (
    SELECT {bucket.format(col="o.bucket")} AS bucket, o.room, sum(o.seconds) / 60.0 AS minutes_out
    FROM event_rollup_out o
    JOIN rooms r ON r.site = o.site AND r.id = o.room AND r.kind = 'flat'
    WHERE o.site = %(site)s AND o.bucket >= %(start)s AND o.bucket < %(end)s
    GROUP BY 1, 2),
""" + _ROOM_BUCKETS


def _room_sql(zoned: bool, rollup: str | None = None) -> str:
    names = ", ".join(KIND_COLUMNS)
    ctes = (_rollup_buckets_sql(zoned, rollup == "1h") if rollup
            else _room_buckets_sql(zoned))
    return ctes + f"""
SELECT bucket, room, room_kind, {names}, round(minutes_out::numeric, 1)::float8,
       disturbances = 0 AND minutes_out = 0
FROM room_buckets ORDER BY bucket, room"""


def _site_sql(zoned: bool, rollup: str | None = None) -> str:
    sums = ", ".join(f"sum({name})::bigint" for name in KIND_COLUMNS)
    ctes = (_rollup_buckets_sql(zoned, rollup == "1h") if rollup
            else _room_buckets_sql(zoned))
    return ctes + f"""
SELECT bucket, count(*) AS rooms_contributing,
       count(*) FILTER (WHERE disturbances > 0 OR minutes_out > 0) AS rooms_active,
       count(*) FILTER (WHERE room_kind = 'flat') AS flats_contributing,
       count(*) FILTER (WHERE room_kind = 'flat' AND disturbances = 0 AND minutes_out = 0)
           AS flats_at_rest,
       {sums}, round(sum(minutes_out)::numeric, 1)::float8
FROM room_buckets GROUP BY bucket ORDER BY bucket"""


def use_rollup(conn: psycopg.Connection, site: SiteInfo, start: datetime, end: datetime,
               bucket: Bucket, source: Source = Source.AUTO) -> str | None:
    """Which rollup this site's rows come from: "15m", "1h" (hourly and daily buckets in a
    zone with whole-hour offsets) or None for the raw events (see the module docstring)."""
    if source is Source.EVENTS or not rollups.exact_for(site.tz, start, end):
        return None
    if source is Source.AUTO and not rollups.covers(conn, site.id, start, end):
        return None
    if bucket is not Bucket.QUARTER and rollups.exact_for(site.tz, start, end, 3600):
        return "1h"
    return "15m"


def occupancy_rows(conn: psycopg.Connection, request: OccupancyRequest,
                   sites: list[SiteInfo], manifest: Manifest,
                   secret_key: str, source: Source = Source.AUTO) -> Iterator[tuple[Any, ...]]:
    """The export's rows, site after site, streamed; updates ``manifest`` as it goes.

    ``bucket`` is an aware datetime in the site's time zone. ``conn`` must not be in a
    transaction: each site is read in its own (a server-side cursor needs one).
    """
    pseudonym = RoomPseudonyms(secret_key, request.period)
    for site in sites:
        start, end = request.period.bounds(site.tz)
        zoned = _needs_zoned_buckets(site, request.bucket, start, end)
        rollup = use_rollup(conn, site, start, end, request.bucket, source)
        manifest.sources[site.id] = f"rollup-{rollup}" if rollup else "events"
        sql = (_room_sql(zoned, rollup) if request.level is Level.ROOM
               else _site_sql(zoned, rollup))
        params = {"site": site.id, "tz": site.tz.key, "start": start, "end": end,
                  "width": request.bucket.interval}
        count = 0
        with conn.transaction():
            # Bucket arithmetic (a day is 23 or 25 hours at DST) follows the session zone.
            conn.execute("SELECT set_config('TimeZone', %s, true)", (site.tz.key,))
            # JIT compiles thousands of functions over a year of daily chunks (seconds of
            # overhead for a sub-second query); a little more work_mem keeps the hash
            # aggregate off disk.
            conn.execute("SET LOCAL jit = off")
            conn.execute("SET LOCAL work_mem = '128MB'")
            with conn.cursor(name=f"occupancy-{site.id}") as cur:
                cur.itersize = FETCH_ROWS
                cur.execute(sql, params)
                for row in cur:
                    count += 1
                    bucket = row[0].astimezone(site.tz)
                    if request.level is Level.ROOM:
                        yield (bucket, site.id, pseudonym(site.id, row[1]), *row[2:])
                        continue
                    contributing = row[1]
                    if contributing < request.k:
                        manifest.suppressed_rows += 1
                        yield (bucket, site.id, contributing,
                               *([None] * (len(SITE_COLUMNS) - 4)), True)
                    else:
                        yield (bucket, site.id, *row[1:], False)
        manifest.rows += count
        manifest.rows_per_site[site.id] = count


def _needs_zoned_buckets(site: SiteInfo, bucket: Bucket, start: datetime,
                        end: datetime) -> bool:
    """Whether buckets must be cut in local time: always for days; for 15 minutes and hours
    only in zones whose UTC offset is not a whole number of buckets (plain UTC
    ``time_bucket`` gives the same boundaries there, at a fraction of the cost)."""
    if bucket is Bucket.DAY:
        return True
    step = bucket.minutes * 60
    moments = [start, end, *(start + timedelta(days=d) for d in range(0, (end - start).days, 30))]
    for moment in moments:
        offset = moment.astimezone(site.tz).utcoffset()
        if offset is None or offset.total_seconds() % step:
            return True
    return False


def estimate_rows(request: OccupancyRequest, rooms: int) -> int:
    """An upper bound on the number of rows (for formats with a row limit)."""
    buckets = request.period.days * 1440 // request.bucket.minutes + 2
    return buckets * (rooms if request.level is Level.ROOM else len(request.sites))
