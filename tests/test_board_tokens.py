"""The board and its token in real headless Chromium: the token travels in the stream's
first message, never in a URL, and never reaches the server's log; a disabled account's
open board goes back to the login page."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.api import Account, bearer
from tests.support.board import ApiProcess, axe_violations, log_in, open_board


def test_the_server_log_of_a_board_session_contains_no_token(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process(log_level="info")  # uvicorn's access log and WebSocket lines on
    page = open_page()
    urls: list[str] = []
    page.on("websocket", lambda ws: urls.append(ws.url))
    open_board(page, server, make_user("staff", site))
    token = page.evaluate("localStorage.getItem('nattero.token')")
    assert isinstance(token, str) and token.count(".") == 2
    assert urls and all(token not in url and "token=" not in url for url in urls), urls

    # An old client that still puts the token in the URL: refused, and kept out of the log.
    ws_url = server.url.replace("http://", "ws://")
    with connect(f"{ws_url}/api/v1/alerts/stream?token={token}", open_timeout=5) as old, \
            pytest.raises(ConnectionClosed) as closed:
        old.send(json.dumps({"type": "auth", "token": token}))
        old.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # And a REST call with the header, and one with the token in a query string.
    assert httpx.get(f"{server.url}/api/v1/alerts", headers=bearer(token)).status_code == 200
    httpx.get(f"{server.url}/api/v1/alerts?access_token={token}")
    page.close()
    server.stop()

    log = server.log.read_text()
    # The log did record the session (else "no token in it" would prove nothing) ...
    assert "/api/v1/alerts/stream" in log and "GET /api/v1/alerts" in log, log[-2000:]
    assert "[redacted]" in log, log[-2000:]
    assert "Logging error" not in log, log[-3000:]  # redacting must not break a formatter
    # ... and holds no token, nor any of its three parts (header, claims, signature).
    assert token not in log
    for part in token.split("."):
        assert part not in log


def test_a_disabled_users_open_board_goes_back_to_the_login_page(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    nurse, admin = make_user("staff", site), make_user("admin")
    page = open_board(open_page(), server, nurse)
    admin_token = httpx.post(f"{server.url}/api/v1/auth/token",
                             data={"username": admin.username, "password": admin.password}
                             ).json()["access_token"]
    response = httpx.post(f"{server.url}/api/v1/users/{nurse.username}/disable",
                          headers=bearer(admin_token))
    assert response.status_code == 200, response.text
    page.wait_for_url(f"{server.url}/login.html**", timeout=5000)


def test_an_admin_disables_enables_and_resets_a_user_on_the_admin_page(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    nurse, admin = make_user("staff", site), make_user("admin")
    board = open_board(open_page(), server, nurse)
    page = open_page()
    log_in(page, server, admin, next_path="/admin.html")
    page.click("#tab-users")
    row = page.locator(f"#users-body tr[data-username='{nurse.username}']")
    expect(row).to_contain_text("Aktiv")
    # Your own row has no disable or delete: that would end this very login.
    mine = page.locator(f"#users-body tr[data-username='{admin.username}']")
    expect(mine.locator("[data-action=disable], [data-action=delete]")).to_have_count(0)
    assert not axe_violations(page)

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=disable]").click()
    expect(row).to_contain_text("Deaktiveret")
    expect(page.locator("#users-ok")).to_contain_text("er deaktiveret og logget ud overalt")
    board.wait_for_url(f"{server.url}/login.html**", timeout=5000)  # its board, at once

    row.locator("[data-action=enable]").click()
    expect(row).to_contain_text("Aktiv")
    page.once("dialog", lambda dialog: dialog.accept("for-kort"))
    row.locator("[data-action=passwd]").click()
    expect(page.locator("#users-error")).to_contain_text("for kort")
    page.once("dialog", lambda dialog: dialog.accept("en-helt-ny-nat-med-te-7"))
    row.locator("[data-action=passwd]").click()
    expect(page.locator("#users-ok")).to_contain_text("har fået ny adgangskode")
    relogin = httpx.post(f"{server.url}/api/v1/auth/token",
                         data={"username": nurse.username,
                               "password": "en-helt-ny-nat-med-te-7"})
    assert relogin.status_code == 200

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=delete]").click()
    expect(row).to_have_count(0)
