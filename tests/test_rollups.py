"""15-minute rollups: the export reads the same rows from them as from the raw events, and a
late event that arrives after a refresh is counted by the next one."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner

from core.events import Event, EventKind
from core.settings import StackInfo
from evaluation.occupancy import (
    Bucket,
    Level,
    Manifest,
    OccupancyRequest,
    Source,
    occupancy_rows,
)
from evaluation.period import Period, load_sites
from ingest import rollups
from ingest.writer import Batch, EventWriter
from simulators import load_profile
from tests.support.evaluation import SimulatedSite, provision, simulate_site
from tests.support.store import unique

SECRET = "rollup-test-secret"
FIRST = date(2026, 10, 20)  # the nights span the end of summer time (25 October)
NIGHTS = 8
PERIOD = Period(FIRST, FIRST + timedelta(days=NIGHTS - 1))


@pytest.fixture(scope="module")
def sim(migrated: StackInfo) -> SimulatedSite:
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        # The fixture COPYs events with their simulated arrival times (weeks ago): the
        # trigger marks them as stored late, so the refresh finds them all the same.
        site = simulate_site(conn, "egely", FIRST, NIGHTS)
        assert not rollups.covers(conn, site.id, *PERIOD.bounds(ZoneInfo(site.profile.tz)))
        rollups.refresh(conn)
    return site


@pytest.fixture(scope="module")
def offset_site(migrated: StackInfo) -> str:
    """A site in a zone whose offset is not a whole hour (+05:30): 1 h buckets are cut in
    local time from the 15-minute rollup."""
    profile = load_profile("solsikken").model_copy(
        update={"site": unique("ro"), "tz": "Asia/Kolkata"})
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        provision(conn, profile)
        from tests.support.evaluation import load_nights

        load_nights(conn, profile, FIRST, 4)
        rollups.refresh(conn)
    return profile.site


def export(conn: psycopg.Connection, site: str, level: Level, bucket: Bucket,
           source: Source, period: Period = PERIOD) -> tuple[list[tuple[Any, ...]], Manifest]:
    request = OccupancyRequest((site,), period, level, bucket, k=1)
    manifest = Manifest(request, "csv", {})
    rows = list(occupancy_rows(conn, request, load_sites(conn, [site]), manifest, SECRET,
                               source))
    return rows, manifest


def rolled_kind(bucket: Bucket) -> str:
    """Every bucket width reads the 15-minute rollup: suppression is decided per quarter
    hour, so hours and days are summed from quarters (the hourly rollup cannot say which
    of its quarters were suppressed)."""
    return "rollup-15m"


@pytest.mark.parametrize("bucket", list(Bucket))
@pytest.mark.parametrize("level", list(Level))
def test_rollup_export_equals_raw_export(db: psycopg.Connection, sim: SimulatedSite,
                                         level: Level, bucket: Bucket) -> None:
    raw, raw_manifest = export(db, sim.id, level, bucket, Source.EVENTS)
    rolled, rolled_manifest = export(db, sim.id, level, bucket, Source.ROLLUP)
    auto, auto_manifest = export(db, sim.id, level, bucket, Source.AUTO)
    assert raw_manifest.sources == {sim.id: "events"}
    assert rolled_manifest.sources == {sim.id: rolled_kind(bucket)}
    # Refreshed: the rollup covers the period, so the export picks it by itself.
    assert auto_manifest.sources == {sim.id: rolled_kind(bucket)}
    assert len(raw) > 0
    assert rolled == raw
    assert auto == raw
    minutes_out = -3  # before at_rest/quarters_suppressed, quarters_suppressed/suppressed
    assert sum(row[minutes_out] or 0 for row in raw) > 0  # minutes out were compared too


@pytest.mark.parametrize("bucket", list(Bucket))
def test_rollup_equals_raw_in_a_half_hour_zone(db: psycopg.Connection, offset_site: str,
                                               bucket: Bucket) -> None:
    period = Period(FIRST, FIRST + timedelta(days=3))
    for level in Level:
        raw, _ = export(db, offset_site, level, bucket, Source.EVENTS, period)
        rolled, manifest = export(db, offset_site, level, bucket, Source.ROLLUP, period)
        assert manifest.sources == {offset_site: "rollup-15m"}
        assert raw and rolled == raw


@pytest.mark.pure
def test_rollup_is_not_used_where_it_cannot_be_exact() -> None:
    from zoneinfo import ZoneInfo

    start = datetime(2026, 10, 1, tzinfo=UTC)
    assert rollups.exact_for(ZoneInfo("Europe/Copenhagen"), start, start + timedelta(days=30))
    assert rollups.exact_for(ZoneInfo("Asia/Kathmandu"), start, start + timedelta(days=3))
    # Local mean time of Amsterdam before 1937 (+00:19:32) is not on a quarter hour.
    old = datetime(1930, 1, 1, tzinfo=UTC)
    assert not rollups.exact_for(ZoneInfo("Europe/Amsterdam"), old, old + timedelta(days=3))


def test_late_event_after_a_refresh_is_counted_by_the_next(
        db: psycopg.Connection, migrated: StackInfo) -> None:
    profile = load_profile("egely").model_copy(update={"site": unique("late")})
    provision(db, profile)
    from tests.support.evaluation import load_nights

    load_nights(db, profile, FIRST, 3)
    rollups.refresh(db)
    period = Period(FIRST, FIRST + timedelta(days=2))
    before, manifest = export(db, profile.site, Level.ROOM, Bucket.HOUR, Source.AUTO, period)
    assert manifest.sources[profile.site].startswith("rollup")

    # A flat's door device sends, days late, a night-time trip out: closed at 01:00,
    # opened again at 01:40 (local), at a moment that already has a rollup bucket.
    flat = next(r.id for r in profile.rooms if r.kind.value == "flat")
    door = next(d.id for d in profile.device_specs
                if d.room == flat and d.kind.value == "door")
    tz = profile.tz
    closed = datetime(2026, 10, 21, 1, 0, 7, tzinfo=ZoneInfo(tz))
    late = [Event(profile.site, door, unique("late-c"), closed, EventKind.DOOR_CLOSED, None),
            Event(profile.site, door, unique("late-o"), closed + timedelta(minutes=40),
                  EventKind.DOOR_OPEN, None)]
    writer = EventWriter(migrated.database_url)
    try:
        writer.write(Batch(events=[(e, datetime.now(UTC)) for e in late]))
    finally:
        writer.close()

    # Not refreshed yet: the export notices and reads the raw events (with the late ones).
    raw_now, _ = export(db, profile.site, Level.ROOM, Bucket.HOUR, Source.EVENTS, period)
    auto_now, manifest = export(db, profile.site, Level.ROOM, Bucket.HOUR, Source.AUTO, period)
    assert manifest.sources == {profile.site: "events"}
    assert auto_now == raw_now != before
    stale, _ = export(db, profile.site, Level.ROOM, Bucket.HOUR, Source.ROLLUP, period)
    assert stale == before  # the rollup alone does not have them yet

    result = rollups.refresh(db)
    assert not result.full and result.count_buckets >= 2 and result.out_rooms >= 1
    after, manifest = export(db, profile.site, Level.ROOM, Bucket.HOUR, Source.AUTO, period)
    assert manifest.sources[profile.site].startswith("rollup")
    assert after == raw_now
    for level in Level:
        for bucket in Bucket:
            assert (export(db, profile.site, level, bucket, Source.ROLLUP, period)[0]
                    == export(db, profile.site, level, bucket, Source.EVENTS, period)[0])


def test_backdated_rows_are_marked_and_consumed(db: psycopg.Connection,
                                                sim: SimulatedSite) -> None:
    """A batch stored long after it arrived (held through a database outage) is below the
    watermark; the trigger marks it, the export falls back, the next refresh counts it."""
    door = next(d for d in sim.profile.device_specs if d.kind.value == "door")
    ts = datetime(2026, 10, 22, 2, 3, 4, tzinfo=UTC)
    db.execute("INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
               "VALUES (%s, %s, %s, %s, %s, 'motion', %s)",
               (sim.id, door.id, unique("held"), ts, door.room, ts + timedelta(seconds=1)))
    bounds = PERIOD.bounds(ZoneInfo(sim.profile.tz))
    assert db.execute("SELECT count(*) FROM rollup_backdated WHERE site = %s",
                      (sim.id,)).fetchone() == (1,)
    assert not rollups.covers(db, sim.id, *bounds)
    rollups.refresh(db)
    assert db.execute("SELECT count(*) FROM rollup_backdated WHERE site = %s",
                      (sim.id,)).fetchone() == (0,)
    assert rollups.covers(db, sim.id, *bounds)
    for level in Level:
        assert (export(db, sim.id, level, Bucket.QUARTER, Source.AUTO)[0]
                == export(db, sim.id, level, Bucket.QUARTER, Source.EVENTS)[0])


def test_a_refresh_with_nothing_new_changes_nothing(db: psycopg.Connection,
                                                    sim: SimulatedSite) -> None:
    before = db.execute("SELECT count(*), sum(events) FROM event_rollup WHERE site = %s",
                        (sim.id,)).fetchone()
    rollups.refresh(db)
    rollups.refresh(db, reconcile_hours=1)
    assert db.execute("SELECT count(*), sum(events) FROM event_rollup WHERE site = %s",
                      (sim.id,)).fetchone() == before
    state = rollups.read_state(db)
    assert state is not None and state.initialized and state.refreshed_to is not None


def test_a_burst_counted_once_is_not_counted_again_by_the_next_round(
        db: psycopg.Connection, migrated: StackInfo, sim: SimulatedSite) -> None:
    """Events that arrived just now lie in the next refresh's overlap; the previous refresh
    saw them (its snapshot says so), so the next one does not re-count their buckets."""
    door = next(d for d in sim.profile.device_specs if d.kind.value == "door")
    ts = datetime(2026, 10, 23, 3, 0, tzinfo=UTC)
    burst = [Event(sim.id, door.id, unique("burst"), ts + timedelta(minutes=20 * n),
                   EventKind.MOTION, None) for n in range(6)]
    writer = EventWriter(migrated.database_url)
    try:
        writer.write(Batch(events=[(e, datetime.now(UTC)) for e in burst]))
    finally:
        writer.close()
    first = rollups.refresh(db)
    assert first.count_buckets >= 6
    assert rollups.refresh(db).count_buckets == 0


def test_event_committed_after_a_refresh_began_is_counted_by_the_next_round(
        db: psycopg.Connection, migrated: StackInfo, sim: SimulatedSite) -> None:
    """A batch that arrived before a refresh but committed after it read the events lies
    below that refresh's watermark, and that refresh's snapshot did not see it: the next
    one counts it."""
    door = next(d for d in sim.profile.device_specs if d.kind.value == "door")
    ts = datetime(2026, 10, 24, 2, 7, tzinfo=UTC)
    bucket = datetime(2026, 10, 24, 2, 0, tzinfo=UTC)

    def counted() -> object:
        return db.execute("SELECT coalesce(sum(events), 0) FROM event_rollup WHERE site = %s "
                          "AND bucket = %s", (sim.id, bucket)).fetchone()

    with psycopg.connect(migrated.database_url) as slow:
        slow.execute("INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
                     "VALUES (%s, %s, %s, %s, %s, 'motion', clock_timestamp() - "
                     "interval '1 minute')", (sim.id, door.id, unique("slow"), ts, door.room))
        rollups.refresh(db)  # the batch is not committed yet
        before = counted()
        slow.commit()
    second = rollups.refresh(db)
    assert second.count_buckets >= 1
    assert counted() == db.execute("SELECT count(*) FROM events WHERE site = %s AND ts >= %s "
                                   "AND ts < %s", (sim.id, bucket,
                                                   bucket + timedelta(minutes=15))).fetchone()
    assert counted() != before


def test_maintenance_run_verb(migrated: StackInfo) -> None:
    from nattero.cli import app

    result = CliRunner().invoke(app, ["maintenance", "run", "--no-retention", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["rollup"]["refreshed_to"] and "retention" not in report
