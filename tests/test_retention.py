"""Retention drops only whole chunks older than the retention, keeps the rollups, deletes old
dead letters; the maintenance thread survives database errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from core.settings import StackInfo
from evaluation.occupancy import Bucket, Level, Manifest, OccupancyRequest, Source, occupancy_rows
from evaluation.period import Period, load_sites
from ingest import retention, rollups
from ingest.maintenance import Maintenance
from simulators import load_profile
from tests.support.evaluation import provision
from tests.support.store import unique
from tests.support.waiting import wait_until

# Far in the past, so that dropping these chunks cannot touch another test's events.
OLD_DAY = date(1985, 5, 1)
CUTOFF = datetime(1985, 6, 1, tzinfo=UTC)
KEPT_DAY = date(1985, 6, 10)


def _day_of_events(conn: psycopg.Connection, profile, day: date) -> int:
    """Heartbeats every 5 minutes and a trip out of the first flat at 01:00-01:30 UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    flat = next(r.id for r in profile.rooms if r.kind.value == "flat")
    door = next(d for d in profile.device_specs if d.room == flat and d.kind.value == "door")
    rows = [(profile.site, door.id, f"hb-{day}-{i}", start + timedelta(minutes=5 * i), flat,
             "heartbeat") for i in range(288)]
    rows += [(profile.site, door.id, f"c-{day}", start + timedelta(hours=1), flat, "door.closed"),
             (profile.site, door.id, f"o-{day}", start + timedelta(hours=1, minutes=30), flat,
              "door.open")]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO events (site, device, event_id, ts, room, kind, "
                        "received_at) VALUES (%s, %s, %s, %s, %s, %s, clock_timestamp())", rows)
    return len(rows)


def _export(conn: psycopg.Connection, site: str, day: date, source: Source):
    request = OccupancyRequest((site,), Period(day, day), Level.ROOM, Bucket.HOUR, k=1)
    manifest = Manifest(request, "csv", {})
    rows = list(occupancy_rows(conn, request, load_sites(conn, [site]), manifest, "s", source))
    return rows, manifest


@pytest.fixture
def horizon_reset(db: psycopg.Connection) -> Iterator[None]:
    """The retention horizon is one per database and only moves forward; this test needs it
    before its 1985 days, so it is cleared for the test and restored (or moved on) after."""
    row = db.execute("SELECT raw_kept_from FROM rollup_state WHERE id = 1").fetchone()
    db.execute("UPDATE rollup_state SET raw_kept_from = NULL WHERE id = 1")
    try:
        yield
    finally:
        if row and row[0]:
            db.execute("UPDATE rollup_state SET raw_kept_from = greatest(raw_kept_from, %s) "
                       "WHERE id = 1", (row[0],))


def test_retention_drops_only_old_chunks_and_keeps_the_rollup(
        db: psycopg.Connection, horizon_reset: None) -> None:
    profile = load_profile("egely").model_copy(update={"site": unique("ret"), "tz": "UTC"})
    provision(db, profile)
    old = _day_of_events(db, profile, OLD_DAY)
    kept = _day_of_events(db, profile, KEPT_DAY)
    rollups.refresh(db)
    old_export, manifest = _export(db, profile.site, OLD_DAY, Source.EVENTS)
    assert len(old_export) == 24 and manifest.sources == {profile.site: "events"}
    assert sum(row[-3] for row in old_export) == 30.0  # minutes out of flat

    days = (datetime.now(UTC) - CUTOFF).days
    result = retention.apply_retention(db, days=days, dead_letter_retention=30)
    assert result.mode == "drop_chunks" and result.chunks_dropped >= 1

    count = "SELECT count(*) FROM events WHERE site = %s AND ts >= %s AND ts < %s"
    day = timedelta(days=1)
    old_start = datetime(OLD_DAY.year, OLD_DAY.month, OLD_DAY.day, tzinfo=UTC)
    kept_start = datetime(KEPT_DAY.year, KEPT_DAY.month, KEPT_DAY.day, tzinfo=UTC)
    assert db.execute(count, (profile.site, old_start, old_start + day)).fetchone() == (0,)
    assert db.execute(count, (profile.site, kept_start, kept_start + day)).fetchone() == (kept,)
    # Nothing newer than the retention went: no chunk ending after the cutoff was dropped.
    row = db.execute("SELECT count(*) FROM timescaledb_information.chunks "
                     "WHERE hypertable_name = 'events' AND range_end <= %s",
                     (CUTOFF,)).fetchone()
    assert row == (0,)

    # The rollup still holds the dropped day, and the export reads it from there.
    rolled = db.execute("SELECT sum(events) FROM event_rollup WHERE site = %s AND bucket >= %s "
                        "AND bucket < %s", (profile.site, old_start, old_start + day)).fetchone()
    assert rolled == (old,)
    after, manifest = _export(db, profile.site, OLD_DAY, Source.AUTO)
    assert manifest.sources[profile.site].startswith("rollup")
    assert after == old_export
    state = rollups.read_state(db)
    assert state is not None and state.raw_kept_from is not None
    assert state.raw_kept_from >= old_start + day

    # A refresh never rewrites a dropped day, even when a late event lands in it.
    db.execute("INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
               "SELECT %s, d.id, 'very-late', %s, d.room, 'motion', clock_timestamp() "
               "FROM devices d WHERE d.site = %s LIMIT 1",
               (profile.site, old_start + timedelta(hours=3), profile.site))
    assert rollups.refresh(db).skipped_dropped >= 1
    assert db.execute("SELECT sum(events) FROM event_rollup WHERE site = %s AND bucket >= %s "
                      "AND bucket < %s", (profile.site, old_start, old_start + day)
                      ).fetchone() == (old,)
    retention.apply_retention(db, days=days, dead_letter_retention=30)  # and it goes again


def test_old_dead_letters_are_deleted(db: psycopg.Connection) -> None:
    topic = unique("nattero/v1/dl")
    for age in (45, 5):
        db.execute("INSERT INTO dead_letters (received_at, topic, payload, reason, detail) "
                   "VALUES (now() - %s::interval, %s, 'x', 'test', %s)",
                   (f"{age} days", topic, str(age)))
    result = retention.apply_retention(db, days=36500, dead_letter_retention=30)
    assert result.dead_letters_deleted >= 1
    left = db.execute("SELECT detail FROM dead_letters WHERE topic = %s", (topic,)).fetchall()
    assert left == [("5",)]


def test_dead_letters_beyond_the_row_cap_go_oldest_first(db: psycopg.Connection) -> None:
    topic = unique("nattero/v1/dl")
    for year in (1990, 1991, 1992):
        db.execute("INSERT INTO dead_letters (received_at, topic, payload, reason, detail) "
                   "VALUES (%s, %s, 'x', 'test', %s)",
                   (datetime(year, 1, 1, tzinfo=UTC), topic, str(year)))
    row = db.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert row is not None
    total = int(row[0])
    result = retention.apply_retention(db, days=36500, dead_letter_retention=36500,
                                       dead_letter_rows=total - 2)
    assert result.dead_letters_deleted == 2
    left = db.execute("SELECT detail FROM dead_letters WHERE topic = %s", (topic,)).fetchall()
    assert left == [("1992",)]


def test_old_dead_letter_counts_are_deleted_with_the_dead_letters(
        db: psycopg.Connection) -> None:
    sender = unique("nattero/v1/dl")
    for age in (45, 5):
        db.execute("INSERT INTO dead_letter_minutes (minute, sender, received, stored) "
                   "VALUES (date_trunc('minute', now() - %s::interval), %s, %s, 20)",
                   (f"{age} days", sender, 1000 + age))
    retention.apply_retention(db, days=36500, dead_letter_retention=30)
    left = db.execute("SELECT received, suppressed FROM dead_letter_minutes WHERE sender = %s",
                      (sender,)).fetchall()
    assert left == [(1005, 985)]


@pytest.mark.pure
def test_retention_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        retention.apply_retention(None, days=0)  # type: ignore[arg-type]


@pytest.mark.pure
def test_retention_days_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setenv("NATTERO_RETENTION_DAYS", "123")
    try:
        assert retention.retention_days() == 123
        monkeypatch.delenv("NATTERO_RETENTION_DAYS")
        get_settings.cache_clear()
        assert retention.retention_days() == retention.DEFAULT_RETENTION_DAYS
    finally:
        get_settings.cache_clear()


def test_maintenance_thread_survives_a_database_error(migrated: StackInfo) -> None:
    # Nothing listens on port 9 (discard): every round fails to connect.
    broken = "postgresql://nattero:x@127.0.0.1:9/nattero"
    job = Maintenance(broken, every_s=0.05, retention_enabled=False)
    job.start()
    try:
        assert wait_until(lambda: job.failures >= 3, timeout=20)
        assert job.running and job.rounds == 0 and job.last_error
        job._dsn = migrated.database_url  # the database is back
        assert wait_until(lambda: job.rounds >= 1, timeout=60)
        assert job.running and job.consecutive_failures == 0 and job.last_error is None
    finally:
        job.stop()
    assert not job.running
    time.sleep(0.1)
