"""Single sign-on through a real OpenID Connect provider: panva's certified
``oidc-provider`` (``tests/oidc/provider.js``, installed by ``make install``) with its own
login form, driven in headless Chromium against the API in a process of its own.

The directory has an admin group, a night-staff group of one site and a group that maps
to nothing; each test logs in as a fresh directory user, so runs never share accounts.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, Request, Route, expect

from api.users import create_user, set_disabled
from core.settings import StackInfo, get_settings
from tests.support import REPO
from tests.support.api import PASSWORD, bearer, free_port
from tests.support.board import ApiProcess
from tests.support.store import unique
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROVIDER = REPO / "tests" / "oidc" / "provider.js"
CLIENT_ID = "nattero"
CLIENT_SECRET = "provider-test-secret-" + "x" * 20
ADMIN_GROUP = "nattero-admin"
NOTHING_GROUP = "kantine"


@dataclass
class Directory:
    """The provider, the API that uses it, and the directory's users by kind."""

    api: ApiProcess
    issuer: str
    site: str
    admin: str
    night: str
    night_again: str
    nobody: str
    local_name: str


@pytest.fixture(scope="module")
def directory(migrated: StackInfo) -> Iterator[Directory]:
    import provisioning

    site = unique("sso")
    provisioning.add_site(get_settings(), site, "Solsikken")
    night_group = f"nattevagt-{site}"
    tag = uuid.uuid4().hex[:8]
    logins = {f"admin-{tag}": [ADMIN_GROUP, NOTHING_GROUP],
              f"nat-{tag}": [night_group, "alle-ansatte"],
              f"nat2-{tag}": [night_group],
              f"kok-{tag}": [NOTHING_GROUP],
              f"lokal-{tag}": [ADMIN_GROUP]}
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    api = ApiProcess(env={
        "NATTERO_OIDC_ISSUER": issuer,
        "NATTERO_OIDC_CLIENT_ID": CLIENT_ID,
        "NATTERO_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "NATTERO_OIDC_SCOPES": "openid profile groups",
        "NATTERO_OIDC_ROLES": json.dumps({ADMIN_GROUP: "admin", night_group: "staff"}),
        "NATTERO_OIDC_SITES": json.dumps({night_group: [site]}),
    })
    log = REPO / "artifacts" / f"oidc-provider-{tag}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        provider = subprocess.Popen(
            ["node", str(PROVIDER)], cwd=PROVIDER.parent, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENT_ID": CLIENT_ID,
                 "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_ACCOUNTS": json.dumps(logins),
                 "OIDC_REDIRECT_URI": f"{api.url}/api/v1/auth/oidc/callback"})
    try:
        deadline = time.monotonic() + 20
        while True:
            assert provider.poll() is None, f"the provider exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the OIDC provider did not start"
            time.sleep(0.1)
        api.start()
        yield Directory(api=api, issuer=issuer, site=site, admin=f"admin-{tag}",
                        night=f"nat-{tag}", night_again=f"nat2-{tag}", nobody=f"kok-{tag}",
                        local_name=f"lokal-{tag}")
    finally:
        api.stop()
        provider.terminate()
        provider.wait(10)


def through_provider(page: Page, directory: Directory, login: str) -> None:
    """From the login page, through the provider's own login form and consent."""
    page.goto(f"{directory.api.url}/login.html?next=/")
    page.click("#sso-login")
    page.wait_for_url(f"{directory.issuer}/**")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password the test provider takes")
    page.click("button[type=submit]")
    page.get_by_role("button", name="Continue").click()


def token_of(page: Page) -> str:
    token = page.evaluate("localStorage.getItem('nattero.token')")
    assert isinstance(token, str)
    return token


def me(directory: Directory, token: str) -> dict[str, object]:
    answer = httpx.get(f"{directory.api.url}/api/v1/auth/me", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def refusal_on_login_page(page: Page, directory: Directory) -> str:
    page.wait_for_url(f"{directory.api.url}/login.html**")
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    assert page.evaluate("localStorage.getItem('nattero.token')") is None
    assert "#" not in page.url  # the fragment is cleared once read
    return error.inner_text()


def audit_actions(db: psycopg.Connection, actor: str) -> list[tuple[str, dict[str, object]]]:
    rows = db.execute("SELECT action, detail FROM audit_log WHERE actor = %s ORDER BY id",
                      (actor,)).fetchall()
    return [(row[0], row[1]) for row in rows]


def test_admin_group_logs_in_as_admin_through_the_provider(
        directory: Directory, open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    page = open_page()
    through_provider(page, directory, directory.admin)
    page.wait_for_url(f"{directory.api.url}/")
    user = me(directory, token_of(page))
    assert user == {"username": directory.admin, "role": "admin", "sites": []}
    stored = db.execute("SELECT password_hash, sso_issuer, sso_subject FROM users "
                        "WHERE username = %s", (directory.admin,)).fetchone()
    assert stored == (None, directory.issuer, directory.admin)
    assert audit_actions(db, directory.admin)[-1][0] == "login.sso"
    # The admin page marks the account as the municipality's, with no password to set.
    page.goto(f"{directory.api.url}/admin.html")
    page.click("#tab-users")
    row = page.locator(f"#users-body tr[data-username='{directory.admin}']")
    expect(row).to_contain_text("kommunens konto")
    expect(row.locator("[data-action=passwd]")).to_have_count(0)
    # The SSO account has no password: the password form never logs it in.
    answer = httpx.post(f"{directory.api.url}/api/v1/auth/token",
                        data={"username": directory.admin, "password": ""})
    assert answer.status_code in (401, 422)


def test_night_staff_group_logs_in_as_staff_of_its_site(
        directory: Directory, open_page: Callable[..., Page]) -> None:
    page = open_page()
    through_provider(page, directory, directory.night)
    page.wait_for_url(f"{directory.api.url}/")
    assert me(directory, token_of(page)) == {"username": directory.night, "role": "staff",
                                             "sites": [directory.site]}


def test_group_that_maps_to_no_role_is_refused_in_danish(
        directory: Directory, open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    page = open_page()
    through_provider(page, directory, directory.nobody)
    text = refusal_on_login_page(page, directory)
    assert "ingen af dine grupper giver en rolle" in text
    assert db.execute("SELECT 1 FROM users WHERE username = %s",
                      (directory.nobody,)).fetchone() is None
    action, detail = audit_actions(db, directory.nobody)[-1]
    assert action == "login.sso_refused" and detail["reason"] == "no_role"


def _with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, "state": state})))


def held_callback(page: Page, directory: Directory, login: str) -> str:
    """Through the provider, but the browser is kept from going back to Nattero: the
    callback URL, unused. (A route sees only the first request of a redirect chain, so the
    consent form's answer is followed here, with the browser's cookies, up to the
    callback.)"""
    held: list[str] = []

    def consent(route: Route, request: Request) -> None:
        if "prompt=consent" not in (request.post_data or ""):
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        resume = page.request.get(answer.headers["location"], max_redirects=0)
        held.append(resume.headers["location"])
        route.fulfill(status=200, content_type="text/plain", body="held by the test")

    page.route(lambda url: url.startswith(directory.issuer) and "/interaction/" in url,
               consent)
    through_provider(page, directory, login)
    assert wait_until(lambda: bool(held), timeout=10)
    assert "/api/v1/auth/oidc/callback?" in held[0]
    return held[0]


def test_tampered_state_is_refused_and_the_genuine_one_then_works(
        directory: Directory, open_page: Callable[..., Page]) -> None:
    page = open_page()
    url = held_callback(page, directory, directory.night)
    page.goto(_with_state(url, "forged-" + "a" * 30))
    assert "bekræftes" in refusal_on_login_page(page, directory)
    page.goto(url)  # the same browser, the provider's own state: let in
    page.wait_for_url(f"{directory.api.url}/")
    assert me(directory, token_of(page))["role"] == "staff"


def test_replayed_callback_is_refused_even_with_the_browsers_cookie(
        directory: Directory, open_page: Callable[..., Page]) -> None:
    page = open_page()
    seen: list[tuple[str, str]] = []
    page.on("request", lambda request: seen.append(
        (request.url, request.all_headers().get("cookie", "")))
        if "/api/v1/auth/oidc/callback" in request.url else None)
    through_provider(page, directory, directory.night)
    page.wait_for_url(f"{directory.api.url}/")
    (url, cookie), = seen
    assert "nattero_sso=" in cookie
    replay = httpx.get(url, headers={"Cookie": cookie})
    assert replay.status_code == 303
    assert replay.headers["location"].endswith("#sso-error=state")


def test_callback_from_another_browser_is_refused(
        directory: Directory, open_page: Callable[..., Page]) -> None:
    page = open_page()
    url = held_callback(page, directory, directory.night)
    # The right state and code, but not the cookie of the browser that started the login.
    answer = httpx.get(url)
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("#sso-error=state")


def test_disabled_sso_user_is_refused(
        directory: Directory, open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    first = open_page()
    through_provider(first, directory, directory.night_again)
    first.wait_for_url(f"{directory.api.url}/")
    set_disabled(db, directory.night_again, True)
    again = open_page()
    through_provider(again, directory, directory.night_again)
    assert "spærret" in refusal_on_login_page(again, directory)
    action, detail = audit_actions(db, directory.night_again)[-1]
    assert action == "login.sso_refused" and detail["reason"] == "disabled"


def test_local_account_of_the_same_name_is_not_taken_over(
        directory: Directory, open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    create_user(db, directory.local_name, PASSWORD, "staff", [directory.site])
    page = open_page()
    through_provider(page, directory, directory.local_name)
    assert "lokal konto" in refusal_on_login_page(page, directory)
    role = db.execute("SELECT role, sso_subject FROM users WHERE username = %s",
                      (directory.local_name,)).fetchone()
    assert role == ("staff", None)


def test_one_time_code_works_once(directory: Directory,
                                  open_page: Callable[..., Page]) -> None:
    page = open_page()
    codes: list[str] = []
    page.on("request", lambda request: codes.append(json.loads(request.post_data or "{}")
                                                    ["code"])
            if request.url.endswith("/api/v1/auth/oidc/token") else None)
    through_provider(page, directory, directory.admin)
    page.wait_for_url(f"{directory.api.url}/")
    (code,) = codes
    again = httpx.post(f"{directory.api.url}/api/v1/auth/oidc/token", json={"code": code})
    assert again.status_code == 401


def test_login_page_shows_no_sso_button_without_single_sign_on(
        api_process: Callable[..., ApiProcess], open_page: Callable[..., Page]) -> None:
    plain = api_process()
    page = open_page()
    page.goto(f"{plain.url}/login.html")
    expect(page.locator("#username")).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#sso")).to_be_hidden()
    assert httpx.get(f"{plain.url}/api/v1/auth/oidc/login").status_code == 404
