"""Enrolled boards and the lockout in real headless Chromium: an admin makes a pairing
code on the admin page, the tablet enters it on the login page and becomes the site's
board, renews its own token, and is sent back to the login page the moment the admin
revokes it; no token, board secret or code reaches a URL or the server's log. A
stranger's wrong passwords lock the stranger's browser, not the nurse's tablet, and the
admin unlocks on the admin page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from api.lockout import FREE_FAILURES
from tests.support.api import Account
from tests.support.board import ApiProcess, axe_violations, log_in, sign_in

CODE = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")


def _make_pairing_code(page: Page, site: str, label: str) -> str:
    page.select_option("#admin-site", site)
    page.click("#tab-boards")
    page.fill("#pairing-label", label)
    page.click("#pairing-form button[type=submit]")
    expect(page.locator("#pairing-code")).to_have_text(CODE)
    return page.locator("#pairing-code").inner_text()


def test_a_tablet_enrolled_on_the_admin_page_stays_a_board_until_revoked(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process(log_level="info")  # uvicorn's access log and WebSocket lines on
    admin_page = open_page()
    log_in(admin_page, server, make_user("admin"), next_path="/admin.html")
    code = _make_pairing_code(admin_page, site, "kontoret")
    expect(admin_page.locator("#pairing-expires")).to_contain_text("Gælder til kl.")
    assert not axe_violations(admin_page)

    tablet = open_page()
    urls: list[str] = []
    tablet.on("request", lambda request: urls.append(request.url))
    tablet.on("websocket", lambda ws: urls.append(ws.url))
    tablet.goto(f"{server.url}/login.html")
    expect(tablet.locator("#pair-form h2")).to_have_text("Tilslut som nattavle")
    assert not axe_violations(tablet)
    tablet.fill("#pair-code", code.lower())
    tablet.click("#pair-submit")
    tablet.wait_for_url(f"{server.url}/")
    tablet.wait_for_selector("#health-ok.is-live", timeout=10_000)
    board = json.loads(tablet.evaluate("localStorage.getItem('nattero.board')"))
    assert board["site"] == site and board["label"] == "kontoret"
    first_token = tablet.evaluate("localStorage.getItem('nattero.token')")

    # The tablet slept past its token: on waking it renews by itself, no login page.
    tablet.evaluate("localStorage.setItem('nattero.token', 'ran.out.long-ago')")
    tablet.reload()
    tablet.wait_for_selector("#health-ok.is-live", timeout=10_000)
    assert tablet.url == f"{server.url}/"
    token = tablet.evaluate("localStorage.getItem('nattero.token')")
    assert isinstance(token, str) and token.count(".") == 2 and token != first_token

    # The admin sees it, and revokes it: the board is back at the login page at once.
    admin_page.click("#tab-users")
    admin_page.click("#tab-boards")
    row = admin_page.locator(f"#boards-body tr[data-board-id='{board['id']}']")
    expect(row).to_contain_text("kontoret")
    expect(row).to_contain_text("Tilsluttet")
    admin_page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=revoke]").click()
    expect(row).to_contain_text("Tilbagekaldt")
    tablet.wait_for_url(f"{server.url}/login.html**", timeout=10_000)
    expect(tablet.locator("#login-notice")).to_contain_text("ikke længere tilsluttet som tavle")
    assert tablet.evaluate("localStorage.getItem('nattero.board')") is None
    tablet.close()
    server.stop()

    secrets = [first_token, token, board["secret"], code, code.replace("-", "")]
    for url in urls:
        assert not any(secret in url for secret in secrets), url
        assert "token=" not in url, url
    log = server.log.read_text()
    assert "/api/v1/auth/board/pair" in log and "/api/v1/alerts/stream" in log, log[-2000:]
    assert "Logging error" not in log, log[-3000:]
    for secret in secrets:
        assert secret not in log
    for part in first_token.split(".") + token.split("."):
        assert part not in log


def test_a_strangers_guesses_lock_his_browser_not_the_nurses_tablet_and_an_admin_unlocks(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    nurse, admin = make_user("staff", site), make_user("admin")
    tablet = open_page()
    log_in(tablet, server, nurse)  # the night shift's tablet has logged in before
    tablet.click("#logout")
    tablet.wait_for_url(f"{server.url}/login.html**")

    stranger = open_page()
    for n in range(FREE_FAILURES + 1):
        sign_in(stranger, server, Account(nurse.username, f"gaet-{n}", "staff"))
        expect(stranger.locator("#login-error")).to_be_visible()
    sign_in(stranger, server, nurse)  # the right password, from the stranger's browser
    expect(stranger.locator("#login-error")).to_contain_text("fra denne enhed")
    assert stranger.url.startswith(f"{server.url}/login.html")

    log_in(tablet, server, nurse)  # the tablet is not locked out

    page = open_page()
    log_in(page, server, admin, next_path="/admin.html")
    page.click("#tab-users")
    row = page.locator(f"#users-body tr[data-username='{nurse.username}']")
    expect(row).to_contain_text("Låst på 1 enhed(er)")
    row.locator("[data-action=unlock]").click()
    expect(page.locator("#users-ok")).to_contain_text("er låst op")
    expect(row).to_contain_text("Aktiv")
    log_in(stranger, server, nurse)
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_the_pages_renew_their_tokens_by_themselves_at_half_life(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    admin_token = httpx.post(f"{server.url}/api/v1/auth/token",
                             data={"username": (admin := make_user("admin")).username,
                                   "password": admin.password}).json()["access_token"]
    code = httpx.post(f"{server.url}/api/v1/sites/{site}/boards/pairings",
                      json={"label": "gangen"},
                      headers={"Authorization": f"Bearer {admin_token}"}).json()["code"]
    board, personal = open_page(), open_page()
    for page in (board, personal):
        page.clock.install()  # the page's own time, moved below (the server's is real)
    board.goto(f"{server.url}/login.html")
    board.fill("#pair-code", code)
    board.click("#pair-submit")
    board.wait_for_selector("#health-ok.is-live", timeout=10_000)
    log_in(personal, server, make_user("staff", site))
    personal.wait_for_selector("#health-ok.is-live", timeout=10_000)

    for page, minutes in ((board, 30), (personal, 60)):  # the tokens' lifetimes
        before = page.evaluate("localStorage.getItem('nattero.token')")
        page.clock.fast_forward(f"{minutes // 2 + 1}:00")
        renewed = f"() => localStorage.getItem('nattero.token') !== {json.dumps(before)}"
        page.wait_for_function(renewed, timeout=10_000)
        page.wait_for_selector("#health-ok.is-live", timeout=15_000)
        assert page.url == f"{server.url}/"
