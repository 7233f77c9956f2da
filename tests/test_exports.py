"""Anonymous occupancy exports over a simulated month of two pilot sites."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest

from evaluation.occupancy import KINDS
from simulators import load_profile
from tests.support.api import Account
from tests.support.evaluation import SimulatedMonth, load_nights, provision
from tests.support.exports import REASON, export, number, read_export, whole_month
from tests.support.store import unique

FORMATS = ("csv", "csv-da", "parquet", "xlsx")
Headers = Callable[[Account], dict[str, str]]


def stored_kinds(db: psycopg.Connection, sites: list[str], first: date, last: date) -> Counter[str]:
    rows = db.execute(
        "SELECT e.kind, count(*) FROM events e JOIN sites s ON s.id = e.site "
        "WHERE e.site = ANY(%s) AND e.ts >= (%s::date)::timestamp AT TIME ZONE s.tz "
        "AND e.ts < (%s::date + 1)::timestamp AT TIME ZONE s.tz GROUP BY 1",
        (sites, first, last)).fetchall()
    return Counter({kind: count for kind, count in rows})


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("level", ["site", "room"])
def test_export_totals_match_the_stored_events(
        ev_http: httpx.Client, db: psycopg.Connection, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers, level: str, fmt: str) -> None:
    admin = headers_for(make_user("admin"))  # k=1: nothing suppressed, so totals are whole
    month = simulated_month
    first, last = whole_month(month.first)
    response = export(ev_http, admin, month.site_ids, first, last,
                      level=level, bucket="1h", format=fmt, k=1)
    rows, manifest = read_export(response, fmt)
    stored = stored_kinds(db, month.site_ids, first, last)
    exported = Counter({kind: int(sum(number(row[name]) for row in rows))
                        for name, kind in KINDS})
    assert +exported == +stored
    if fmt != "xlsx":
        assert manifest["rows"] == len(rows)
        assert set(manifest["rows_per_site"]) == set(month.site_ids)


@pytest.mark.parametrize("bucket,minutes", [("15m", 15), ("1d", 1440)])
def test_buckets_are_aligned_and_total_the_stored_events(
        ev_http: httpx.Client, db: psycopg.Connection, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers, bucket: str,
        minutes: int) -> None:
    admin = headers_for(make_user("admin"))
    site = simulated_month.site_ids[0]
    first, last = whole_month(simulated_month.first)
    rows, _ = read_export(export(ev_http, admin, [site], first, last, level="room",
                                 bucket=bucket, k=1), "csv")
    starts = {datetime.fromisoformat(row["bucket"]) for row in rows}
    assert all((s.hour * 60 + s.minute) % minutes == 0 and s.second == 0 for s in starts)
    assert sum(int(row["heartbeat"]) for row in rows) == \
        stored_kinds(db, [site], first, last)["heartbeat"]


@pytest.mark.parametrize("bucket", ["15m", "1h", "1d"])
def test_room_rows_add_up_to_the_site_rows_under_suppression(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers, bucket: str) -> None:
    """With k suppressing, room level and site level show the same published cells."""
    evaluator = headers_for(make_user("evaluator"))
    site = simulated_month.sites[0]  # a few quarter hours with only 1-3 rooms reporting
    first, last = whole_month(simulated_month.first)
    rooms, _ = read_export(export(ev_http, evaluator, [site.id], first, last, level="room",
                                  bucket=bucket), "csv")
    sites, manifest = read_export(export(ev_http, evaluator, [site.id], first, last,
                                         bucket=bucket), "csv")
    assert manifest["suppression"]["suppressed_quarters"] > 0  # k bites
    per_bucket: dict[str, Counter[str]] = {}
    for row in rooms:
        per_bucket.setdefault(row["bucket"], Counter()).update(
            {name: int(row[name]) for name, _ in KINDS})
    published = {row["bucket"]: Counter({name: int(row[name]) for name, _ in KINDS})
                 for row in sites if row["suppressed"] == "0"}
    assert {b: +c for b, c in per_bucket.items()} == {b: +c for b, c in published.items()}


def _cells(response: httpx.Response, fmt: str) -> list[str]:
    rows, manifest = read_export(response, fmt)
    cells = [str(value) for row in rows for value in row.values()]
    return [*cells, json.dumps(manifest, default=str)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("level", ["site", "room"])
def test_no_device_id_room_label_or_raw_timestamp_in_any_export(
        ev_http: httpx.Client, db: psycopg.Connection, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers, level: str, fmt: str) -> None:
    evaluator = headers_for(make_user("evaluator"))
    month = simulated_month
    first, last = month.first, month.first + timedelta(days=1)  # raw stamps looked for
    response = export(ev_http, evaluator, month.site_ids, *whole_month(first), level=level,
                      bucket="15m", format=fmt)
    cells = _cells(response, fmt)
    text = "\n".join(cells)
    rooms = db.execute("SELECT id, label FROM rooms WHERE site = ANY(%s)",
                       (month.site_ids,)).fetchall()
    devices = [d for (d,) in db.execute("SELECT id FROM devices WHERE site = ANY(%s)",
                                        (month.site_ids,))]
    assert not [d for d in devices if d in text]
    assert not [label for _, label in rooms if label in text]
    assert not {room for room, _ in rooms} & set(cells)
    stamps = db.execute(
        "SELECT ts FROM events WHERE site = ANY(%s) AND ts >= %s AND ts < %s "
        "AND extract(microseconds FROM ts)::bigint %% 60000000 <> 0",
        (month.site_ids, first, last + timedelta(days=1))).fetchall()
    raw = {form for (ts,) in stamps
           for form in (ts.isoformat(), ts.replace(tzinfo=None).isoformat(sep=" "),
                        ts.strftime("%Y-%m-%dT%H:%M:%S"), ts.strftime("%H:%M:%S"))}
    assert raw and not raw & set(cells)
    assert not [c for c in cells[:-1] if "." in c and ":" in c]  # no sub-second time


def test_bucket_with_fewer_than_k_contributing_rooms_is_suppressed(
        ev_http: httpx.Client, db: psycopg.Connection, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    # A tiny home: egely cut down to three flats; no bucket can have five rooms in it.
    base = load_profile("egely")
    group = base.flats[0].model_copy(update={"numbers": "1-3"})
    profile = base.model_copy(update={"site": unique("ev"), "flats": [group], "common": [],
                                      "exits": []})
    provision(db, profile)
    load_nights(db, profile, date(2026, 10, 1), 2)
    rows, manifest = read_export(export(ev_http, evaluator, [profile.site], date(2026, 10, 1),
                                        date(2026, 10, 3), bucket="1h"), "csv")
    assert rows and all(row["suppressed"] == "1" for row in rows)
    assert all(row["door_open"] == "" and row["flats_at_rest"] == "" for row in rows)
    assert all(int(row["rooms_contributing"]) < 5 for row in rows)
    assert manifest["suppression"]["applied"] is True
    assert manifest["suppression"]["k"] == 5
    assert manifest["suppression"]["suppressed_rows"] == len(rows) == manifest["rows"]


def test_raising_k_suppresses_buckets_of_a_larger_site(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    site = simulated_month.sites[0]
    rooms = len(site.profile.rooms)
    first = simulated_month.first
    low, low_manifest = read_export(export(ev_http, evaluator, [site.id], first, first,
                                           bucket="1h", k=rooms), "csv")
    high, high_manifest = read_export(export(ev_http, evaluator, [site.id], first, first,
                                             bucket="1h", k=rooms + 1), "csv")
    assert all(r["suppressed"] == "1" for r in high)
    assert high_manifest["suppression"]["suppressed_rows"] == len(high)
    assert low_manifest["suppression"]["suppressed_rows"] < len(low)


def _pseudonyms(http: httpx.Client, headers: dict[str, str], site: str, first: date,
                last: date) -> set[str]:
    rows, _ = read_export(export(http, headers, [site], first, last, level="room",
                                 bucket="1d"), "csv")
    return {row["room"] for row in rows}


def test_room_pseudonyms_are_stable_within_a_month_and_room_level_takes_whole_months(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    site = simulated_month.sites[0]
    first, last = whole_month(simulated_month.first)
    once = _pseudonyms(ev_http, evaluator, site.id, first, last)
    again = _pseudonyms(ev_http, evaluator, site.id, first, last)
    assert once == again
    assert len(once) == len(site.profile.rooms)
    assert all(p.startswith("r-") for p in once)
    # Pseudonyms of a different month: see test_export_anonymity.py (data in two months).
    week = export(ev_http, evaluator, [site.id], first, first + timedelta(days=6),
                  level="room", bucket="1d")
    assert week.status_code == 422
    assert f"from={first} to={last}" in week.json()["detail"]
    assert week.json()["detail"].startswith("Eksport pr. rum")  # Danish first


def test_staff_get_403_on_exports(ev_http: httpx.Client, simulated_month: SimulatedMonth,
                                  make_user: Callable[..., Account],
                                  headers_for: Headers) -> None:
    site = simulated_month.site_ids[0]
    staff = headers_for(make_user("staff", site))
    response = export(ev_http, staff, [site], simulated_month.first, simulated_month.first)
    assert response.status_code == 403
    assert "evaluator" in response.json()["detail"]


def test_evaluator_gets_403_on_live_alerts(ev_http: httpx.Client,
                                           make_user: Callable[..., Account],
                                           headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    assert ev_http.get("/api/v1/alerts", headers=evaluator).status_code == 403


def test_evaluator_may_not_lower_k(ev_http: httpx.Client, simulated_month: SimulatedMonth,
                                   make_user: Callable[..., Account],
                                   headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    response = export(ev_http, evaluator, simulated_month.site_ids, simulated_month.first,
                      simulated_month.first, k=2)
    assert response.status_code == 403


def test_unknown_site_is_404_and_reversed_period_422(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    first = simulated_month.first
    assert export(ev_http, evaluator, ["no-such-site"], first, first).status_code == 404
    reversed_ = export(ev_http, evaluator, simulated_month.site_ids, first,
                       first - timedelta(days=1))
    assert reversed_.status_code == 422
    assert "before" in reversed_.json()["detail"]


def test_every_export_is_written_to_the_audit_log(
        ev_http: httpx.Client, db: psycopg.Connection, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    account = make_user("evaluator")
    site = simulated_month.site_ids[0]
    response = export(ev_http, headers_for(account), [site],
                      *whole_month(simulated_month.first), level="room", format="parquet")
    assert response.status_code == 200
    row = db.execute("SELECT action, site, detail FROM audit_log WHERE actor = %s",
                     (account.username,)).fetchall()
    exports = [r for r in row if r[0] == "export.occupancy"]
    assert len(exports) == 1
    assert exports[0][1] == site
    assert exports[0][2]["level"] == "room" and exports[0][2]["format"] == "parquet"
    assert exports[0][2]["reason"] == REASON


def test_cli_export_writes_the_file_and_audits(
        tmp_path: Any, db: psycopg.Connection, simulated_month: SimulatedMonth) -> None:
    from typer.testing import CliRunner

    from nattero.cli import app

    out = tmp_path / "month.parquet"
    site = simulated_month.site_ids[1]
    before = db.execute("SELECT count(*) FROM audit_log WHERE action = 'export.occupancy' "
                        "AND actor = 'cli' AND site = %s", (site,)).fetchone()
    result = CliRunner().invoke(app, [
        "export", "--site", site, "--from", simulated_month.first.isoformat(),
        "--to", simulated_month.last.isoformat(), "--format", "parquet", "--bucket", "1h",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    parquet = pq.ParquetFile(out)
    manifest = json.loads(parquet.metadata.metadata[b"nattero.manifest"])
    assert parquet.metadata.num_rows == manifest["rows"] > 0
    after = db.execute("SELECT count(*) FROM audit_log WHERE action = 'export.occupancy' "
                       "AND actor = 'cli' AND site = %s", (site,)).fetchone()
    assert before is not None and after is not None and after[0] == before[0] + 1
