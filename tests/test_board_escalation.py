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
from tests.support.board import SCREENSHOTS, ApiProcess, open_board

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
