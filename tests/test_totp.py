"""A local admin's second factor: TOTP codes at login, enrolment, replay, the lockout,
an admin's reset, and the login page's enrolment in Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, expect

from core.settings import Settings, StackInfo, get_settings
from tests.support.api import Account, ApiServer, bearer
from tests.support.board import ApiProcess, screenshot
from tests.support.board import log_in as log_in_on_page
from tests.support.cli import nattero_cli


def enrol(http: httpx.Client, account: Account) -> pyotp.TOTP:
    answer = http.post("/api/v1/auth/totp/enrol",
                       data={"username": account.username, "password": account.password})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Nattero:")
    assert body["qr_code"].startswith("data:image/svg+xml")
    return pyotp.TOTP(body["secret"])


def log_in(http: httpx.Client, account: Account, code: str | None = None) -> httpx.Response:
    form = {"username": account.username, "password": account.password}
    if code is not None:
        form["totp"] = code
    return http.post("/api/v1/auth/token", data=form)


def code_at(totp: pyotp.TOTP, steps_ahead: int = 0) -> str:
    return totp.at(int(time.time()) + steps_ahead * 30)


def test_enrolled_admin_needs_the_code_and_a_code_works_once(
        http: httpx.Client, make_user: Callable[..., Account], db: psycopg.Connection) -> None:
    admin = make_user("admin")
    totp = enrol(http, admin)
    # Not confirmed yet: the password alone still logs in (optional in development).
    assert log_in(http, admin).status_code == 200
    first = code_at(totp)
    confirmed = log_in(http, admin, first)
    assert confirmed.status_code == 200, confirmed.text
    asked = log_in(http, admin)
    assert asked.status_code == 401
    assert asked.headers["X-Nattero-Second-Factor"] == "code"
    replayed = log_in(http, admin, first)  # still within its 30 s (or the next)
    assert replayed.status_code == 401
    assert "already used" in replayed.json()["detail"]
    assert log_in(http, admin, code_at(totp, 1)).status_code == 200
    actions = [row[0] for row in db.execute(
        "SELECT action FROM audit_log WHERE actor = %s ORDER BY id", (admin.username,))]
    assert "totp.enrolled" in actions and "totp.enrol_started" in actions
    # Enrolled once: a second enrolment is refused (another admin resets it).
    again = http.post("/api/v1/auth/totp/enrol",
                      data={"username": admin.username, "password": admin.password})
    assert again.status_code == 409


def test_wrong_codes_count_toward_the_lockout(
        http: httpx.Client, make_user: Callable[..., Account]) -> None:
    admin = make_user("admin")
    totp = enrol(http, admin)
    assert log_in(http, admin, code_at(totp)).status_code == 200
    wrong = "000000" if code_at(totp, 1) != "000000" else "111111"
    answers = [log_in(http, admin, wrong).status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    assert log_in(http, admin, code_at(totp, 1)).status_code == 429


def test_an_admin_resets_another_admins_second_factor_and_ends_its_logins(
        http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection) -> None:
    lost_phone, colleague = make_user("admin"), make_user("admin")
    totp = enrol(http, lost_phone)
    token = log_in(http, lost_phone, code_at(totp)).json()["access_token"]
    colleague_headers = headers_for(colleague)
    assert http.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    reset = http.delete(f"/api/v1/users/{lost_phone.username}/totp",
                        headers=colleague_headers)
    assert reset.status_code == 200, reset.text
    assert http.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert log_in(http, lost_phone).status_code == 200  # optional here: password again
    yourself = http.delete(f"/api/v1/users/{colleague.username}/totp",
                           headers=colleague_headers)
    assert yourself.status_code == 422
    row = db.execute("SELECT actor, detail FROM audit_log WHERE action = 'user.totp_reset' "
                     "AND target = %s", (lost_phone.username,)).fetchone()
    assert row == (colleague.username, {"had": True})


def test_staff_may_not_reset_a_second_factor(
        http: httpx.Client, make_user: Callable[..., Account], site: str,
        headers_for: Callable[[Account], dict[str, str]]) -> None:
    admin, staff = make_user("admin"), make_user("staff", site)
    answer = http.delete(f"/api/v1/users/{admin.username}/totp", headers=headers_for(staff))
    assert answer.status_code == 403


@pytest.fixture(scope="module")
def strict_api(migrated: StackInfo) -> Iterator[ApiServer]:
    """An API where admins must have a second factor (production's default)."""
    settings = Settings.model_validate({**get_settings().model_dump(), "admin_totp": "required"})
    server = ApiServer(settings)
    server.start()
    yield server
    server.stop()


def test_required_second_factor_makes_an_admin_enrol_before_logging_in(
        strict_api: ApiServer, make_user: Callable[..., Account], site: str) -> None:
    admin, staff = make_user("admin"), make_user("staff", site)
    with httpx.Client(base_url=strict_api.url, headers={"Accept-Language": "en"}) as http:
        asked = log_in(http, admin)
        assert asked.status_code == 401
        assert asked.headers["X-Nattero-Second-Factor"] == "enrol"
        totp = enrol(http, admin)
        assert log_in(http, admin, "123 456" if code_at(totp) != "123456" else "654321"
                      ).status_code == 401
        assert log_in(http, admin, code_at(totp)).status_code == 200
        assert log_in(http, staff).status_code == 200  # staff need no second factor


@pytest.mark.browser
def test_login_page_sets_up_the_second_factor_in_danish(
        migrated: StackInfo, open_page: Callable[..., Page],
        make_user: Callable[..., Account]) -> None:
    admin = make_user("admin")
    server = ApiProcess(env={"NATTERO_ADMIN_TOTP": "required"})
    server.start()
    try:
        page = open_page()
        page.goto(f"{server.url}/login.html?next=/")
        page.fill("#username", admin.username)
        page.fill("#password", admin.password)
        page.click("#login-submit")
        expect(page.locator("#totp-enrolment")).to_be_visible()
        expect(page.locator("#login-notice")).to_contain_text("godkendelses-app")
        qr = page.locator("#totp-qr")
        expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
        assert qr.evaluate("image => image.naturalWidth") > 0  # the policy let it show
        screenshot(page, "login-totp-enrolment")
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        assert page.locator("#totp-uri").get_attribute("href", timeout=1000) == \
            pyotp.TOTP(secret).provisioning_uri(name=admin.username, issuer_name="Nattero")
        page.fill("#totp", "000000" if code_at(pyotp.TOTP(secret)) != "000000" else "111111")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("Forkert eller allerede brugt")
        page.fill("#totp", code_at(pyotp.TOTP(secret)))
        page.click("#login-submit")
        page.wait_for_url(f"{server.url}/")
    finally:
        server.stop()


def test_the_server_resets_a_second_factor_when_no_other_admin_can(
        http: httpx.Client, make_user: Callable[..., Account], db: psycopg.Connection) -> None:
    admin = make_user("admin")
    totp = enrol(http, admin)
    assert log_in(http, admin, code_at(totp)).status_code == 200
    done = nattero_cli("user", "totp-reset", admin.username.upper())
    assert done.returncode == 0, done.stderr
    assert "reset" in done.stdout
    assert log_in(http, admin).status_code == 200  # the password alone again (optional)
    assert db.execute("SELECT actor FROM audit_log WHERE action = 'user.totp_reset' AND "
                      "target = %s", (admin.username,)).fetchone() == ("cli",)
    missing = nattero_cli("user", "totp-reset", "nobody-at-all")
    assert missing.returncode != 0 and "does not exist" in missing.stderr


@pytest.mark.browser
def test_an_admin_resets_another_admins_second_factor_on_the_admin_page(
        api_process: Callable[..., ApiProcess], open_page: Callable[..., Page],
        make_user: Callable[..., Account], db: psycopg.Connection) -> None:
    server = api_process()
    lost_phone, colleague = make_user("admin"), make_user("admin")
    with httpx.Client(base_url=server.url) as http:
        totp = enrol(http, lost_phone)
        assert log_in(http, lost_phone, code_at(totp)).status_code == 200
    page = open_page()
    log_in_on_page(page, server, colleague, next_path="/admin.html")
    page.click("#tab-users")
    row = page.locator(f"#users-body tr[data-username='{lost_phone.username}']")
    expect(row).to_contain_text("totrinsbekræftelse")
    mine = page.locator(f"#users-body tr[data-username='{colleague.username}']")
    expect(mine.locator("[data-action=totp_reset]")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=totp_reset]").click()
    expect(page.locator("#users-ok")).to_contain_text("totrinsbekræftelse er nulstillet")
    expect(row.locator("[data-action=totp_reset]")).to_have_count(0)
    assert db.execute("SELECT totp_secret, totp_confirmed FROM users WHERE username = %s",
                      (lost_phone.username,)).fetchone() == (None, False)
