"""The night-board tests' world: the real API in a subprocess, real headless Chromium.

The API runs as its own process (``uvicorn`` on a free port) so a test can kill it hard
and start it again on the same port, as a crash would. Accounts and alerts come from
``tests.support.api`` (``make_user``, ``raise_alert``: the store's own change path, as the
rules engine uses) or from a real MQTT event through the pipeline, so the board sees
exactly what it would see in production.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from core.settings import StackInfo
from tests.support import REPO
from tests.support.api import Account, free_port

# Page assertions wait up to 10 s: CI shares two cores between the browser, the server,
# PostgreSQL and Mosquitto. Latency targets live in bench/, never in these waits.
expect.set_options(timeout=10_000)

SCREENSHOTS = REPO / "artifacts" / "screenshots"
AXE = REPO / "dashboard" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TABLET: ViewportSize = {"width": 768, "height": 1024}
PHONE: ViewportSize = {"width": 390, "height": 844}

PIPELINE_AVAILABLE = importlib.util.find_spec("nattero.pipeline") is not None

# Runs the app exactly as `create_app` builds it; the pipeline only when asked.
_SERVER = """
import sys, uvicorn
from api.app import create_app
from nattero.pipeline import start_pipeline
from core.settings import get_settings
app = create_app(get_settings(), companion=start_pipeline if sys.argv[2] == "1" else None)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level=sys.argv[3],
            ws_ping_interval=None)
"""


@dataclass
class ApiProcess:
    """The API (and, if asked, gateway + rules) as a child process; ``restart()`` kills it."""

    env: dict[str, str]
    pipeline: bool = False
    #: "info" logs every request and WebSocket line (uvicorn's access log): what the
    #: token-hygiene tests read.
    log_level: str = "warning"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(
        default_factory=lambda: REPO / "artifacts" / f"api-{uuid.uuid4().hex[:6]}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVER, str(self.port), "1" if self.pipeline else "0",
                 self.log_level],
                cwd=REPO, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}; "
                                   f"see {self.log}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the API did not answer /healthz within {timeout} s; see {self.log}")

    def kill(self) -> None:
        """As a crash: SIGKILL, no graceful close of WebSockets."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def api_process(migrated: StackInfo) -> Iterator[Callable[..., ApiProcess]]:
    """Start API processes; ``start(*sites, pipeline=True)`` also runs gateway+rules for
    exactly those sites (so tests side by side never consume each other's events)."""
    started: list[ApiProcess] = []

    def start(*sites: str, pipeline: bool = False, log_level: str = "warning") -> ApiProcess:
        env: dict[str, str] = {}
        if pipeline:
            env = {"NATTERO_GATEWAY_SITES": json.dumps(list(sites)),
                   "NATTERO_GATEWAY_CLIENT_ID": f"gw-board-{uuid.uuid4().hex[:8]}",
                   "NATTERO_GATEWAY_SESSION_EXPIRY_S": "600",
                   "NATTERO_GATEWAY_BRIDGES": "false"}
        server = ApiProcess(env=env, pipeline=pipeline, log_level=log_level)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Per module, not per session: two sync Playwright instances cannot be alive at once, and
# a module's teardown stops its own before the next module starts one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


# Tonight's automatic pre-shift check counts as shown (the board's own record of it, read
# through localStorage in dashboard/js/board.js); the button still opens it.
PRESHIFT_SHOWN = """(() => {
  const read = Storage.prototype.getItem;
  Storage.prototype.getItem = function (key) {
    if (typeof key === "string" && key.startsWith("nattero.preshift.")) return "shown";
    return read.call(this, key);
  };
})();"""


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """A fresh browser context per page (its own storage: a separate tablet)."""
    contexts: list[BrowserContext] = []
    script_errors: list[str] = []

    def open_(viewport: ViewportSize = TABLET, preshift: bool = False) -> Page:
        """``preshift``: let the board open its pre-shift check by itself in the first hour
        of a night (``checkNightStart``), as on a real tablet. Off by default: a test run
        between 22:00 and 23:00 in Copenhagen would otherwise find that dialog over the
        board it tests (as if tonight's check had been shown already)."""
        context = browser.new_context(viewport=viewport, locale="da-DK",
                                      timezone_id="Europe/Copenhagen")
        if not preshift:
            context.add_init_script(PRESHIFT_SHOWN)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        # The security headers' policy (api/headers.py) blocks what breaks it and says so
        # only on the console: a blocked script or style fails the test.
        page.on("console", lambda message: script_errors.append(message.text)
                if "Content Security Policy" in message.text else None)
        return page

    yield open_
    for context in contexts:
        context.close()
    if script_errors:
        pytest.fail(f"the page raised JavaScript errors: {script_errors}", pytrace=False)


def sign_in(page: Page, server: ApiProcess, account: Account, next_path: str = "/") -> None:
    """Through the real login page; the caller waits for where the user should land."""
    page.goto(f"{server.url}/login.html?next={next_path}")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("#login-submit")


def log_in(page: Page, server: ApiProcess, account: Account, next_path: str = "/") -> None:
    """Sign in through the real login page, as night staff would, and land on next_path."""
    sign_in(page, server, account, next_path)
    page.wait_for_url(f"{server.url}{next_path}")


def open_board(page: Page, server: ApiProcess, account: Account, query: str = "") -> Page:
    log_in(page, server, account)
    if query:
        page.goto(f"{server.url}/?{query}")
    # Live once the stream said hello: the "system running" line shows it.
    page.wait_for_selector("#health-ok.is-live", timeout=10_000)
    return page


def cues(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("window.__natteroCues || []")
    return found


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[Any]:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing; run `npm ci --prefix dashboard` (see the Makefile)")
    # Through the DevTools protocol, not a <script> tag: the pages' policy (api/headers.py)
    # blocks inline scripts, and a DevTools evaluation is not a page script.
    session = page.context.new_cdp_session(page)
    try:
        session.send("Runtime.evaluate", {"expression": AXE.read_text(), "returnByValue": False})
    finally:
        session.detach()
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', "
        "'wcag21aa', 'best-practice']})")
    return [v for v in result["violations"] if v["impact"] in impacts]


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
