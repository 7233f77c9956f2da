"""The alarm-load page and the handover's weekly summary (issue 14 §3, §4), from alerts the
test stores itself, with figures counted by hand.

The site (``site`` fixture: flat f1, lounge, exit; Europe/Copenhagen, CET in November)
gets seven alerts; the period is the 30 nights up to Sunday 29 November 2026, i.e. the
evenings 31 October .. 29 November:

====  ==================  =============================  ===============  ======  ================
no.   room / rule         began (local)                  night            called  outcome
====  ==================  =============================  ===============  ======  ================
A1    f1 left_flat        Sat 28 Nov 23:30               28 Nov, 23 h     yes     help given
A2    f1 left_flat        Sun 29 Nov 02:10               28 Nov, 02 h     no      cleared by itself
A3    exit building_exit  Sun 29 Nov 03:00               28 Nov, 03 h     yes     (acknowledged)
A4    f1 bed_exit...      Sun 29 Nov 22:15               29 Nov, 22 h     yes     false alarm
A5    lounge common_mot.  Fri 20 Nov 01:00               19 Nov, 01 h     no      (open)
A6    f1 left_flat        Fri 30 Oct 23:00               30 Oct: before   --      --
A7    f1 left_flat        Mon 30 Nov 13:00               30 Nov: after    --      --
====  ==================  =============================  ===============  ======  ================

One rule change (f1 left_flat -> 20 min) is audited on Wed 25 Nov 10:00 local: it applies
from the night of 25 Nov. Before it (18..24 Nov) 1 alert in 7 nights; from it (25..29 Nov,
the period's end) 4 alerts in 5 nights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect
from psycopg.types.json import Jsonb

from core.events import DeviceKind
from evaluation.handover import build_handover, render_handover
from ingest.rule_settings import upsert_rule_setting
from tests.support.api import Account
from tests.support.board import TABLET, ApiProcess, axe_violations, log_in
from tests.support.reading import english_left, visible_text
from tests.support.store import unique

TZ = ZoneInfo("Europe/Copenhagen")
LAST = date(2026, 11, 29)  # a Sunday: its night (Sunday -> Monday) opens the week


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def store_alert(db: psycopg.Connection, site: str, room: str, rule: str, first: datetime,
                called: bool, status: str = "resolved", outcome: str | None = None) -> None:
    db.execute(
        "INSERT INTO alerts (site, room, rule, severity, episode_key, first_ts, last_ts, "
        "called_at, status, outcome, resolved_at, resolved_by) "
        "VALUES (%s, %s, %s, 'normal', %s, %s, %s, %s, %s, %s, %s, %s)",
        (site, room, rule, unique(f"{site}:{room}"), first, first,
         first if called else None, status, outcome,
         first if status == "resolved" else None, "test" if status == "resolved" else None))


@pytest.fixture
def noisy(site: str, db: psycopg.Connection,
          add_device: Callable[..., tuple[str, str]]) -> str:
    add_device(site, "bed-f1", room="f1", kind=DeviceKind.BED)
    store_alert(db, site, "f1", "left_flat", local(28, 23, 30), True, outcome="help_given")
    store_alert(db, site, "f1", "left_flat", local(29, 2, 10), False,
                outcome="cleared_automatically")
    store_alert(db, site, "exit", "building_exit", local(29, 3), True, status="acknowledged")
    store_alert(db, site, "f1", "bed_exit_not_back", local(29, 22, 15), True,
                outcome="false_alarm")
    store_alert(db, site, "lounge", "common_motion", local(20, 1), False, status="open")
    store_alert(db, site, "f1", "left_flat", local(30, 23, month=10), True,
                outcome="false_alarm")
    store_alert(db, site, "f1", "left_flat", local(30, 13), True, outcome="false_alarm")
    # One out-of-bed spell in the bed's history: a routine with too few nights to learn.
    for kind, minute in (("bed.exit", 0), ("bed.enter", 4)):
        db.execute("INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
                   "VALUES (%s, 'bed-f1', %s, %s, 'f1', %s, now())",
                   (site, unique("e"), local(27, 2, minute), kind))
    upsert_rule_setting(db, site, "f1", "left_flat", None, 20, None, "test")
    db.execute("INSERT INTO audit_log (at, actor, action, site, target, detail) "
               "VALUES (%s, 'leder', 'rules.set', %s, 'f1', %s)",
               (local(25, 10), site, Jsonb({"rule": "left_flat", "room": "f1", "minutes": 20,
                                            "enabled": None, "severity": None,
                                            "reason": "færre kald"})))
    return site


@pytest.fixture
def admin_headers(make_user: Callable[..., Account],
                  headers_for: Callable[[Account], dict[str, str]]) -> dict[str, str]:
    return headers_for(make_user("admin"))


def test_the_figures_count_the_periods_alerts_by_night_rule_room_hour_and_outcome(
        noisy: str, http: httpx.Client, admin_headers: dict[str, str]) -> None:
    response = http.get(f"/api/v1/sites/{noisy}/alarm-load", headers=admin_headers,
                        params={"to": LAST.isoformat()})
    assert response.status_code == 200, response.text
    load = response.json()
    assert (load["from"], load["to"], load["nights"]) == ("2026-10-31", "2026-11-29", 30)
    assert (load["alerts"], load["calls"], load["alerts_per_night"]) == (5, 3, 0.17)
    nights = {n["night"]: n for n in load["per_night"]}
    assert len(nights) == 30 and sum(n["alerts"] for n in nights.values()) == 5
    assert nights["2026-11-28"]["by_rule"] == {"building_exit": 1, "left_flat": 2}
    assert nights["2026-11-29"]["by_rule"] == {"bed_exit_not_back": 1}
    assert nights["2026-11-19"]["by_rule"] == {"common_motion": 1}
    assert nights["2026-10-31"]["alerts"] == 0
    assert [(r["rule"], r["alerts"], r["calls"]) for r in load["by_rule"]] == [
        ("left_flat", 2, 1), ("bed_exit_not_back", 1, 1), ("common_motion", 1, 0),
        ("building_exit", 1, 1)]
    assert [(r["room"], r["label"], r["alerts"], r["calls"]) for r in load["by_room"]] == [
        ("f1", "Lejlighed 1", 3, 2), ("exit", "Hoveddør", 1, 1), ("lounge", "Dagligstue", 1, 0)]
    hours = {h["hour"]: h["alerts"] for h in load["by_hour"] if h["alerts"]}
    assert hours == {23: 1, 2: 1, 3: 1, 22: 1, 1: 1}
    assert {o["outcome"]: (o["alerts"], o["share"]) for o in load["outcomes"]} == {
        "help_given": (1, 0.2), "no_action_needed": (0, 0.0), "false_alarm": (1, 0.2),
        "cleared_automatically": (1, 0.2), "unresolved": (2, 0.4)}

    first = load["noisiest"][0]
    assert [r["room"] for r in load["noisiest"]] == ["f1", "exit", "lounge"]
    assert first["by_rule"] == {"left_flat": 2, "bed_exit_not_back": 1}
    assert first["limits"] == {"left_flat": {"enabled": True, "minutes": 20},
                               "bed_exit_not_back": {"enabled": True, "minutes": 10}}
    assert first["routine"]["nights"] == 1 and first["routine"]["usual_out_of_bed_min"] is None
    assert first["routine"]["explanation"][0].startswith("No routine yet (1 of 14 nights)")
    assert load["noisiest"][1]["limits"] == {"building_exit": {"enabled": True, "minutes": 0}}
    assert load["noisiest"][1]["routine"] is None

    (change,) = load["changes"]
    assert change["first_night"] == "2026-11-25" and change["actor"] == "leder"
    assert (change["rule"], change["room"], change["minutes"], change["reason"]) == (
        "left_flat", "f1", 20, "færre kald")
    assert (change["before_per_night"], change["after_per_night"]) == (0.14, 0.8)

    danish = http.get(f"/api/v1/sites/{noisy}/alarm-load", params={"to": LAST.isoformat()},
                      headers={**admin_headers, "Accept-Language": "da"}).json()
    assert danish["noisiest"][0]["routine"]["explanation"][0].startswith(
        "Ingen rutine endnu")
    plot = http.get(f"/api/v1/sites/{noisy}/alarm-load/plots/per-night.svg",
                    params={"to": LAST.isoformat(), "lang": "da"}, headers=admin_headers)
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/svg+xml"
    assert plot.text.startswith("<svg")


def test_staff_and_evaluators_cannot_read_the_alarm_load(
        noisy: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]]) -> None:
    for account in (make_user("staff", noisy), make_user("evaluator", noisy)):
        headers = headers_for(account)
        assert http.get(f"/api/v1/sites/{noisy}/alarm-load",
                        headers=headers).status_code == 403
        assert http.get(f"/api/v1/sites/{noisy}/alarm-load/plots/by-hour.svg",
                        headers=headers).status_code == 403
    assert http.get(f"/api/v1/sites/{noisy}/alarm-load").status_code == 401


def test_the_handover_of_the_first_night_of_the_week_opens_with_the_weeks_alarm_load(
        noisy: str, db: psycopg.Connection, http: httpx.Client,
        make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]]) -> None:
    sunday = build_handover(db, noisy, LAST)
    assert sunday.weekly is not None
    # The week of evenings 23..29 Nov: A1-A4; the week before (16..22 Nov): A5.
    assert (sunday.weekly.alerts, sunday.weekly.calls, sunday.weekly.alerts_before) == (4, 3, 1)
    assert sunday.weekly.noisiest[0] == ("Lejlighed 1", 3)
    assert sunday.weekly.rule_changes == 1
    text = visible_text(render_handover(sunday))
    assert "Ugens alarmbelastning (23. november–29. november 2026)" in text
    assert "4 alarmer på 7 nætter" in text and "ugen før: 1" in text
    assert "Mest støjende rum: Lejlighed 1 (3), Hoveddør (1)" in text
    assert not english_left(text), english_left(text)
    assert text.index("Ugens alarmbelastning") < text.index("Alarmer efter lejlighed")

    for night in (date(2026, 11, 28), date(2026, 11, 30)):  # Saturday, Monday
        other = build_handover(db, noisy, night)
        assert other.weekly is None
        assert "Ugens alarmbelastning" not in render_handover(other)

    staff = headers_for(make_user("staff", noisy))
    page = http.get("/api/v1/reports/handover", headers={**staff, "Accept-Language": "da"},
                    params={"site": noisy, "night": LAST.isoformat()})
    assert page.status_code == 200 and "Ugens alarmbelastning" in page.text
    english = http.get("/api/v1/reports/handover", headers=staff,
                       params={"site": noisy, "night": LAST.isoformat()})
    assert "Alarm load this week" in english.text


def test_an_admin_reads_the_alarm_load_in_the_browser_tries_a_change_and_applies_it(
        noisy: str, db: psycopg.Connection, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page],
        tmp_path: Path) -> None:
    server = api_process()
    page = open_page(TABLET)  # Danish first
    log_in(page, server, make_user("admin"), next_path="/alarmload.html")
    page.goto(f"{server.url}/alarmload.html?site={noisy}&to={LAST.isoformat()}")
    expect(page.locator("#load-view")).to_be_visible()
    expect(page.locator("#load-summary")).to_contain_text("30 nætter")
    expect(page.locator("#load-summary")).to_contain_text("5 alarmer")
    noisiest = page.locator("#load-noisiest tr").first
    expect(noisiest).to_have_attribute("data-room", "f1")
    expect(noisiest).to_contain_text("Har forladt lejligheden: 20 min")
    expect(noisiest).to_contain_text("Ingen rutine endnu")
    expect(page.locator("#load-changes tr")).to_have_count(1)
    expect(page.locator("#load-changes tr").first).to_contain_text("færre kald")
    expect(page.locator("#load-outcomes")).to_contain_text("40 %")
    for plot in ("per-night", "by-hour", "outcomes"):
        image = page.locator(f"img[data-plot='{plot}']")
        expect(image).to_have_attribute("src", re.compile("^blob:"))
        width = image.evaluate("img => img.decode().then(() => img.naturalWidth)")
        assert width > 300  # the server's SVG, drawn
        assert image.get_attribute("alt")
    violations = axe_violations(page)
    assert not violations, violations
    shot = tmp_path / "alarm-load-tablet.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    page.select_option("#try-rule", "left_flat")
    page.select_option("#try-room", "f1")
    page.fill("#try-minutes", "30")
    page.select_option("#try-severity", "high")
    page.click("#try-form [type=submit]")
    expect(page.locator("#try-result")).to_be_visible(timeout=60_000)
    expect(page.locator("#try-nights tr")).to_have_count(30)
    expect(page.locator("#try-risky")).to_be_hidden()
    page.click("#apply-form [type=submit]")  # no reason: refused in the page
    expect(page.locator("#apply-form .form-error")).to_contain_text("hvorfor")
    page.fill("#apply-reason", "færre kald om natten")
    page.click("#apply-form [type=submit]")
    expect(page.locator("#apply-form .form-ok")).to_contain_text("taget i brug")
    row = db.execute("SELECT minutes, severity FROM rule_settings WHERE site = %s AND "
                     "room = 'f1' AND rule = 'left_flat'", (noisy,)).fetchone()
    assert row == (30, "high")
    audit = db.execute("SELECT detail FROM audit_log WHERE site = %s AND action = 'rules.set' "
                       "ORDER BY id DESC LIMIT 1", (noisy,)).fetchone()
    assert audit is not None and audit[0]["reason"] == "færre kald om natten"

    page.click("#lang")
    expect(page.locator("#load-summary")).to_contain_text("5 alerts")
    violations = axe_violations(page)
    assert not violations, violations


def test_staff_on_the_alarm_load_page_are_told_it_is_for_administrators(
        noisy: str, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("staff", noisy), next_path=f"/alarmload.html?site={noisy}")
    expect(page.locator("#load-forbidden")).to_contain_text("kun for administratorer")
    expect(page.locator("#load")).to_be_hidden()
