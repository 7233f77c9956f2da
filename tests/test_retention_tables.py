"""Retention for every table beside the raw events (tests/test_retention.py has those and the
dead letters): resolved alerts with their change rows and triggers, the audit log, the three
rollup tables; open alerts are kept whatever their age; the maintenance round applies it all.

The rows live in 1975-1976, older than any other test's, and each test looks only at its own
site: a cut at 1976-01-01 takes nothing another test needs."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from ingest import retention
from ingest.maintenance import Maintenance
from tests.support.store import unique

OLD = datetime(1975, 6, 1, 2, 0, tzinfo=UTC)
KEPT = datetime(1976, 6, 1, 2, 0, tzinfo=UTC)
CUT = datetime(1976, 1, 1, tzinfo=UTC)
FAR = 36500  # days: keeps everything of the tables not under test


def _days_to_cut() -> int:
    return (datetime.now(UTC) - CUT).days


def _site(db: psycopg.Connection) -> str:
    site = unique("rt")
    db.execute("INSERT INTO sites (id, name) VALUES (%s, 'Arkivet')", (site,))
    return site


def _alert(db: psycopg.Connection, site: str, at: datetime, status: str) -> int:
    resolved = status == "resolved"
    row = db.execute(
        "INSERT INTO alerts (site, room, rule, severity, episode_key, status, first_ts, last_ts,"
        " raised_at, resolved_by, resolved_at, outcome) VALUES (%s, 'f1', 'left_flat', "
        "'normal', %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (site, unique(site), status, at, at, at, "nurse" if resolved else None,
         at if resolved else None, "help_given" if resolved else None)).fetchone()
    assert row is not None
    alert = int(row[0])
    db.execute("INSERT INTO alert_changes (alert_id, site, change, at, alert) VALUES "
               "(%s, %s, 'raised', %s, '{}')", (alert, site, at))
    db.execute("INSERT INTO alert_triggers (episode_key, event_key, ts) SELECT episode_key, "
               "'e-' || id, %s FROM alerts WHERE id = %s", (at, alert))
    return alert


def _left(db: psycopg.Connection, site: str) -> dict[str, int]:
    counts = {}
    for name, query in (
            ("alerts", "SELECT count(*) FROM alerts WHERE site = %s"),
            ("alert_changes", "SELECT count(*) FROM alert_changes WHERE site = %s"),
            ("alert_triggers", "SELECT count(*) FROM alert_triggers WHERE starts_with("
             "episode_key, %s)"),
            ("audit_log", "SELECT count(*) FROM audit_log WHERE site = %s"),
            ("event_rollup", "SELECT count(*) FROM event_rollup WHERE site = %s"),
            ("event_rollup_1h", "SELECT count(*) FROM event_rollup_1h WHERE site = %s"),
            ("event_rollup_out", "SELECT count(*) FROM event_rollup_out WHERE site = %s")):
        row = db.execute(query, (site,)).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


def test_resolved_alerts_older_than_their_retention_go_with_their_changes_and_triggers(
        db: psycopg.Connection) -> None:
    site = _site(db)
    old_resolved = _alert(db, site, OLD, "resolved")
    old_open = _alert(db, site, OLD, "open")
    old_acknowledged = _alert(db, site, OLD, "acknowledged")
    recent = _alert(db, site, KEPT, "resolved")

    result = retention.expire_records(db, alerts=_days_to_cut(), audit=FAR, rollup=FAR)

    assert result.alerts_deleted >= 1
    kept = {a for (a,) in db.execute("SELECT id FROM alerts WHERE site = %s", (site,))}
    assert kept == {old_open, old_acknowledged, recent}
    assert old_resolved not in kept
    assert _left(db, site)["alert_changes"] == 3 and _left(db, site)["alert_triggers"] == 3


def test_audit_rows_older_than_their_retention_go(db: psycopg.Connection) -> None:
    site = _site(db)
    for at in (OLD, KEPT):
        db.execute("INSERT INTO audit_log (at, actor, action, site) VALUES (%s, 'nurse', "
                   "'alert.ack', %s)", (at, site))

    result = retention.expire_records(db, alerts=FAR, audit=_days_to_cut(), rollup=FAR)

    assert result.audit_deleted >= 1
    assert [at for (at,) in db.execute("SELECT at FROM audit_log WHERE site = %s",
                                       (site,))] == [KEPT]


def test_rollups_older_than_their_retention_go_from_all_three_tables(
        db: psycopg.Connection) -> None:
    site = _site(db)
    for at in (OLD, KEPT):
        for table in ("event_rollup", "event_rollup_1h"):
            db.execute(f"INSERT INTO {table} (site, bucket, room, kind, events) VALUES "
                       "(%s, %s, 'f1', 'door.open', 3)", (site, at))
        db.execute("INSERT INTO event_rollup_out (site, room, bucket, seconds) VALUES "
                   "(%s, 'f1', %s, 60)", (site, at))

    # Never shorter than the raw events: with events kept FAR, nothing goes.
    retention.expire_records(db, alerts=FAR, audit=FAR, rollup=_days_to_cut(), events=FAR)
    assert _left(db, site)["event_rollup"] == 2

    result = retention.expire_records(db, alerts=FAR, audit=FAR, rollup=_days_to_cut(),
                                      events=_days_to_cut())
    assert result.rollup_rows_deleted >= 3
    left = _left(db, site)
    assert (left["event_rollup"], left["event_rollup_1h"], left["event_rollup_out"]) == (1, 1, 1)


def test_a_retention_below_one_day_is_refused(db: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="at least 1 day"):
        retention.expire_records(db, alerts=0, audit=FAR, rollup=FAR)


def test_the_maintenance_round_applies_the_retention_of_every_table(
        db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    site = _site(db)
    _alert(db, site, OLD, "resolved")
    db.execute("INSERT INTO audit_log (at, actor, action, site) VALUES (%s, 'nurse', "
               "'alert.ack', %s)", (OLD, site))
    db.execute("INSERT INTO event_rollup_out (site, room, bucket, seconds) VALUES "
               "(%s, 'f1', %s, 60)", (site, OLD))
    days = str(_days_to_cut())
    for name in ("ALERT", "AUDIT", "ROLLUP"):
        monkeypatch.setenv(f"NATTERO_{name}_RETENTION_DAYS", days)
    # Raw events stay under their own (far) retention; rollups are never cut shorter.
    monkeypatch.setenv("NATTERO_RETENTION_DAYS", days)
    get_settings.cache_clear()
    try:
        report = Maintenance(get_settings().resolved_database_url()).run_once(
            retention_now=True, reconcile_now=False)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert report["record_retention"]["alert_days"] == int(days)
    assert _left(db, site) == dict.fromkeys(_left(db, site), 0)
