"""The evaluator page and the morning handover, in headless Chromium against the real API.

The data is a few simulated nights of a pilot site, made as ``tests.support.evaluation`` makes
them (the simulator's planned events COPYed into ``events``, alerts with outcomes).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.sync_api import Page, expect

from core.settings import StackInfo
from tests.support.api import Account
from tests.support.board import (
    PHONE,
    TABLET,
    ApiProcess,
    axe_violations,
    log_in,
    open_board,
    screenshot,
    sign_in,
)
from tests.support.evaluation import SimulatedSite, simulate_site

FIRST = date(2026, 10, 5)
NIGHTS = 4
LAST = FIRST + timedelta(days=NIGHTS - 1)
MONTH_FIRST, MONTH_LAST = date(2026, 10, 1), date(2026, 10, 31)  # room level: whole months


@pytest.fixture(scope="module")
def pilot(migrated: StackInfo) -> Iterator[SimulatedSite]:
    """One pilot site with a few simulated nights (rooms, devices, events, alerts)."""
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        yield simulate_site(conn, "solsikken", FIRST, NIGHTS)


def describe(violations: list[dict[str, object]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} - "
                     f"{[n['target'] for n in v['nodes'][:3]]}"  # type: ignore[index]
                     for v in violations)


def choose_scope(page: Page, site: str) -> None:
    page.select_option("#ev-site", site)
    page.fill("#ev-from", FIRST.isoformat())
    page.fill("#ev-to", LAST.isoformat())


def test_evaluator_lands_on_evaluator_page_exports_anonymous_csv_and_opens_report(
        pilot: SimulatedSite, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    server = api_process()
    evaluator = make_user("evaluator")
    page = open_page()
    sign_in(page, server, evaluator, "/")
    # Asked for the board, sent to the evaluator page: never the live board.
    page.wait_for_url(f"{server.url}/evaluator.html")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#evaluator")).to_be_visible()
    expect(page.locator("#ev-forbidden")).to_be_hidden()
    expect(page.locator("h2").first).to_have_text("Evaluering af piloten")
    # Defaults: the last 30 days, ending yesterday, in the reader's time zone (the browser
    # is in Copenhagen: from 23:00 UTC its today is the machine's tomorrow).
    today = datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    assert page.input_value("#ev-to") == (today - timedelta(days=1)).isoformat()
    assert page.input_value("#ev-from") == (today - timedelta(days=30)).isoformat()
    # The site list comes from GET /sites (evaluators may read it).
    assert pilot.id in page.locator("#ev-site option").evaluate_all(
        "options => options.map(o => o.value)")

    # -- the export: room level (pseudonymised), CSV in a ZIP with its manifest ------------
    choose_scope(page, pilot.id)
    page.select_option("#ev-bucket", "1h")
    expect(page.locator("#ev-reason")).to_be_hidden()  # site level asks for no reason
    page.select_option("#ev-level", "room")
    page.select_option("#ev-format", "csv")
    # Room level needs a reason (audited), said in Danish on the page, before any request.
    page.click("#export-download")
    expect(page.locator("#export-error")).to_have_text(
        "Skriv en begrundelse på mindst 10 tegn for at hente data pr. rum.")
    expect(page.locator("#ev-reason")).to_be_focused()
    page.fill("#ev-reason", "Nattero per lejlighed i piloten")
    # ... and whole calendar months: the server's refusal is shown, Danish first.
    page.click("#export-download")
    expect(page.locator("#export-error")).to_contain_text(
        f"Eksport pr. rum dækker hele kalendermåneder (pseudonymerne skifter hver måned); "
        f"vælg fra {MONTH_FIRST} til {MONTH_LAST}.")
    page.fill("#ev-from", MONTH_FIRST.isoformat())
    page.fill("#ev-to", MONTH_LAST.isoformat())
    with page.expect_download() as info:
        page.click("#export-download")
    download = info.value
    assert download.suggested_filename == (
        f"occupancy-{pilot.id}-room-1h-{MONTH_FIRST:%Y%m%d}-{MONTH_LAST:%Y%m%d}.csv.zip")
    content = Path(download.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert set(archive.namelist()) == {"occupancy.csv", "manifest.json"}
        text = archive.read("occupancy.csv").decode("utf-8")
        manifest = archive.read("manifest.json").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows, "the export of a site with data has rows"
    profile = pilot.profile
    room_ids = {room.id for room in profile.rooms}
    for needle in [room.label for room in profile.rooms] + [d.id for d in profile.device_specs]:
        assert needle not in text, f"{needle!r} in the export"
        assert needle not in manifest, f"{needle!r} in the manifest"
    assert not room_ids & {row["room"] for row in rows}, "rooms are pseudonymised"
    status = page.locator("#export-status")
    expect(status).to_contain_text(download.suggested_filename)
    expect(status).to_contain_text("manifest.json")

    # -- the benefit report, with edited staff-time assumptions ------------------------------
    page.fill("#ev-rounds", "4")
    page.fill("#ev-check", "2.5")
    page.fill("#ev-handling", "")
    with page.expect_response(lambda r: "/api/v1/reports/benefit" in r.url) as answer:
        page.click("#report-show")
    query = parse_qs(urlparse(answer.value.url).query)
    assert answer.value.status == 200
    assert query["rounds_per_night"] == ["4"] and query["minutes_per_check"] == ["2.5"]
    assert query["format"] == ["html"] and "handling_minutes" not in query
    frame = page.frame_locator("#report-frame")
    expect(frame.locator("h1")).to_contain_text("Gevinstvurdering")
    expect(frame.locator("h1")).to_contain_text(profile.name)
    expect(page.locator("#report-frame")).to_have_attribute("sandbox", "allow-same-origin")

    with page.expect_download() as pdf_info:
        page.click("#report-pdf")
    pdf = pdf_info.value
    assert pdf.suggested_filename.endswith(".pdf")
    assert Path(pdf.path()).read_bytes().startswith(b"%PDF-")

    # An invalid assumption is caught on the page, next to the field.
    page.fill("#ev-wake", "2")
    page.click("#report-show")
    expect(page.locator("#report-error")).to_be_visible()
    expect(page.locator("#ev-wake")).to_have_attribute("aria-invalid", "true")

    # The board itself sends an evaluator back here, with a word why.
    page.goto(f"{server.url}/")
    page.wait_for_url(f"{server.url}/evaluator.html?reason=board")
    expect(page.locator("#ev-notice")).to_contain_text("ikke adgang til nattavlen")

    # English on request, the report included.
    page.click("#lang")
    expect(page.locator("#export-download")).to_have_text("Download export")
    expect(page.locator("#report-pdf")).to_have_text("Download PDF")
    with page.expect_response(lambda r: "/api/v1/reports/benefit" in r.url) as answer:
        page.click("#report-show")
    assert parse_qs(urlparse(answer.value.url).query)["lang"] == ["en"]
    expect(page.frame_locator("#report-frame").locator("h1")).to_contain_text(
        "Benefit evaluation")


def test_staff_opens_the_morning_handover_from_the_board(
        pilot: SimulatedSite, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    server = api_process()
    staff = make_user("staff", pilot.id)
    board = open_board(open_page(), server, staff)
    link = board.locator("#handover-link")
    expect(link).to_be_visible()
    expect(link).to_contain_text("Overlevering")
    expect(link).to_have_attribute("href", f"/handover.html?site={pilot.id}")
    with board.context.expect_page() as opened:
        link.click()
    page = opened.value
    page.wait_for_load_state()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    frame = page.frame_locator("#ho-frame")
    expect(frame.locator("h1")).to_contain_text("Overlevering")
    expect(frame.locator("h1")).to_contain_text(pilot.profile.name)
    expect(page.locator("#ho-print")).to_be_enabled()
    # The board keeps running in its own tab.
    expect(board.locator("#health-ok.is-live")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, describe(violations)


def test_staff_on_the_evaluator_page_is_told_it_is_not_for_them(
        pilot: SimulatedSite, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    server = api_process()
    staff = make_user("staff", pilot.id)
    page = open_page(PHONE)
    log_in(page, server, staff, "/evaluator.html")
    expect(page.locator("body")).to_have_attribute("data-access", "forbidden")
    forbidden = page.locator("#ev-forbidden")
    expect(forbidden).to_be_visible()
    expect(forbidden).to_contain_text("kun for evaluatorer og administratorer")
    expect(forbidden).to_contain_text("Personale")
    expect(page.locator("#evaluator")).to_be_hidden()
    expect(page.locator("#export-download")).to_be_hidden()

    # And an evaluator on the handover page is refused too.
    evaluator = make_user("evaluator")
    other = open_page()
    log_in(other, server, evaluator, "/evaluator.html")
    other.goto(f"{server.url}/handover.html?site={pilot.id}")
    expect(other.locator("#ho-forbidden")).to_be_visible()
    expect(other.locator("#handover")).to_be_hidden()


def test_evaluator_page_is_accessible_keyboard_usable_and_screenshotted(
        pilot: SimulatedSite, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    server = api_process()
    evaluator = make_user("evaluator")
    for name, viewport in (("evaluator-tablet", TABLET), ("evaluator-phone", PHONE)):
        page = open_page(viewport)
        log_in(page, server, evaluator, "/evaluator.html")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        choose_scope(page, pilot.id)
        violations = axe_violations(page)
        assert not violations, describe(violations)
        # Nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        # Touch targets: the page's own buttons are at least 44 px tall.
        for box in page.locator("main button:visible").evaluate_all(
                "els => els.map(e => e.getBoundingClientRect().height)"):
            assert box >= 44
        if name == "evaluator-tablet":
            # Keyboard only: tab to the export button and press Enter.
            page.focus("#ev-format")
            with page.expect_download() as info:
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.id") == "export-download"
                page.keyboard.press("Enter")
            assert info.value.suggested_filename.endswith(".csv.zip")
            expect(page.locator("#export-status")).to_contain_text("manifest.json")
            # With the report shown, the page around it stays free of serious violations.
            page.keyboard.press("Tab")
            page.click("#report-show")
            expect(page.frame_locator("#report-frame").locator("h1")).to_contain_text(
                "Gevinstvurdering")
            violations = axe_violations(page)
            assert not violations, describe(violations)
        page.wait_for_timeout(200)
        screenshot(page, name)
