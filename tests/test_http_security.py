"""Security headers on every page and API answer, HSTS over HTTPS only (``nattero serve``
with a certificate from the installation's CA), and ``/metrics`` behind a token."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.headers import CONTENT_SECURITY_POLICY, HSTS
from core.settings import StackInfo
from provisioning.certs import CertificateAuthority
from tests.support.api import bearer
from tests.support.board import log_in

REPO = Path(__file__).resolve().parent.parent
METRICS_TOKEN = "m" * 40

# Pages, scripts, styles, API answers good and bad, the schema: every kind of response.
PATHS = ("/", "/index.html", "/login.html", "/admin.html", "/evaluator.html", "/handover.html",
         "/alarmload.html", "/js/alarmload.js",
         "/js/board.js", "/css/board.css", "/healthz", "/readyz", "/openapi.json", "/docs",
         "/api/v1/alerts", "/api/v1/no-such-thing", "/nope.html", "/metrics")


def _assert_headers(response: httpx.Response, *, https: bool) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    headers = response.headers
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, where
    assert "frame-ancestors 'none'" in headers["content-security-policy"], where
    assert "script-src 'self'" in headers["content-security-policy"], where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where
    assert headers.get("x-frame-options") == "DENY", where
    if https:
        assert headers.get("strict-transport-security") == HSTS, where
    else:
        assert "strict-transport-security" not in headers, where


def test_every_page_and_api_answer_carries_the_security_headers(http) -> None:
    for path in PATHS:
        _assert_headers(http.get(path), https=False)
    _assert_headers(http.post("/api/v1/auth/token", data={"username": "x", "password": "y"}),
                    https=False)
    _assert_headers(http.head("/"), https=False)


def test_metrics_need_the_metrics_token_or_an_admin(api, http, make_user, headers_for,
                                                     site) -> None:
    refused = http.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "NATTERO_METRICS_TOKEN" in refused.json()["detail"]
    danish = http.get("/metrics", headers={"Accept-Language": "da"})
    assert danish.json()["detail"].startswith("/metrics kræver metrik-nøglen")
    assert http.get("/metrics", headers=bearer("not-a-token")).status_code == 401
    staff = headers_for(make_user("staff", site))
    assert http.get("/metrics", headers=staff).status_code == 401
    admin = http.get("/metrics", headers=headers_for(make_user("admin")))
    assert admin.status_code == 200 and "nattero_events_ingested_total" in admin.text
    # No metrics token configured: a guess of one is refused like any other string.
    assert http.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 401
    settings = api.app.state.settings
    api.app.state.settings = settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    try:
        scraper = http.get("/metrics", headers=bearer(METRICS_TOKEN))
        assert scraper.status_code == 200 and "nattero_alerts_raised_total" in scraper.text
        assert http.get("/metrics", headers=bearer(METRICS_TOKEN[:-1] + "x")).status_code == 401
    finally:
        api.app.state.settings = settings


@pytest.mark.pure
def test_a_short_metrics_token_is_refused_at_start() -> None:
    from core.settings import Settings

    with pytest.raises(ValueError, match="NATTERO_METRICS_TOKEN is shorter than 32"):
        Settings(metrics_token="short")


@pytest.mark.slow
def test_nattero_serve_with_a_certificate_answers_https_with_hsts(
        tmp_path: Path, migrated: StackInfo) -> None:
    from tests.support.api import free_port

    ca = CertificateAuthority.create(tmp_path / "ca", "Havnely")
    issued = ca.issue_server("api", ["localhost", "127.0.0.1"])
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "nattero", "serve", "--no-pipeline", "--port", str(port),
             "--ssl-certfile", str(issued.cert), "--ssl-keyfile", str(issued.key)],
            cwd=REPO, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90  # a loaded CI machine imports slowly
        trust = ssl.create_default_context(cafile=str(ca.ca_file))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust,
                          timeout=5) as client:
            while True:
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    board = client.get("/")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert board.status_code == 200
            _assert_headers(board, https=True)
            _assert_headers(client.get("/api/v1/alerts"), https=True)
        # Plain HTTP on the HTTPS port is not served.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=5).raise_for_status()
    finally:
        server.terminate()
        server.wait(20)


@pytest.mark.browser
def test_the_admin_page_works_under_the_policy(api_process, open_page, make_user) -> None:
    # open_page fails the test on any "Content Security Policy" console message; the night
    # board and the report frames are checked so by tests/test_board_*.py.
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), "/admin.html")
    page.wait_for_selector("#admin:not([hidden])", timeout=10_000)
    page.click("#tab-devices")
    policy = page.evaluate("""async () => (await fetch('/')).headers
                               .get('content-security-policy')""")
    assert policy == CONTENT_SECURITY_POLICY


@pytest.mark.browser
def test_an_injected_inline_script_does_not_run(api_process, browser) -> None:
    server = api_process()
    context = browser.new_context()
    try:
        page = context.new_page()
        blocked: list[str] = []
        page.on("console", lambda message: blocked.append(message.text))
        page.goto(f"{server.url}/login.html")
        page.evaluate("""() => { const s = document.createElement('script');
                                 s.textContent = 'window.injected = 1';
                                 document.body.appendChild(s); }""")
        assert page.evaluate("() => window.injected") is None
        assert any("Content Security Policy" in text for text in blocked), blocked
    finally:
        context.close()
