"""The alert-level export: one anonymous row per alert for the evaluators' own analysis.

A home of six flats, one night in October. Every flat sends a heartbeat every quarter hour
-- except in 03:00-03:15, when only flat 2 reports (its door opens): one contributing room,
fewer than k = 5, so that quarter is suppressed in every export, and the alert raised in it
must not appear in this one either. Two more alerts, at 01:07 and 04:52, are published:
their hour only, the month's room pseudonym, rule, outcome, minutes to acknowledge and
resolve.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.settings import StackInfo
from nattero.cli import app
from simulators import SiteProfile, load_profile
from tests.support.api import Account
from tests.support.evaluation import provision
from tests.support.exports import REASON
from tests.support.store import unique

Headers = Callable[[Account], dict[str, str]]

NIGHT = date(2026, 10, 14)
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
THIN_QUARTER = time(3, 0)
TZ = ZoneInfo("Europe/Copenhagen")


def _local(hour: int, minute: int) -> datetime:
    return datetime.combine(NIGHT + timedelta(days=1), time(hour, minute), TZ)


@pytest.fixture(scope="module")
def alert_home(migrated: StackInfo) -> SiteProfile:
    base = load_profile("egely")
    group = base.flats[0].model_copy(update={"numbers": "1-6"})
    profile = base.model_copy(update={"site": unique("alx"), "flats": [group],
                                      "common": [], "exits": []})
    start, end = profile.night_window(NIGHT)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        provision(conn, profile)
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                "COPY events (site, device, event_id, ts, room, kind, received_at) "
                "FROM STDIN") as copy:
            n = 0
            quarter = start
            while quarter < end:
                thin = quarter.astimezone(TZ).time() == THIN_QUARTER
                for flat in (2,) if thin else range(1, 7):
                    n += 1
                    copy.write_row((profile.site, f"f{flat:02d}-door", str(n),
                                    quarter + timedelta(seconds=30 + flat),
                                    f"f{flat:02d}", "door.open" if thin else "heartbeat",
                                    quarter + timedelta(seconds=31 + flat)))
                quarter += timedelta(minutes=15)
        device = profile.device_specs[0].id
        with conn.transaction():
            for room, first, acked, resolved, outcome in (
                    ("f01", _local(1, 7), 2.5, 11.9, "help_given"),
                    ("f02", _local(3, 4), 1.0, 5.0, "false_alarm"),   # the thin quarter
                    ("f05", _local(4, 52), None, None, None)):        # nobody came
                conn.execute(
                    "INSERT INTO alerts (site, room, device, rule, severity, episode_key, "
                    "status, first_ts, last_ts, raised_at, acknowledged_by, acknowledged_at, "
                    "resolved_by, resolved_at, outcome) VALUES (%s, %s, %s, 'left_flat', "
                    "'normal', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (profile.site, room, device, f"{profile.site}:{room}",
                     "resolved" if outcome else "open", first, first, first,
                     "nat" if acked is not None else None,
                     first + timedelta(minutes=acked) if acked is not None else None,
                     "nat" if resolved is not None else None,
                     first + timedelta(minutes=resolved) if resolved is not None else None,
                     outcome))
    return profile


def _get(http: httpx.Client, headers: dict[str, str], site: str, **params: Any
         ) -> httpx.Response:
    query = {"site": site, "from": OCTOBER[0].isoformat(), "to": OCTOBER[1].isoformat(),
             "reason": REASON, **params}
    return http.get("/api/v1/exports/alerts", headers=headers,
                    params={k: v for k, v in query.items() if v is not None})


def _csv(response: httpx.Response) -> tuple[list[dict[str, str]], dict[str, Any]]:
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("alerts.csv").decode())))
        return rows, json.loads(archive.read("manifest.json"))


def test_alert_rows_carry_hour_pseudonym_rule_outcome_and_minutes(
        ev_http: httpx.Client, alert_home: SiteProfile, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    rows, manifest = _csv(_get(ev_http, evaluator, alert_home.site))
    assert [(r["hour"], r["outcome"], r["ack_minutes"], r["resolve_minutes"]) for r in rows] == [
        (_local(1, 0).isoformat(), "help_given", "2", "11"),
        (_local(4, 0).isoformat(), "unresolved", "", "")]
    assert all(r["rule"] == "left_flat" and r["room_kind"] == "flat" for r in rows)
    assert all(r["room"].startswith("r-") and len(r["room"]) == 14 for r in rows)
    assert rows[0]["room"] != rows[1]["room"]
    assert list(rows[0]) == manifest["columns"]


def test_an_alert_in_a_quarter_with_fewer_than_k_rooms_is_left_out_and_the_manifest_says_so(
        ev_http: httpx.Client, alert_home: SiteProfile, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    rows, manifest = _csv(_get(ev_http, evaluator, alert_home.site))
    assert "false_alarm" not in {r["outcome"] for r in rows}
    assert _local(3, 0).isoformat() not in {r["hour"] for r in rows}
    suppression = manifest["suppression"]
    assert suppression["applied"] is True and suppression["k"] == 5
    assert suppression["suppressed_alerts"] == 1
    assert manifest["rows"] == len(rows) == 2
    admin = headers_for(make_user("admin"))
    everything, manifest = _csv(_get(ev_http, admin, alert_home.site, k=1))
    assert len(everything) == 3 and manifest["suppression"]["suppressed_alerts"] == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_alert_export_carries_no_device_id_room_id_or_label(
        ev_http: httpx.Client, db: psycopg.Connection, alert_home: SiteProfile,
        make_user: Callable[..., Account], headers_for: Headers, fmt: str) -> None:
    evaluator = headers_for(make_user("evaluator"))
    response = _get(ev_http, evaluator, alert_home.site, format=fmt)
    assert response.status_code == 200, response.text
    if fmt == "parquet":
        table = pq.ParquetFile(io.BytesIO(response.content)).read().to_pylist()
        cells = [str(v) for row in table for v in row.values()]
    else:
        rows, _ = _csv(response)
        cells = [v for row in rows for v in row.values()]
    assert len(cells) == 2 * 8
    text = "\n".join(cells)
    rooms = db.execute("SELECT id, label FROM rooms WHERE site = %s",
                       (alert_home.site,)).fetchall()
    devices = [d for (d,) in db.execute("SELECT id FROM devices WHERE site = %s",
                                        (alert_home.site,))]
    assert devices and not [d for d in devices if d in text]
    assert not [label for _, label in rooms if label and label in text]
    assert not {room for room, _ in rooms} & set(cells)
    assert not [c for c in cells if ":07" in c or ":52" in c]  # no minute of the alert


def test_alert_export_takes_whole_months_and_a_reason(
        ev_http: httpx.Client, alert_home: SiteProfile, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    part = _get(ev_http, evaluator, alert_home.site, to="2026-10-20")
    assert part.status_code == 422 and "hele kalendermåneder" in part.text
    none = _get(ev_http, evaluator, alert_home.site, reason=None)
    assert none.status_code == 422 and "begrundelse" in none.text
    staff = headers_for(make_user("staff", alert_home.site))
    assert _get(ev_http, staff, alert_home.site).status_code == 403


def test_cli_writes_the_alert_export_and_audits_it(
        tmp_path: Path, db: psycopg.Connection, alert_home: SiteProfile) -> None:
    out = tmp_path / "alerts.csv.zip"
    result = CliRunner().invoke(app, [
        "export", "--alerts", "--site", alert_home.site, "--from", OCTOBER[0].isoformat(),
        "--to", OCTOBER[1].isoformat(), "--out", str(out), "--reason", REASON])
    assert result.exit_code == 0, result.output
    assert "2 alerts, 1 left out (k=5)" in result.output
    with zipfile.ZipFile(out) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("alerts.csv").decode())))
        manifest = json.loads(archive.read("manifest.json"))
    assert len(rows) == manifest["rows"] == 2
    audited = db.execute("SELECT detail FROM audit_log WHERE action = 'export.alerts' "
                         "AND actor = 'cli' AND site = %s", (alert_home.site,)).fetchall()
    assert [d["reason"] for (d,) in audited] == [REASON]
