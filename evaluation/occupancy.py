"""The anonymous occupancy export: activity per time bucket, per site or per pseudonymised room.

Rows are aggregated in the database (``time_bucket`` in the site's time zone) and streamed
by ``ingest.occupancy``, so a year of events never sits in memory. What leaves this
module never holds a room id, a room label, a device id or an event's own timestamp:
only bucket starts (15 minutes or coarser), room pseudonyms and counts.

Site level sums over the rooms that reported in a bucket (any event, heartbeats
included: the *contributing* rooms).

Suppression is decided once, per quarter hour of a site, before anything is summed: a
quarter with fewer than ``k`` contributing rooms is suppressed, and its figures enter no
row of any export -- not the site's, not a room's, not an hour's or a day's. Coarser
buckets are sums of published quarters only (``quarters_suppressed`` says how many are
missing), so every export is a function of the published quarter cells and no difference
of exports (15m against 1h against 1d, site against room, k against a higher k) brings a
suppressed cell back. A site-level bucket without a published quarter keeps its bucket,
site and ``rooms_contributing`` (the most any of its quarters had) and leaves the rest
empty with ``suppressed`` true; room level has no row for it. See docs/evaluation.md.

*Minutes out of flat* is an estimate from a flat's door and bed sensors: the time from a
door closing to the next door opening, when no bed event lies between them (the resident
went out and came back) and the gap is at most three hours.

Source: the 15-minute rollups of ``ingest.rollups`` when they cover the site and period
exactly (``Source.AUTO``: refreshed after every event of the period arrived, zone offsets
on quarter hours), else the raw events. Both give the same rows. The hourly rollup cannot
serve an export: suppression needs the quarters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg

from evaluation.period import Period, SiteInfo
from evaluation.pseudonyms import RoomPseudonyms
from ingest import rollups
from ingest.occupancy import DISTURBANCES, KIND_COLUMNS, KINDS, Rollup, occupancy_buckets

__all__ = [
    "DEFAULT_K", "DISTURBANCES", "KINDS", "KIND_COLUMNS", "ROOM_COLUMNS", "SITE_COLUMNS",
    "Bucket", "Level", "Manifest", "OccupancyRequest", "Source", "estimate_rows",
    "needs_zoned_buckets", "occupancy_rows", "use_rollup",
]

DEFAULT_K = 5


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


ROOM_COLUMNS = ("bucket", "site", "room", "room_kind", *KIND_COLUMNS,
                "minutes_out_of_flat", "at_rest", "quarters_suppressed")
SITE_COLUMNS = ("bucket", "site", "rooms_contributing", "rooms_active", "flats_contributing",
                "flats_at_rest", *KIND_COLUMNS, "minutes_out_of_flat", "quarters_suppressed",
                "suppressed")


@dataclass(frozen=True, slots=True)
class OccupancyRequest:
    sites: tuple[str, ...]
    period: Period
    level: Level = Level.SITE
    bucket: Bucket = Bucket.QUARTER
    k: int = DEFAULT_K
    reason: str | None = None  # why room-level data is needed; required there, audited

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
    suppressed_quarters: int = 0
    rows_per_site: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # site -> "rollup" | "events"
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        req = self.request
        return {
            "export": "occupancy", "version": 2,
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
                "applies_to": "every level and bucket width, decided per quarter hour of a "
                              "site before anything is summed",
                "applied": self.suppressed_rows > 0 or self.suppressed_quarters > 0,
                "k": req.k, "suppressed_rows": self.suppressed_rows,
                "suppressed_quarters": self.suppressed_quarters,
                "rule": f"a quarter hour with fewer than {req.k} contributing rooms is "
                        "suppressed: its figures enter no row at any level or bucket width; "
                        "coarser buckets sum only published quarters (quarters_suppressed "
                        "counts the missing ones); a site-level bucket without a published "
                        "quarter has its figures left empty and suppressed = true, and has "
                        "no room-level rows"},
            "pseudonyms": ("room = HMAC-SHA256 keyed by the server secret and the calendar "
                           "month of the bucket: the same in every export of that month, "
                           "unrelated in any other month; room-level exports cover whole "
                           "months; rows of a bucket are in pseudonym order")
                          if req.level is Level.ROOM else None,
            "definitions": {
                "at_rest": "no door.open, bed.exit, motion or presence.on and no time out of "
                           "the flat in the bucket",
                "minutes_out_of_flat": "door closed to next door open with no bed event "
                                       "between (at most 3 h), clipped to the bucket",
                "contributing": "rooms with any event in the bucket, heartbeats included"},
        }


def use_rollup(conn: psycopg.Connection, site: SiteInfo, start: datetime, end: datetime,
               source: Source = Source.AUTO) -> Rollup | None:
    """Which rollup this site's rows come from: "15m", or None for the raw events (see the
    module docstring)."""
    if source is Source.EVENTS or not rollups.exact_for(site.tz, start, end):
        return None
    if source is Source.AUTO and not rollups.covers(conn, site.id, start, end):
        return None
    return "15m"


def occupancy_rows(conn: psycopg.Connection, request: OccupancyRequest,
                   sites: list[SiteInfo], manifest: Manifest,
                   secret_key: str, source: Source = Source.AUTO) -> Iterator[tuple[Any, ...]]:
    """The export's rows, site after site, streamed; updates ``manifest`` as it goes.

    ``bucket`` is an aware datetime in the site's time zone. ``conn`` must not be in a
    transaction: each site is read in its own (a server-side cursor needs one).
    """
    pseudonyms = RoomPseudonyms(secret_key)
    for site in sites:
        start, end = request.period.bounds(site.tz)
        rollup = use_rollup(conn, site, start, end, source)
        manifest.sources[site.id] = f"rollup-{rollup}" if rollup else "events"
        rows = occupancy_buckets(
            conn, site=site.id, tz=site.tz.key, start=start, end=end,
            quarter_zoned=needs_zoned_buckets(site, Bucket.QUARTER, start, end),
            width=None if request.bucket is Bucket.QUARTER else request.bucket.interval,
            zoned=needs_zoned_buckets(site, request.bucket, start, end),
            rollup=rollup, per_room=request.level is Level.ROOM, k=request.k)
        count = 0
        if request.level is Level.ROOM:
            for row in _room_rows(rows, site, pseudonyms, manifest):
                count += 1
                yield row
        else:
            for row in rows:
                count += 1
                manifest.suppressed_quarters += row[-2]
                if row[-1]:
                    manifest.suppressed_rows += 1
                yield (row[0].astimezone(site.tz), site.id, *row[1:])
        manifest.rows += count
        manifest.rows_per_site[site.id] = count


def _room_rows(rows: Iterator[tuple[Any, ...]], site: SiteInfo, pseudonyms: RoomPseudonyms,
               manifest: Manifest) -> Iterator[tuple[Any, ...]]:
    """Room rows with pseudonyms, each bucket's rows sorted by pseudonym: in room-id order
    the n-th row of every bucket would be the same room in every month, and the months'
    pseudonyms would link by position."""
    current: datetime | None = None
    group: list[tuple[Any, ...]] = []
    for row in rows:
        if row[0] != current:
            yield from sorted(group, key=lambda r: str(r[2]))
            group = []
            current = row[0]
            manifest.suppressed_quarters += row[-1]
        bucket = row[0].astimezone(site.tz)
        month = date(bucket.year, bucket.month, 1)
        group.append((bucket, site.id, pseudonyms(site.id, row[1], month), *row[2:]))
    yield from sorted(group, key=lambda r: str(r[2]))


def needs_zoned_buckets(site: SiteInfo, bucket: Bucket, start: datetime,
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
