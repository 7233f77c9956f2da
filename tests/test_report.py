"""The benefit-evaluation report and the morning handover, over a simulated month."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from core.settings import StackInfo
from evaluation.report import PDF_PAGES
from tests.support.api import Account
from tests.support.evaluation import SimulatedMonth, simulate_site
from tests.support.reading import english_left, visible_text

Headers = Callable[[Account], dict[str, str]]


def benefit(http: httpx.Client, headers: dict[str, str], month: SimulatedMonth,
            **params: Any) -> httpx.Response:
    site = month.site_ids[0]
    return http.get("/api/v1/reports/benefit", headers=headers, params={
        "site": site, "from": month.first.isoformat(), "to": month.last.isoformat(), **params})


def embedded_figures(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="nattero-figures">(.*?)</script>',
                      page, re.S)
    assert match, "the report carries its figures as JSON"
    figures: dict[str, Any] = json.loads(match[1])
    return figures


@pytest.fixture
def evaluator(make_user: Callable[..., Account], headers_for: Headers) -> dict[str, str]:
    return headers_for(make_user("evaluator"))


def test_report_figures_match_an_independent_query(
        ev_http: httpx.Client, db: psycopg.Connection, simulated_month: SimulatedMonth,
        evaluator: dict[str, str]) -> None:
    response = benefit(ev_http, evaluator, simulated_month)
    assert response.status_code == 200, response.text
    figures = embedded_figures(response.text)
    site = simulated_month.site_ids[0]
    span = {"site": site, "first": simulated_month.first, "last": simulated_month.last}
    period = ("site = %(site)s AND first_ts >= (%(first)s::date + time '12:00') "
              "AT TIME ZONE 'Europe/Copenhagen' AND first_ts < (%(last)s::date + 1 "
              "+ time '12:00') AT TIME ZONE 'Europe/Copenhagen'")
    outcomes: dict[str, int] = dict(db.execute(
        f"SELECT coalesce(outcome, 'unresolved'), count(*) FROM alerts WHERE {period} "
        "GROUP BY 1", span).fetchall())
    assert figures["outcomes"] == outcomes
    assert figures["alerts"] == sum(outcomes.values())
    # Response times count from the call (the raise, for an alert that never called).
    ack = db.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
        "acknowledged_at - coalesce(called_at, raised_at))), percentile_cont(0.9) WITHIN "
        "GROUP (ORDER BY extract(epoch FROM acknowledged_at - coalesce(called_at, "
        f"raised_at))) FROM alerts WHERE {period} AND acknowledged_at IS NOT NULL",
        span).fetchone()
    assert ack is not None
    assert figures["acknowledge"]["median_s"] == pytest.approx(float(ack[0]), abs=0.1)
    assert figures["acknowledge"]["p90_s"] == pytest.approx(float(ack[1]), abs=0.1)
    resolve = db.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
        f"resolved_at - coalesce(called_at, raised_at))) FROM alerts WHERE {period} "
        "AND outcome IN "
        "('help_given', 'no_action_needed', 'false_alarm')", span).fetchone()
    assert resolve is not None
    assert figures["resolve"]["median_s"] == pytest.approx(float(resolve[0]), abs=0.1)
    # Complete rest, recomputed night by night from the definition.
    rest = db.execute("""
        WITH nights AS (
            SELECT n::date AS night,
                   (n::date + time '22:00') AT TIME ZONE 'Europe/Copenhagen' AS starts,
                   (n::date + 1 + time '07:00') AT TIME ZONE 'Europe/Copenhagen' AS ends
            FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') n),
        flat_nights AS (
            SELECT n.night, e.room,
                   count(*) FILTER (WHERE e.kind IN ('door.open', 'bed.exit', 'motion',
                                                     'presence.on')) AS disturbances
            FROM nights n JOIN events e ON e.site = %(site)s AND e.ts >= n.starts
                 AND e.ts < n.ends
            JOIN rooms r ON r.site = e.site AND r.id = e.room AND r.kind = 'flat'
            GROUP BY 1, 2)
        SELECT count(*), count(*) FILTER (WHERE disturbances = 0 AND NOT EXISTS (
            SELECT 1 FROM alerts a, nights n WHERE a.site = %(site)s AND a.room = f.room
              AND n.night = f.night
              AND a.rule NOT IN ('sensor_offline', 'low_battery')
              AND a.first_ts >= (n.night + time '12:00') AT TIME ZONE 'Europe/Copenhagen'
              AND a.first_ts < (n.night + 1 + time '12:00') AT TIME ZONE 'Europe/Copenhagen'))
        FROM flat_nights f""", span).fetchone()
    assert rest is not None and rest[0] > 0
    assert figures["rest_share"] == pytest.approx(rest[1] / rest[0], abs=1e-4)
    assert figures["nights"] == 30
    hours = figures["activity_by_hour"]["hours"]
    assert hours == [22, 23, 0, 1, 2, 3, 4, 5, 6]
    staff = figures["staff_time"]
    assert staff["routine_minutes_per_night"] == pytest.approx(3 * 2 * figures["flats"])


def test_report_is_self_contained_html_with_four_plots(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        evaluator: dict[str, str]) -> None:
    page = benefit(ev_http, evaluator, simulated_month).text
    assert page.count("<svg") == 4
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "@import" not in page


def test_staff_time_assumptions_are_editable(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        evaluator: dict[str, str]) -> None:
    figures = embedded_figures(benefit(ev_http, evaluator, simulated_month, rounds_per_night=5,
                                       minutes_per_check=3, handling_minutes=10).text)
    staff = figures["staff_time"]
    assert staff["routine_minutes_per_night"] == pytest.approx(5 * 3 * figures["flats"])
    assert staff["handling_minutes"] == 10 and staff["handling_measured"] is False
    freed = (staff["routine_minutes_per_night"] - staff["alert_minutes_per_night"]) / 60
    assert staff["freed_hours_per_night"] == pytest.approx(freed, abs=0.01)


def test_pilots_are_compared_and_ranked(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        evaluator: dict[str, str]) -> None:
    figures = embedded_figures(benefit(ev_http, evaluator, simulated_month,
                                       compare=simulated_month.site_ids[1]).text)
    ranking = figures["comparison"]
    assert {r["site"] for r in ranking} == set(simulated_month.site_ids)
    assert [r["rank"] for r in ranking] == [1, 2]
    assert ranking[0]["mean_rank"] <= ranking[1]["mean_rank"]


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils")
def test_pdf_has_the_expected_pages_and_page_one_renders(
        ev_http: httpx.Client, simulated_month: SimulatedMonth, evaluator: dict[str, str],
        tmp_path: Path) -> None:
    response = benefit(ev_http, evaluator, simulated_month, format="pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert re.search(rf"^Pages:\s+{len(PDF_PAGES)}$", info.stdout, re.M)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page")], check=True)
    png = tmp_path / "page-1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    pixels = imread(png)
    assert pixels.shape[1] > pixels.shape[0]  # landscape
    assert pixels.min() < 0.5  # text was drawn, not a blank page


def test_staff_get_403_on_the_benefit_report(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    staff = headers_for(make_user("staff", simulated_month.site_ids[0]))
    assert benefit(ev_http, staff, simulated_month).status_code == 403


def test_handover_shows_the_night_by_room_label_to_the_sites_staff(
        ev_http: httpx.Client, db: psycopg.Connection, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers,
        evaluator: dict[str, str]) -> None:
    site = simulated_month.site_ids[0]
    staff = headers_for(make_user("staff", site))
    response = ev_http.get("/api/v1/reports/handover", headers=staff, params={"site": site})
    assert response.status_code == 200, response.text
    page = response.text
    assert "The night from 30 October to 31 October 2026" in page
    assert response.headers["content-language"] == "en"
    rooms: dict[str, str] = dict(
        db.execute("SELECT id, label FROM rooms WHERE site = %s", (site,)).fetchall())
    alerted = db.execute(
        "SELECT DISTINCT room FROM alerts WHERE site = %s AND rule <> 'sensor_offline' "
        "AND first_ts >= (%s::date + time '12:00') AT TIME ZONE 'Europe/Copenhagen' "
        "AND first_ts < (%s::date + 1 + time '12:00') AT TIME ZONE 'Europe/Copenhagen'",
        (site, simulated_month.last, simulated_month.last)).fetchall()
    assert alerted and all(rooms[room] in page for (room,) in alerted)
    assert ev_http.get("/api/v1/reports/handover", headers=evaluator,
                       params={"site": site}).status_code == 403
    other = headers_for(make_user("staff", simulated_month.site_ids[1]))
    assert ev_http.get("/api/v1/reports/handover", headers=other,
                       params={"site": site}).status_code == 404


def test_report_generation_is_audited(
        ev_http: httpx.Client, db: psycopg.Connection, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    account = make_user("evaluator")
    assert benefit(ev_http, headers_for(account), simulated_month).status_code == 200
    rows = db.execute("SELECT action, site FROM audit_log WHERE actor = %s",
                      (account.username,)).fetchall()
    assert ("report.benefit", simulated_month.site_ids[0]) in rows


def test_cli_writes_report_pdf_and_handover(tmp_path: Path,
                                            simulated_month: SimulatedMonth) -> None:
    from typer.testing import CliRunner

    from nattero.cli import app

    site = simulated_month.site_ids[1]
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, [
        "report", "--site", site, "--from", simulated_month.first.isoformat(),
        "--to", simulated_month.last.isoformat(), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text() and out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    handover = tmp_path / "handover.html"
    result = CliRunner().invoke(app, ["report", "--site", site, "--handover",
                                      "--out", str(handover)])
    assert result.exit_code == 0, result.output
    assert "Natten fra 30. oktober til 31. oktober 2026" in handover.read_text()
    result = CliRunner().invoke(app, ["report", "--site", site, "--handover", "--lang", "en",
                                      "--out", str(handover)])
    assert result.exit_code == 0, result.output
    assert "The night from 30 October to 31 October 2026" in handover.read_text()
    result = CliRunner().invoke(app, ["report", "--site", site, "--out", str(out)])
    assert result.exit_code == 1 and "--from and --to" in result.output


def test_report_and_errors_are_danish_when_the_browser_asks_for_nothing(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        evaluator: dict[str, str]) -> None:
    site = simulated_month.site_ids[0]
    params = {"site": site, "from": simulated_month.first.isoformat(),
              "to": simulated_month.last.isoformat()}
    with httpx.Client(base_url=str(ev_http.base_url), timeout=60) as plain:
        page = plain.get("/api/v1/reports/benefit", headers=evaluator, params=params)
        assert page.status_code == 200 and page.headers["content-language"] == "da"
        text = visible_text(page.text)
        assert "Gevinstvurdering" in text and not english_left(text), english_left(text)
        reversed_ = plain.get("/api/v1/reports/benefit", headers=evaluator, params={
            **params, "from": simulated_month.last.isoformat(),
            "to": simulated_month.first.isoformat()})
        assert reversed_.status_code == 422
        assert reversed_.json()["detail"].startswith("perioden slutter (2026-10-01) før")
        missing = plain.get("/api/v1/reports/benefit", headers=evaluator,
                            params={"site": site, "to": params["to"]})
        assert missing.json()["detail"] == "parameteren 'from': skal udfyldes"
        unknown = plain.get("/api/v1/reports/benefit", headers=evaluator,
                            params={**params, "site": "nowhere"})
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith("stedet/stederne nowhere findes ikke")
    for detail in (reversed_.json()["detail"], missing.json()["detail"],
                   unknown.json()["detail"]):
        assert not english_left(detail) and "--" not in detail, detail


def test_errors_follow_accept_language_and_lang(
        ev_http: httpx.Client, simulated_month: SimulatedMonth,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    staff = headers_for(make_user("staff", simulated_month.site_ids[0]))
    danish = benefit(ev_http, {**staff, "Accept-Language": "da-DK,da;q=0.9,en;q=0.8"},
                     simulated_month)
    assert danish.status_code == 403
    assert "kræver en evaluatorkonto" in danish.json()["detail"]
    english = benefit(ev_http, {**staff, "Accept-Language": "de, en;q=0.5"}, simulated_month)
    assert "need an evaluator account" in english.json()["detail"]
    asked = ev_http.get("/api/v1/reports/handover", headers=staff,
                        params={"site": "nowhere", "lang": "da"})
    assert asked.status_code == 404
    assert asked.json()["detail"] == "stedet 'nowhere' findes ikke eller er ikke tildelt dig"


def test_two_simulated_nights_are_two_nights_even_asked_to_the_morning_after(
        ev_http: httpx.Client, migrated: StackInfo, evaluator: dict[str, str]) -> None:
    first = date(2026, 9, 1)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "egely", first, 2)
    # A new user's natural request: from the first evening to the last morning.
    response = ev_http.get("/api/v1/reports/benefit", headers=evaluator, params={
        "site": simulated.id, "from": first.isoformat(),
        "to": (first + timedelta(days=2)).isoformat()})
    assert response.status_code == 200, response.text
    figures = embedded_figures(response.text)
    assert figures["nights"] == 2
    assert figures["nights_without_data"] == ["2026-09-03"]
    assert len(figures["per_night"]) == 2
    assert "1 night of the period has no data from any sensor" in response.text


def test_every_resident_alert_counts_as_a_visit_in_the_served_report(
        ev_http: httpx.Client, db: psycopg.Connection, migrated: StackInfo,
        evaluator: dict[str, str]) -> None:
    first = date(2026, 8, 1)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "solsikken", first, 1)
    start, _ = simulated.profile.night_window(first)
    # A busy night nobody answered: 200 left-flat calls, none acknowledged or resolved.
    flat = next(r.id for r in simulated.profile.rooms if r.kind.value == "flat")
    for n in range(200):
        db.execute(
            "INSERT INTO alerts (site, room, rule, severity, episode_key, status, first_ts, "
            "last_ts, raised_at, called_at) VALUES (%s, %s, 'left_flat', 'normal', %s, "
            "'open', %s, %s, %s, %s)", (simulated.id, flat, f"{simulated.id}:open:{n}",
                                        *[start + timedelta(minutes=1 + n)] * 4))
    response = ev_http.get("/api/v1/reports/benefit", headers=evaluator, params={
        "site": simulated.id, "from": first.isoformat(), "to": first.isoformat()})
    staff = embedded_figures(response.text)["staff_time"]
    assert staff["visits_per_night"] >= 200 and staff["unhandled_per_night"] >= 200
    assert staff["freed_hours_per_night"] < 0
    assert staff["basis"]["freed_hours_per_night"] == "estimate"


def test_time_to_acknowledge_counts_from_the_call_not_from_the_quiet_start_of_a_situation(
        ev_http: httpx.Client, db: psycopg.Connection, migrated: StackInfo,
        evaluator: dict[str, str]) -> None:
    first = date(2026, 8, 12)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "solsikken", first, 1)
    start, _ = simulated.profile.night_window(first)
    flat = next(r.id for r in simulated.profile.rooms if r.kind.value == "flat")
    db.execute("DELETE FROM alerts WHERE site = %s", (simulated.id,))
    # Out of the flat at 22:10 (shown quietly), a call when the 15 minutes were up, taken a
    # minute later and resolved four minutes after that.
    out = start + timedelta(minutes=10)
    db.execute(
        "INSERT INTO alerts (site, room, rule, severity, episode_key, status, first_ts, "
        "last_ts, raised_at, called_at, acknowledged_by, acknowledged_at, resolved_by, "
        "resolved_at, outcome) VALUES (%s, %s, 'left_flat', 'normal', %s, 'resolved', %s, %s, "
        "%s, %s, 'nat', %s, 'nat', %s, 'help_given')",
        (simulated.id, flat, f"{simulated.id}:late-call", out, out, out,
         out + timedelta(minutes=15), out + timedelta(minutes=16), out + timedelta(minutes=20)))
    response = ev_http.get("/api/v1/reports/benefit", headers=evaluator, params={
        "site": simulated.id, "from": first.isoformat(), "to": first.isoformat()})
    figures = embedded_figures(response.text)
    assert figures["acknowledge"]["median_s"] == 60.0
    assert figures["resolve"]["median_s"] == 300.0


def test_the_handover_says_when_no_board_was_connected_and_whether_the_mails_went(
        db: psycopg.Connection, migrated: StackInfo) -> None:
    from evaluation.handover import build_handover, render_handover

    first = date(2026, 8, 25)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "solsikken", first, 1)
    site = simulated.id
    start, _ = simulated.profile.night_window(first)       # 22:00 in Copenhagen
    gap = start + timedelta(hours=4, minutes=10)           # 02:10
    db.execute("INSERT INTO board_silences (site, silent_since, ended_at, detail) VALUES "
               "(%s, %s, %s, '{}')", (site, gap, gap + timedelta(minutes=30)))
    db.execute("INSERT INTO board_silences (site, silent_since, detail) VALUES (%s, %s, '{}')",
               (site, start + timedelta(hours=7)))          # 05:00, never ended
    for action, at in (("board.none_connected.sent", gap + timedelta(minutes=5)),
                       ("board.none_connected.sent", gap + timedelta(minutes=5)),
                       ("board.none_connected.failed", gap + timedelta(minutes=6)),
                       ("board.none_connected.failed", gap - timedelta(hours=1))):  # no gap
        db.execute("INSERT INTO audit_log (at, actor, action, site, target) VALUES "
                   "(%s, 'system', %s, %s, 'nat')", (at, action, site))
    page = visible_text(render_handover(build_handover(db, site, first)))
    assert "Ingen nattavle forbundet" in page
    assert "Ingen nattavle var forbundet 02:10–02:40." in page
    assert "2 e-mails om det nåede nattens personale." in page
    assert "1 e-mail om det kunne ikke sendes." in page
    assert "Ingen nattavle har været forbundet siden 05:00." in page
    assert "Ingen fik besked på e-mail" in page
    assert not english_left(page), english_left(page)
