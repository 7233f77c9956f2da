"""The night board in real headless Chromium against the real API, store and broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from playwright.sync_api import Page, ViewportSize, expect

from core.events import DeviceKind, RoomKind
from core.settings import StackInfo, get_settings
from ingest.rule_settings import upsert_rule_setting
from tests.support.api import Account
from tests.support.board import PIPELINE_AVAILABLE, ApiProcess, cues, open_board
from tests.support.devices import DeviceClient, event_payload
from tests.support.store import unique


def alert_card(page: Page, alert_id: int | None = None, room: str | None = None):
    if alert_id is not None:
        return page.locator(f"#alert-list li[data-id='{alert_id}']")
    return page.locator(f"#alert-list li[data-room='{room}']")


@pytest.fixture
def night_site(migrated: StackInfo) -> str:
    """A site whose night window contains now (UTC), with a consenting flat, common room, exit."""
    import provisioning

    now = datetime.now(UTC)
    night = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=3)):%H:%M}"
    site_id = unique("nb")
    settings = get_settings()
    provisioning.add_site(settings, site_id, "Natsted", tz="UTC", night=night)
    provisioning.add_room(settings, site_id, "f1", RoomKind.FLAT, "Lejlighed 1")
    provisioning.record_basis(settings, site_id, "f1", consent=True)
    provisioning.add_room(settings, site_id, "f2", RoomKind.FLAT, "Lejlighed 2")
    provisioning.add_room(settings, site_id, "lounge", RoomKind.COMMON, "Dagligstue")
    provisioning.add_room(settings, site_id, "exit", RoomKind.EXIT, "Hoveddør")
    return site_id


def test_event_published_over_mqtt_appears_on_open_board_with_sound_cue(
        night_site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int],
        add_device: Callable[..., tuple[str, str]], stack: StackInfo,
        db: psycopg.Connection) -> None:
    # Building exits always call at this site (a dementia/autism site's hard safety limit).
    with db.transaction():
        upsert_rule_setting(db, night_site, None, "building_exit", None, 0, None, "test")
    server = api_process(night_site, pipeline=PIPELINE_AVAILABLE)
    page = open_board(open_page(), server, make_user("staff", night_site))
    page.click("#sound-enable")
    expect(page.locator("#sound-step")).to_be_hidden()
    expect(page.locator("#quiet")).to_be_visible()

    if PIPELINE_AVAILABLE:
        door = add_device(night_site, "door-f1", room="f1", kind=DeviceKind.DOOR)
        exit_door = add_device(night_site, "exit-1", room="exit", kind=DeviceKind.EXIT)
        publish(stack, night_site, door, "door-f1", "door.open")
        # An outing within its allowed time: a quiet situation, shown quietly, no sound.
        quiet = page.locator("#situation-list li[data-room='f1']")
        expect(quiet).to_be_visible(timeout=2000)
        expect(quiet.locator(".alert-what")).to_contain_text("Har forladt lejligheden")
        expect(page.locator("#situations h3")).to_have_text("Stille situationer")
        expect(page.locator(f".tiles[data-site='{night_site}'] li[data-room='f1']")
               ).to_have_attribute("data-state", "out", timeout=2000)
        assert cues(page) == []
        expect(page.locator("#quiet")).to_be_visible()  # no call: nobody has to go
        started = time.monotonic()
        publish(stack, night_site, exit_door, "exit-1", "door.open")  # out of the building
    else:
        started = time.monotonic()
        raise_alert(night_site, "f1", "left_flat", "normal")

    card = alert_card(page, room="f1")
    expect(card).to_be_visible(timeout=2000)
    assert time.monotonic() - started < 2.5
    expect(page.locator("#situation-list li[data-room='f1']")).to_have_count(0)
    expect(card.locator(".alert-room")).to_have_text("Lejlighed 1")
    expect(card.locator(".alert-what")).to_contain_text("Har forladt lejligheden")
    expect(card.locator(".act-ack")).to_have_text("Jeg tager den")
    expect(page.locator("#quiet")).to_be_hidden()
    page.wait_for_function("() => window.__natteroCues.length > 0", timeout=2000)
    cue = cues(page)[-1]
    assert cue["room"] == "f1" and cue["rule"] == "left_flat"
    assert cue["kind"] == ("escalated" if PIPELINE_AVAILABLE else "new")
    assert cue["audible"] is True, "sound was enabled, so the cue must have been played"
    # The floor view marks the room as the one needing attention.
    expect(page.locator(f".tiles[data-site='{night_site}'] li[data-room='f1']")).to_have_attribute(
        "data-state", "alert", timeout=2000)


def test_quiet_situation_is_listed_quietly_and_never_sounded(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int]) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    page.click("#sound-enable")
    quiet_id = raise_alert(site, "lounge", "common_motion", "normal", call=False)
    expect(page.locator(f"#situation-list li[data-id='{quiet_id}']")).to_be_visible(timeout=2000)
    expect(alert_card(page, quiet_id)).to_have_count(0)
    call_id = raise_alert(site, "f1", "left_flat", "normal")
    expect(alert_card(page, call_id)).to_be_visible(timeout=2000)
    assert [c["alert"] for c in cues(page)] == [call_id]


def publish(stack: StackInfo, site: str, creds: tuple[str, str], device: str, kind: str) -> None:
    client = DeviceClient(stack.mqtt_host, stack.mqtt_port, *creds)
    try:
        client.publish_many([(f"nattero/v1/{site}/{device}/events", event_payload(kind))])
    finally:
        client.close()


def test_acknowledge_on_one_board_shows_on_the_other_within_two_seconds(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int],
        db: psycopg.Connection) -> None:
    db.execute("UPDATE sites SET resolve_notes = true WHERE id = %s", (site,))
    server = api_process()
    anna, bo = make_user("staff", site), make_user("staff", site)
    board_a = open_board(open_page(), server, anna)
    board_b = open_board(open_page(), server, bo)
    alert_id = raise_alert(site, "lounge", "common_motion", "normal")
    expect(alert_card(board_a, alert_id)).to_be_visible(timeout=2000)
    expect(alert_card(board_b, alert_id)).to_be_visible(timeout=2000)

    alert_card(board_a, alert_id).locator(".act-ack").click()
    expect(alert_card(board_b, alert_id).locator(".alert-state")).to_contain_text(
        f"Taget af {anna.username}", timeout=2000)
    expect(alert_card(board_b, alert_id).locator(".act-ack")).to_be_hidden()

    # Bo resolves it with an outcome and a note (the site allows notes, with a warning
    # against names); Anna sees who and what within 2 s.
    alert_card(board_b, alert_id).locator(".act-resolve").click()
    expect(board_b.locator("#resolve-note-warning")).to_contain_text("Skriv aldrig navne")
    board_b.fill("#resolve-note", "beboer ville have te")
    board_b.click("[data-outcome='no_action_needed']")
    expect(board_b.locator("#resolve-dialog")).to_be_hidden()
    resolved = board_a.locator(f"#recent-list li[data-id='{alert_id}']")
    expect(resolved.locator(".alert-state")).to_contain_text(f"Afsluttet af {bo.username}",
                                                             timeout=2000)
    expect(resolved.locator(".alert-state")).to_contain_text("Ingen handling nødvendig")
    expect(alert_card(board_a, alert_id)).to_have_count(0)


def test_resolve_dialog_offers_outcomes_only_where_the_site_allows_no_notes(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int],
        db: psycopg.Connection) -> None:
    server = api_process()
    board = open_board(open_page(), server, make_user("staff", site))
    alert_id = raise_alert(site, "f1", "left_flat", "normal")
    alert_card(board, alert_id).locator(".act-resolve").click()
    expect(board.locator("#resolve-dialog")).to_be_visible()
    expect(board.locator("#resolve-note")).to_be_hidden()
    board.click("[data-outcome='help_given']")
    expect(board.locator("#resolve-dialog")).to_be_hidden()
    assert db.execute("SELECT status, outcome, outcome_note FROM alerts WHERE id = %s",
                      (alert_id,)).fetchone() == ("resolved", "help_given", None)


def test_board_replays_alert_raised_while_api_was_down(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int]) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    banner = page.locator("#health-connection")
    expect(banner).to_be_hidden()

    server.kill()
    expect(banner).to_be_visible(timeout=5000)
    expect(banner).to_contain_text("afbrudt")
    expect(page.locator("#quiet")).to_be_hidden()  # a dead connection is never "all quiet"
    alert_id = raise_alert(site, "exit", "building_exit", "high")
    server.start()

    card = alert_card(page, alert_id)
    expect(card).to_be_visible(timeout=15_000)  # backoff tops out at 5 s
    expect(card).to_have_class("alert sev-high status-open")
    expect(banner).to_be_hidden()
    assert any(c["alert"] == alert_id and c["kind"] == "new" for c in cues(page))


def test_no_data_banner_appears_when_site_devices_stop(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], add_device: Callable[..., tuple[str, str]],
        run_gateway: Callable[..., object], stack: StackInfo) -> None:
    heartbeat_s = 10  # the shortest a device may have; silent after 2x
    creds = {name: add_device(site, name, room=room, kind=kind, heartbeat_s=heartbeat_s)
             for name, room, kind in (("door-f1", "f1", DeviceKind.DOOR),
                                      ("pir-lounge", "lounge", DeviceKind.MOTION))}
    run_gateway(site)
    devices = {name: DeviceClient(stack.mqtt_host, stack.mqtt_port, *account)
               for name, account in creds.items()}
    running = threading.Event()
    running.set()

    def beat() -> None:  # the simulated site: every device sends a heartbeat each second
        while running.is_set():
            for name, device in devices.items():
                device.publish(f"nattero/v1/{site}/{name}/events", event_payload("heartbeat"))
            time.sleep(1)

    beating = threading.Thread(target=beat, name="heartbeats", daemon=True)
    beating.start()
    try:
        page = open_board(open_page(), api_process(), make_user("staff", site),
                          query="health_every=1")
        no_data = page.locator("#health-sites [data-kind='no-data']")
        ok_line = page.locator("#health-ok-text")
        expect(ok_line).to_contain_text("sidste data", timeout=5000)
        expect(no_data).to_have_count(0)

        running.clear()
        beating.join(5)
        stopped = time.monotonic()
        # Within the threshold (2x heartbeat), plus one health poll and rendering.
        expect(no_data).to_be_visible(timeout=(2 * heartbeat_s + 3) * 1000)
        assert time.monotonic() - stopped <= 2 * heartbeat_s + 3
        expect(no_data).to_contain_text("Ingen data fra Testhjemmet")
        expect(page.locator("#quiet")).to_be_visible()  # no alerts, yet the failure is loud
        assert "system-degraded" in (page.locator("body").get_attribute("class") or "")
    finally:
        running.clear()
        for device in devices.values():
            device.close()


def test_staff_of_one_site_never_sees_another_sites_rooms_or_alerts(
        migrated: StackInfo, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int]) -> None:
    import provisioning

    settings = get_settings()
    site_a, site_b = unique("sa"), unique("sb")
    provisioning.add_site(settings, site_a, "Solsikken")
    provisioning.add_site(settings, site_b, "Bellis")
    provisioning.add_room(settings, site_a, "a1", RoomKind.FLAT, "Lejlighed A1")
    provisioning.record_basis(settings, site_a, "a1", consent=True)
    provisioning.add_room(settings, site_b, "b1", RoomKind.FLAT, "Værelse B-syd")
    provisioning.record_basis(settings, site_b, "b1", consent=True)
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site_a))
    visible = raise_alert(site_a, "a1", "left_flat")
    hidden = raise_alert(site_b, "b1", "left_flat")
    expect(alert_card(page, visible)).to_be_visible(timeout=2000)
    expect(page.locator(f".tiles[data-site='{site_a}'] li[data-room='a1']")).to_be_visible()
    page.wait_for_timeout(1000)  # time enough for a wrongly delivered change to show up
    html = page.content()
    assert "Værelse B-syd" not in html and site_b not in html and "Bellis" not in html
    expect(alert_card(page, hidden)).to_have_count(0)
    assert page.evaluate("[...window.__natteroBoard.state.alerts.keys()]") == [visible]


def test_acknowledged_card_stays_in_place_so_the_next_tap_resolves_the_same_alert(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int]) -> None:
    """A scripted night used to resolve the wrong alert: the card taken with "Jeg tager den"
    sank below the open ones, and the next tap at the same place hit another alarm."""
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    older = raise_alert(site, "f1", "left_flat", "normal")
    newer = raise_alert(site, "lounge", "common_motion", "normal")
    expect(page.locator("#alert-list li")).to_have_count(2, timeout=2000)
    first = page.locator("#alert-list li").first
    expect(first).to_have_attribute("data-id", str(newer))  # the newest open alert on top

    first.locator(".act-ack").click()
    expect(alert_card(page, newer).locator(".act-ack")).to_be_hidden(timeout=2000)
    page.wait_for_timeout(300)  # a render after the change arrived on the stream, too
    expect(page.locator("#alert-list li").first).to_have_attribute("data-id", str(newer))
    page.locator("#alert-list li").first.locator(".act-resolve").click()
    expect(page.locator("#resolve-alert")).to_contain_text("Dagligstue")

    # No text field has the focus (a tablet would open its keyboard over the outcomes).
    focused = page.evaluate("document.activeElement && document.activeElement.id")
    assert focused != "resolve-note"
    assert page.evaluate("document.activeElement.tagName") not in ("TEXTAREA", "INPUT")
    page.click("[data-outcome='no_action_needed']")
    expect(alert_card(page, newer)).to_have_count(0, timeout=2000)
    expect(alert_card(page, older)).to_be_visible()


def test_a_new_alert_is_sorted_in_but_not_under_a_finger_on_the_list(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int]) -> None:
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    first = raise_alert(site, "f1", "left_flat", "normal")
    expect(alert_card(page, first)).to_be_visible(timeout=2000)
    # A finger resting on the list: pointer events every 200 ms until lifted.
    page.evaluate("""() => {
        const touch = () => document.getElementById('alert-list')
            .dispatchEvent(new PointerEvent('pointerdown'));
        touch();
        window.__finger = setInterval(touch, 200);
    }""")
    urgent = raise_alert(site, "exit", "building_exit", "high")
    expect(alert_card(page, urgent)).to_be_visible(timeout=2000)
    page.wait_for_timeout(500)
    # While the finger is there the card under it is still the one it was ...
    expect(page.locator("#alert-list li").first).to_have_attribute("data-id", str(first))
    page.evaluate("clearInterval(window.__finger)")
    # ... and once the finger has gone the urgent alert goes to the top.
    expect(page.locator("#alert-list li").first).to_have_attribute("data-id", str(urgent),
                                                                   timeout=4000)


def test_on_a_phone_the_first_cards_buttons_are_above_the_fold(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int]) -> None:
    from tests.support.board import PHONE, SCREENSHOTS

    server = api_process()
    page = open_board(open_page(PHONE), server, make_user("staff", site))
    alert_id = raise_alert(site, "exit", "building_exit", "high")
    card = alert_card(page, alert_id)
    expect(card).to_be_visible(timeout=2000)
    for button in (card.locator(".act-ack"), card.locator(".act-resolve")):
        box = button.bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= PHONE["height"], (
            f"a button of the first card ends at {box['y'] + box['height']:.0f} px, below the "
            f"phone's {PHONE['height']} px")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "board-phone-first-card.png"))


def test_a_board_that_has_not_heard_the_server_sounds_its_fault_tone_until_it_hears_again(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    """A board on a desk that lost its server must not look (or sound) calm. Shortened
    timings (15 s of silence, then every 10 s) stand for the real 30 s and 1 min; the server
    pings every 10 s, so a live board is never silent that long."""
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site),
                      query="fault_after=15&fault_every=10")
    page.click("#sound-enable")
    page.locator("#mute").click()  # alerts muted: the fault tone sounds all the same
    page.wait_for_timeout(22_000)  # two pings' worth of a quiet but live night
    assert [c for c in cues(page) if c["kind"] == "fault"] == [], "a live board is calm"

    server.kill()
    killed = time.monotonic()
    page.wait_for_function(
        "() => window.__natteroCues.filter(c => c.kind === 'fault').length >= 1",
        timeout=25_000)
    first = time.monotonic() - killed
    assert first < 18, f"the fault tone came {first:.1f} s after the server died"
    fault = next(c for c in cues(page) if c["kind"] == "fault")
    assert fault["audible"] is True and fault["muted"] is False
    page.wait_for_function(
        "() => window.__natteroCues.filter(c => c.kind === 'fault').length >= 2",
        timeout=15_000)

    server.start()
    expect(page.locator("#health-connection")).to_be_hidden(timeout=15_000)
    heard = len([c for c in cues(page) if c["kind"] == "fault"])
    page.wait_for_timeout(12_000)
    assert len([c for c in cues(page) if c["kind"] == "fault"]) == heard


def test_the_board_has_two_columns_from_tablet_landscape_and_one_below(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int]) -> None:
    from tests.support.board import PHONE, SCREENSHOTS, TABLET

    server = api_process()
    staff = make_user("staff", site)
    raise_alert(site, "exit", "building_exit", "high")
    landscape: ViewportSize = {"width": 1024, "height": 768}
    for name, viewport, columns in (("landscape", landscape, 2), ("portrait", TABLET, 1),
                                    ("phone", PHONE, 1)):
        page = open_board(open_page(viewport), server, staff)
        alerts = page.locator("#alerts").bounding_box()
        floor = page.locator("#floor").bounding_box()
        assert alerts is not None and floor is not None
        side_by_side = floor["x"] >= alerts["x"] + alerts["width"] - 1 and \
            abs(floor["y"] - alerts["y"]) < 5
        assert side_by_side == (columns == 2), (name, alerts, floor)
        if not side_by_side:
            assert floor["y"] >= alerts["y"] + alerts["height"] - 1   # the alerts come first
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"board-{name}.png"))
