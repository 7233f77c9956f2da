"""A flat's monitoring basis that has ended or ends within 30 days is warned of: on the
admin page (a banner over every tab) and in the board's pre-shift check; on the night board
as a banner once it ends within 14 days. In Danish first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect

import provisioning
from core.events import RoomKind
from core.settings import Settings
from ingest.basis_expiry import covered_until
from tests.support.api import Account
from tests.support.board import ApiProcess, log_in, open_board

TODAY = date(2026, 12, 6)


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@pytest.mark.pure
@pytest.mark.parametrize(("bases", "expected"), [
    ([(days(-400), None)], None),
    ([(days(-400), days(14))], days(14)),
    ([(days(-400), days(14)), (days(15), days(200))], days(200)),
    ([(days(-400), days(14)), (days(10), None)], None),
    ([(days(-400), days(14)), (days(16), None)], days(14)),  # a day's gap: ends on day 14
    ([(days(-400), days(-5))], days(-5)),
    ([(days(-400), days(-5)), (days(3), None)], days(-5)),  # not covered today
    ([(days(-400), days(-5)), (days(-4), days(0))], days(0)),
])
def test_a_flat_is_covered_until_its_bases_leave_a_gap(
        bases: list[tuple[date, date | None]], expected: date | None) -> None:
    assert covered_until(bases, TODAY) == expected


def site_today() -> date:
    """Today where the test sites are (their zone is Copenhagen), as the server counts."""
    return datetime.now(ZoneInfo("Europe/Copenhagen")).date()


def flats_with_bases(settings: Settings, site: str) -> None:
    """f1 (the fixture's): consent for good. f2: a decision ending in 10 days. f3: a
    decision that ended 3 days ago. f4: a decision ending in 10 days, renewed from then on.
    f5: a decision ending in 60 days."""
    today = site_today()
    flats: dict[str, list[tuple[date, date | None]]] = {
        "f2": [(today - timedelta(days=300), today + timedelta(days=10))],
        "f3": [(today - timedelta(days=300), today - timedelta(days=3))],
        "f4": [(today - timedelta(days=300), today + timedelta(days=10)),
               (today + timedelta(days=11), None)],
        "f5": [(today - timedelta(days=300), today + timedelta(days=60))],
    }
    for flat, ranges in flats.items():
        provisioning.add_room(settings, site, flat, RoomKind.FLAT, f"Lejlighed {flat[1:]}")
        for number, (start, end) in enumerate(ranges):
            provisioning.record_basis(settings, site, flat, decision_ref=f"KK-{flat}-{number}",
                                      valid_from=start, valid_to=end)


def test_admins_see_the_flats_whose_basis_ends_within_30_days_and_staff_do_not(
        site: str, settings: Settings, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]]) -> None:
    flats_with_bases(settings, site)
    answer = http.get("/api/v1/bases/ending", headers=headers_for(make_user("admin")))
    assert answer.status_code == 200, answer.text
    mine = [(b["room"], b["expired"], b["reference"]) for b in answer.json()
            if b["site"] == site]
    assert mine == [("f3", True, "KK-f3-0"), ("f2", False, "KK-f2-0")]
    staff = headers_for(make_user("staff", site))
    assert http.get("/api/v1/bases/ending", headers=staff).status_code == 403
    rooms = {r["id"]: r for r in http.get(f"/api/v1/sites/{site}/rooms",
                                          headers=staff).json()}
    assert rooms["f2"]["basis_ends"] == (site_today() + timedelta(days=10)).isoformat()
    assert rooms["f2"]["monitored"] and not rooms["f3"]["monitored"]
    assert rooms["f3"]["basis_ends"] == (site_today() - timedelta(days=3)).isoformat()
    assert rooms["f1"]["basis_ends"] is None and rooms["f4"]["basis_ends"] is None
    assert rooms["f5"]["basis_ends"] is None


def test_admin_page_shows_a_banner_for_ending_and_ended_bases_in_danish(
        site: str, settings: Settings, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    flats_with_bases(settings, site)
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-rooms")
    banner = page.locator("#basis-banner")
    expect(banner).to_be_visible()
    ending = banner.locator(f"li[data-site='{site}'][data-room='f2']")
    expect(ending).to_have_attribute("data-state", "ending")
    expect(ending).to_contain_text("Lejlighed 2 (Testhjemmet): afgørelsen KK-f2-0 udløber")
    expect(ending).to_contain_text("(om 10 dage)")
    ended = banner.locator(f"li[data-site='{site}'][data-room='f3']")
    expect(ended).to_have_attribute("data-state", "expired")
    expect(ended).to_contain_text("udløb")
    expect(ended).to_contain_text("overvåges ikke")
    for renewed_or_later in ("f1", "f4", "f5"):
        expect(banner.locator(f"li[data-site='{site}'][data-room='{renewed_or_later}']")
               ).to_have_count(0)
    expect(banner).to_contain_text("Registrér et nyt grundlag")

    # Recording a new basis for f2 on the page takes it off the banner.
    page.select_option("#admin-site", site)
    page.select_option("#basis-room", "f2")
    page.select_option("#basis-kind", "consent")
    page.click("#basis-form [type=submit]")
    expect(page.locator("#basis-form .form-ok")).to_be_visible()
    expect(ending).to_have_count(0)
    expect(ended).to_be_visible()

    page.click("#lang")
    expect(ended).to_contain_text("not monitored")


def test_preshift_check_says_when_a_basis_ends(
        site: str, settings: Settings, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page],
        db: psycopg.Connection) -> None:
    flats_with_bases(settings, site)
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    page.click("#preshift-open")
    body = page.locator("#preshift-body")
    expect(body.locator("[data-kind='basis-ending']")).to_contain_text("Lejlighed 2")
    expect(body.locator("[data-kind='basis-ending']")).to_contain_text("Grundlaget udløber")
    expect(body.locator("[data-kind='not-monitored']")).to_contain_text(
        "Ikke overvåget – grundlaget udløb")
    expect(body.locator("[data-kind='basis-ending']")).to_have_count(1)


def test_the_night_board_shows_a_banner_for_bases_ending_within_14_days_and_ended_ones(
        site: str, settings: Settings, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    flats_with_bases(settings, site)
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    banners = page.locator(f"#health-sites [data-site='{site}']")
    # f2 ends in 10 days; f5 in 60 (the admin page's month, not the board's two weeks); f4
    # is renewed without a gap.
    expect(banners.locator("xpath=self::*[@data-kind='basis-ending']")).to_have_text(
        "Testhjemmet: grundlaget for Lejlighed 2 udløber inden for 14 dage. Sig det til en "
        "administrator.")
    expect(banners.locator("xpath=self::*[@data-kind='basis-expired']")).to_have_text(
        "Testhjemmet: grundlaget for Lejlighed 3 er udløbet – lejligheden overvåges ikke. "
        "Sig det til en administrator.")
    expect(page.locator("#health-sites")).not_to_contain_text("Lejlighed 5")
    expect(page.locator("#health-sites")).not_to_contain_text("Lejlighed 4")


# The board asks for the rooms as it starts; held back here 2 s, past the health render
# that follows the stream's hello, so the banner can only come from the rooms' own
# arrival, not from the next ping or health poll (every 10 s, api.routes.stream.PING_S).
ROOMS_LATE = """
(() => {
  const fetchNow = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const response = await fetchNow(input, init);
    const url = typeof input === "string" ? input : input.url;
    if (/\\/api\\/v1\\/sites\\/[^/]+\\/rooms$/.test(new URL(url, location.href).pathname)) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    return response;
  };
})();
"""


def test_the_night_board_shows_the_basis_banner_as_soon_as_late_rooms_arrive(
        site: str, settings: Settings, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page]) -> None:
    flats_with_bases(settings, site)
    server = api_process()
    page = open_page()
    page.add_init_script(ROOMS_LATE)
    page = open_board(page, server, make_user("staff", site))
    expired = page.locator(f"#health-sites [data-site='{site}'][data-kind='basis-expired']")
    # Rooms 2 s after the page asked; the next ping comes ~10 s after the hello.
    expect(expired).to_contain_text("Lejlighed 3", timeout=5_000)
