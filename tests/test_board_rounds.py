"""The board's "Runde gået" buttons and the end-of-shift questionnaire, in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from playwright.sync_api import Page, expect

from tests.support.api import Account
from tests.support.board import (
    TABLET,
    ApiProcess,
    axe_violations,
    log_in,
    open_board,
    screenshot,
)
from tests.test_board_pages import describe


def test_one_tap_logs_a_round_of_the_site_a_floor_or_a_flat(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    db.execute("UPDATE rooms SET corridor = 'lounge' WHERE site = %s AND id = 'f1'", (site,))
    server = api_process()
    staff = make_user("staff", site)
    page = open_board(open_page(TABLET), server, staff)
    status = page.locator("#rounds-status")

    page.get_by_role("button", name="Runde gået – hele stedet").click()
    expect(status).to_contain_text("Runde registreret kl.")
    expect(status).to_contain_text("1 lejlighed.")
    page.get_by_role("button", name="Runde gået – Dagligstue").click()
    page.get_by_role("button", name="Runde gået i Lejlighed 1").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-round-scope]:disabled').length === 0")
    rows = _rounds(db, site, expected=3)
    assert rows == [("site", None), ("floor", "lounge"), ("flat", "f1")]
    assert db.execute("SELECT count(*) FROM audit_log WHERE site = %s AND action = 'round.log' "
                      "AND actor = %s", (site, staff.username)).fetchone() == (3,)
    violations = axe_violations(page)
    assert not violations, describe(violations)
    screenshot(page, "board-rounds")

    page.click("#lang")
    expect(page.get_by_role("button", name="Round done – whole site")).to_be_visible()
    page.get_by_role("button", name="Round done – whole site").click()
    expect(status).to_contain_text("Round logged at")
    assert len(_rounds(db, site, expected=4)) == 4


def _rounds(db: psycopg.Connection, site: str, expected: int) -> list[tuple[str, str | None]]:
    """The site's rounds once ``expected`` are stored (the click's request may still run)."""
    import time

    deadline = time.monotonic() + 10
    while True:
        rows = [(scope, room) for scope, room in db.execute(
            "SELECT scope, room FROM rounds WHERE site = %s ORDER BY id", (site,)).fetchall()]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_end_of_shift_questionnaire_is_answered_on_the_board_without_a_user(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    server = api_process()
    staff = make_user("staff", site)
    page = open_board(open_page(TABLET), server, staff)
    page.click("#shift-open")
    dialog = page.locator("#shift-dialog")
    expect(dialog).to_contain_text("Frivilligt og anonymt")
    page.click("#shift-send")
    expect(page.locator("#shift-status")).to_have_text(
        "Vælg mindst ét svar eller skriv en kommentar.")
    dialog.get_by_role("group", name="Natten føltes rolig").get_by_label("4").check()
    dialog.get_by_role("group", name="Jeg havde tillid til alarmerne").get_by_label("5").check()
    page.fill("#shift-comment", "Rolig nat")
    violations = axe_violations(page)
    assert not violations, describe(violations)
    screenshot(page, "board-shift-questionnaire")
    page.click("#shift-send")
    expect(page.locator("#shift-status")).to_have_text("Tak. Dit svar er gemt anonymt.")
    row = db.execute("SELECT calm, workload, trust, residents_rest, comment, "
                     "row_to_json(a)::text FROM shift_answers a WHERE site = %s",
                     (site,)).fetchone()
    assert row is not None and row[:5] == (4, None, 5, None, "Rolig nat")
    assert staff.username not in row[5]


def test_admin_sets_the_baseline_and_notes_a_flats_outcome_on_the_admin_page(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    server = api_process()
    page = open_page(TABLET)
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("[data-tab='rooms']")
    page.select_option("#admin-site", site)
    expect(page.locator("#resident-room option[value='f1']")).to_have_count(1)
    page.fill("#baseline-first", "2026-06-01")
    page.fill("#baseline-last", "2026-06-14")
    page.click("#baseline-form [type=submit]")
    expect(page.locator("#baseline-form .form-ok")).to_have_text(
        "Baselineperioden er gemt: nætterne 1. juni 2026 til 14. juni 2026.")
    assert db.execute("SELECT first_night::text, last_night::text FROM baseline_periods "
                      "WHERE site = %s", (site,)).fetchone() == ("2026-06-01", "2026-06-14")

    page.select_option("#resident-room", "f1")
    page.fill("#resident-date", "2026-06-03")
    page.select_option("#resident-self", "2")
    page.select_option("#resident-life", "4")
    page.click("#resident-form [type=submit]")
    expect(page.locator("#resident-form .form-ok")).to_have_text("Notatet er gemt.")
    assert db.execute("SELECT room, noted_on::text, self_reliance, quality_of_life "
                      "FROM resident_outcomes WHERE site = %s", (site,)).fetchall() == [
        ("f1", "2026-06-03", 2, 4)]
    violations = axe_violations(page)
    assert not violations, describe(violations)
    screenshot(page, "admin-baseline-outcomes")

    # Opened again, the form shows the stored period.
    page.reload()
    page.click("[data-tab='rooms']")
    page.select_option("#admin-site", site)
    expect(page.locator("#baseline-first")).to_have_value("2026-06-01")


@pytest.mark.parametrize(("button", "told", "room"), [
    ("Jeg går runde i fællesrum (15 min)", "Runde i fællesrummene til", None),
    ("Jeg går ind i Lejlighed 1 (15 min)", "Personale i Lejlighed 1 til", "f1"),
], ids=["common-rooms", "into-a-flat"])
def test_staff_on_the_floor_is_one_tap_and_stored(
        button: str, told: str, room: str | None, site: str,
        api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    server = api_process()
    page = open_board(open_page(TABLET), server, make_user("staff", site))
    page.get_by_role("button", name=button).click()
    expect(page.locator("#rounds-status")).to_contain_text(told)
    row = db.execute("SELECT room, ends_at - starts_at FROM staff_presence WHERE site = %s",
                     (site,)).fetchone()
    assert row is not None and row[0] == room and row[1].total_seconds() == 15 * 60
