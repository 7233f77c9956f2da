"""The escalation's steps on the board card, in real headless Chromium: what the server
logged ("Sendt til 2. person (e-mail) 03:12") arrives live on the stream and is shown on
the call's card, Danish first, and a step that failed is shown as failed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from playwright.sync_api import Page, expect

from ingest.roster import record_passed_on
from tests.support.api import Account
from tests.support.board import SCREENSHOTS, ApiProcess, log_in, open_board

CLOCK = r"\d\d[.:]\d\d"


def pass_on(db: psycopg.Connection, alert: int, step: str, status: str,
            error: str | None = None) -> None:
    now = datetime.now(UTC)
    with db.transaction():
        record_passed_on(db, alert, {"step": step, "channel": "email", "status": status,
                                     "at": now.isoformat(), "attempts": 3, "error": error},
                         now, escalate=status == "sent")


def test_the_board_card_shows_each_escalation_step_as_it_happens(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int],
        db: psycopg.Connection) -> None:
    server = api_process()
    alert = raise_alert(site, "f1", "left_flat", "normal")
    page = open_board(open_page(), server, make_user("staff", site))
    card = page.locator(f'#alert-list li[data-id="{alert}"]')
    expect(card).to_be_visible()
    expect(card.locator(".alert-passed")).to_be_hidden()

    pass_on(db, alert, "second", "sent")
    steps = card.locator(".alert-passed li")
    expect(steps).to_have_count(1)
    expect(steps.nth(0)).to_have_text(re.compile(rf"^Sendt til 2\. person \(e-mail\) {CLOCK}$"))
    expect(card.locator(".badge-escalated")).to_be_visible()

    pass_on(db, alert, "coordinator", "failed", "mail server answered 554: relay refused")
    expect(steps).to_have_count(2)
    expect(steps.nth(1)).to_have_text(
        re.compile(rf"^Kunne ikke sende til koordinator \(e-mail\) {CLOCK}$"))
    expect(steps.nth(1)).to_have_class(re.compile(r"passed-failed"))
    expect(steps.nth(1)).to_have_attribute("title", re.compile("554"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "board-escalation-steps.png"))

    page.click("#lang")
    expect(steps.nth(0)).to_have_text(re.compile(rf"^Sent to second person \(e-mail\) {CLOCK}$"))


def test_an_admin_sets_a_nights_roster_on_the_admin_page(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    duty, second = make_user("staff", site), make_user("staff", site)
    import provisioning
    from core.settings import get_settings

    other = f"{site}-x"[:60]
    provisioning.add_site(get_settings(), other, "Andet sted")
    stranger = make_user("staff", other)  # another site's staff cannot take this site's calls
    boss = make_user("admin")
    server = api_process()
    page = open_page()
    log_in(page, server, boss, next_path="/admin.html")
    page.click("#tab-users")
    page.select_option("#roster-site", site)
    page.fill("#roster-night", "2026-12-24")
    page.locator("#roster-night").dispatch_event("change")
    # Only accounts that can take the site's calls are offered.
    offered = page.locator("#roster-duty option").all_inner_texts()
    assert duty.username in offered and second.username in offered
    assert stranger.username not in offered
    page.select_option("#roster-duty", duty.username)
    page.select_option("#roster-second", second.username)
    page.select_option("#roster-coordinator", boss.username)
    page.click("#roster-form [type=submit]")
    expect(page.locator("#roster-form .form-ok")).to_have_text(
        "Vagtplanen for Testhjemmet, natten der begynder 24. december 2026, er gemt.")
    stored = db.execute("SELECT duty, second, coordinator FROM rosters WHERE site = %s "
                        "AND night = '2026-12-24'", (site,)).fetchone()
    assert stored == (duty.username, second.username, boss.username)
    # Opened again on that night, the form shows the stored roster.
    page.reload()
    page.click("#tab-users")
    page.select_option("#roster-site", site)
    page.fill("#roster-night", "2026-12-24")
    page.locator("#roster-night").dispatch_event("change")
    expect(page.locator("#roster-duty")).to_have_value(duty.username)
    expect(page.locator("#roster-coordinator")).to_have_value(boss.username)


def test_an_admin_sets_an_escalation_e_mail_and_a_sites_minutes_on_the_admin_page(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    nurse = make_user("staff", site)
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-users")
    page.select_option("#contact-username", nurse.username)
    page.fill("#contact-email", "nattevagt@plejehjem.test")
    page.click("#contact-form [type=submit]")
    expect(page.locator("#contact-form .form-ok")).to_have_text(
        f"{nurse.username} får nu eskaleringer på nattevagt@plejehjem.test.")
    assert db.execute("SELECT email FROM user_contacts WHERE username = %s",
                      (nurse.username,)).fetchone() == ("nattevagt@plejehjem.test",)

    page.select_option("#policy-site", site)
    page.select_option("#policy-severity", "high")
    page.fill("#policy-second", "4")
    page.fill("#policy-coordinator", "3")  # before the second person: refused in the page
    page.click("#policy-form [type=submit]")
    expect(page.locator("#policy-form .form-error")).to_contain_text(
        "Koordinatoren kommer efter 2. person")
    page.fill("#policy-coordinator", "10")
    page.click("#policy-form [type=submit]")
    expect(page.locator("#policy-form .form-ok")).to_have_text(
        "Testhjemmet: til 2. person efter 4 min, til koordinatoren efter 10 min.")
    stored = db.execute("SELECT second_after_minutes, coordinator_after_minutes FROM "
                        "escalation_policies WHERE site = %s AND severity = 'high'",
                        (site,)).fetchone()
    assert stored == (4.0, 10.0)
