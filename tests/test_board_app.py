"""The board as an installed app, in real headless Chromium against the real API: manifest
and service worker (static shell only, never a stale API answer), Screen Wake Lock taken
again when the board is shown, and the sound choice remembered across reloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from ingest.push import record_silence
from tests.support.api import Account
from tests.support.board import (
    PRESHIFT_SHOWN,
    TABLET,
    ApiProcess,
    cues,
    open_board,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# A tablet's Chromium starts audio only after a tap on the page; headless Chromium plays
# without one whatever --autoplay-policy says (checked: an AudioContext made at load is
# "running" with navigator.userActivation.hasBeenActive false). This restores the tablet's
# rule from the browser's own record of taps, so the remembered-choice prompt can be seen.
TABLET_AUTOPLAY = """(() => {
  const Real = window.AudioContext;
  window.AudioContext = class extends Real {
    get state() { return navigator.userActivation.hasBeenActive ? super.state : "suspended"; }
  };
})();"""


def pwa(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        "() => Object.fromEntries(Object.entries(window.__natteroPwa)"
        ".filter(([, v]) => typeof v !== 'function'))")
    return found


def test_board_is_installable_with_a_danish_manifest_and_a_controlling_service_worker(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    href = page.locator("link[rel=manifest]").get_attribute("href")
    assert href == "/manifest.webmanifest"
    manifest = page.evaluate(
        "async (href) => { const r = await fetch(href); "
        "return {type: r.headers.get('content-type'), body: await r.json()}; }", href)
    assert manifest["type"].startswith("application/manifest+json")
    body = manifest["body"]
    assert body["lang"] == "da" and body["display"] == "standalone"
    assert body["start_url"] == "/" and body["name"].startswith("Nattero")
    sizes = {icon["sizes"] for icon in body["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in body["icons"]:
        status = page.evaluate("async (src) => (await fetch(src)).status", icon["src"])
        assert status == 200, icon["src"]
    # The service worker takes the page over (clients.claim), so the board works as an app.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=10_000)
    assert pwa(page)["serviceWorker"] == "registered"


def test_service_worker_caches_the_shell_but_never_serves_an_api_answer(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=10_000)
    # Through the worker, with the token: the answer is live...
    sites = page.evaluate(
        "async () => (await fetch('/api/v1/sites', {headers: {Authorization: "
        "'Bearer ' + localStorage.getItem('nattero.token')}})).status")
    assert sites == 200
    cached: list[str] = page.evaluate(
        "async () => { const out = []; for (const name of await caches.keys()) {"
        " const cache = await caches.open(name);"
        " for (const r of await cache.keys()) out.push(new URL(r.url).pathname); }"
        " return out; }")
    assert "/" in cached and "/js/board.js" in cached
    assert not [path for path in cached if path.startswith("/api/")], cached
    # ...and with the server gone an API request fails rather than answering from a cache,
    # while the board's shell still opens and says it cannot reach the server.
    server.kill()
    failed = page.evaluate(
        "async () => { try { await fetch('/api/v1/sites'); return 'answered'; }"
        " catch { return 'failed'; } }")
    assert failed == "failed"
    page.reload()
    expect(page.locator("#health-connection")).to_be_visible(timeout=15_000)
    expect(page.locator("h1.brand")).to_contain_text("Nattavle")


def test_wake_lock_is_held_and_taken_again_when_the_board_is_shown_again(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    page.wait_for_function("() => window.__natteroPwa.wakeLock === 'held'", timeout=5000)
    assert pwa(page)["wakeLockAcquired"] == 1
    # The browser drops the lock whenever the page is hidden; on showing it again the
    # board must take it again, or the tablet's screen goes dark mid-shift.
    page.evaluate("window.__natteroPwa.releaseWakeLock()")
    page.wait_for_function("() => window.__natteroPwa.wakeLock === 'released'", timeout=5000)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_function("() => window.__natteroPwa.wakeLock === 'held'", timeout=5000)
    assert pwa(page)["wakeLockAcquired"] == 2


def test_sound_choice_is_remembered_and_a_reload_asks_for_one_tap_in_danish(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int], browser: Browser,
        request: pytest.FixtureRequest) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    expect(page.locator("#sound-enable")).to_have_text("Slå lyd til")
    page.click("#sound-enable")
    expect(page.locator("#sound-step")).to_be_hidden()
    # The tablet's browser restarted: the same device's storage, nobody has tapped it yet.
    stored = page.context.storage_state()
    page.context.close()
    restarted = browser.new_context(storage_state=stored, viewport=TABLET, locale="da-DK",
                                    timezone_id="Europe/Copenhagen")
    request.addfinalizer(restarted.close)
    restarted.add_init_script(TABLET_AUTOPLAY)
    restarted.add_init_script(PRESHIFT_SHOWN)  # as every test's own context (open_page)
    page = restarted.new_page()
    page.goto(f"{server.url}/")
    page.wait_for_selector("#health-ok.is-live", timeout=10_000)
    # The choice is kept, but this browser starts audio only after a tap: a clear prompt,
    # not the first-time "Slå lyd til" (which would mean the choice was forgotten).
    step = page.locator("#sound-step")
    expect(step).to_be_visible()
    expect(step).to_have_class("sound-step sound-waiting")
    expect(page.locator("#sound-enable")).to_have_text("Tryk her for at høre alarmerne")
    expect(page.locator("#sound-why")).to_contain_text("Tryk hvor som helst")
    # Any tap on the board starts the sound, not only the button.
    page.locator("#alerts-title").click()
    expect(step).to_be_hidden()
    assert page.evaluate("localStorage.getItem('nattero.sound')") == "on"
    alert = raise_alert(site, "f1", "left_flat", "normal")
    page.wait_for_function(f"() => window.__natteroCues.some((c) => c.alert === {alert})",
                           timeout=5000)
    assert [c["audible"] for c in cues(page) if c["alert"] == alert] == [True]


def test_board_shows_when_its_site_had_no_board_connected_at_night(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    # What the server's watch records (tests/test_push.py drives the watch itself). The
    # site's night spans now: outside its night, the watch of any API server of this test
    # session (one checks every 30 s) rightly ends the silence before the board reads it.
    since = datetime.now(UTC) - timedelta(minutes=20)
    with db.transaction():
        db.execute("UPDATE sites SET night_start = (now() AT TIME ZONE tz - interval '3 hours')"
                   "::time, night_end = (now() AT TIME ZONE tz + interval '3 hours')::time "
                   "WHERE id = %s", (site,))
        assert record_silence(db, site, since, {"minutes": 5})
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    banner = page.locator(f"#health-sites .banner[data-kind='no-board'][data-site='{site}']")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Ingen nattavle har været forbundet på Testhjemmet siden")


def test_service_worker_shows_a_pushed_call_as_a_notification_with_room_and_rule(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    page.context.grant_permissions(["notifications"], origin=server.url)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=10_000)
    # Chromium's own push delivery (DevTools protocol): the payload as api/push.py sends it,
    # after the push service and the browser decrypted it (tests/test_push.py covers that).
    cdp = page.context.new_cdp_session(page)
    registrations: list[str] = []
    errors: list[str] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(r["registrationId"] for r in event["registrations"]
                                              if r["scopeURL"] == f"{server.url}/"
                                              and not r.get("isDeleted")))
    cdp.on("ServiceWorker.workerErrorReported",
           lambda event: errors.append(event["errorMessage"]["errorMessage"]))
    cdp.send("ServiceWorker.enable")
    page.wait_for_timeout(500)
    assert registrations, "the board's service worker is not registered"
    message = {"title": "Alarm: Lejlighed 1", "body": "Har forladt lejligheden på Testhjemmet",
               "tag": "alert-1", "site": site, "alert": 1, "room": "f1", "rule": "left_flat"}
    shown: list[dict[str, Any]] = []
    # A busy CI machine once showed nothing for 15 s after one DevTools delivery, with no
    # error from the worker: the delivery, not the worker, is retried (5 s, up to 3 times).
    # The notifications share a tag, so a second delivery replaces the first, never adds one.
    for _ in range(3):
        cdp.send("ServiceWorker.deliverPushMessage",
                 {"origin": server.url, "registrationId": registrations[-1],
                  "data": json.dumps(message, ensure_ascii=False)})
        for _ in range(50):
            shown = page.evaluate(
                "async () => (await (await navigator.serviceWorker.ready).getNotifications())"
                ".map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}))")
            if shown:
                break
            page.wait_for_timeout(100)
        if shown:
            break
    assert not errors, errors
    assert shown == [{"title": "Alarm: Lejlighed 1",
                      "body": "Har forladt lejligheden på Testhjemmet", "tag": "alert-1",
                      "data": message}]
