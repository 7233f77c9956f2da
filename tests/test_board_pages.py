"""Login, admin pages, screenshots and accessibility of the board, in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from playwright.sync_api import Page, expect

from core.events import DeviceKind
from tests.support.api import Account
from tests.support.board import (
    PHONE,
    TABLET,
    ApiProcess,
    axe_violations,
    log_in,
    open_board,
    screenshot,
)
from tests.support.store import unique


def describe(violations: list[dict[str, object]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} - "
                     f"{[n['target'] for n in v['nodes'][:3]]}"  # type: ignore[index]
                     for v in violations)


def test_wrong_password_keeps_username_and_says_what_is_wrong(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    username = make_user("staff", site).username
    page = open_page()
    page.goto(f"{server.url}/")
    page.wait_for_url(f"{server.url}/login.html**")  # no token: the board sends you to log in
    page.fill("#username", username)
    page.fill("#password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("Forkert brugernavn eller adgangskode.")
    expect(page.locator("#username")).to_have_value(username)
    page.click("#lang")
    expect(page.locator("#login-submit")).to_have_text("Sign in")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_board_and_login_have_no_serious_accessibility_violations_and_are_screenshotted(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], raise_alert: Callable[..., int],
        add_device: Callable[..., tuple[str, str]], db: psycopg.Connection) -> None:
    add_device(site, "door-f1", room="f1", kind=DeviceKind.DOOR)
    add_device(site, "pir-lounge", room="lounge", kind=DeviceKind.MOTION)
    db.execute("UPDATE devices SET presence = 'offline' WHERE site = %s AND id = 'pir-lounge'",
               (site,))
    server = api_process()
    login = open_page()
    login.goto(f"{server.url}/login.html")
    violations = axe_violations(login)
    assert not violations, describe(violations)

    staff = make_user("staff", site)
    high = raise_alert(site, "exit", "building_exit", "high")
    normal = raise_alert(site, "f1", "left_flat", "normal")
    for name, viewport in (("board-tablet", TABLET), ("board-phone", PHONE)):
        page = open_board(open_page(viewport), server, staff)
        expect(page.locator(f"#alert-list li[data-id='{high}']")).to_be_visible()
        # Most severe first.
        assert page.locator("#alert-list li").first.get_attribute("data-id") == str(high)
        expect(page.locator("#health-sites [data-kind='offline']")).to_contain_text("Dagligstue")
        expect(page.locator("li[data-room='lounge']")).to_have_attribute("data-state", "offline")
        page.wait_for_timeout(300)
        screenshot(page, name)
        # Touch targets: every action button is at least 44 px tall.
        for box in page.locator("#alert-list button:visible").evaluate_all(
                "els => els.map(e => e.getBoundingClientRect().height)"):
            assert box >= 44
        # No horizontal scrolling on the phone.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        violations = axe_violations(page)
        assert not violations, f"{name}:\n{describe(violations)}"

    # The acknowledged state and the resolve dialog are part of the board too.
    page.locator(f"#alert-list li[data-id='{normal}'] .act-ack").click()
    state = page.locator(f"#alert-list li[data-id='{normal}'] .alert-state")
    expect(state).to_contain_text(staff.username)
    page.locator(f"#alert-list li[data-id='{high}'] .act-resolve").click()
    expect(page.locator("#resolve-dialog")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, f"resolve dialog:\n{describe(violations)}"
    screenshot(page, "board-phone-resolve")


def test_the_preshift_check_opens_by_itself_once_in_the_first_hour_of_the_night(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    # The site's night began ten minutes ago, whenever the test runs.
    db.execute("UPDATE sites SET night_start = (now() AT TIME ZONE tz - interval '10 min')"
               "::time, night_end = (now() AT TIME ZONE tz + interval '8 hours')::time "
               "WHERE id = %s", (site,))
    server = api_process()
    nurse = make_user("staff", site)
    page = open_board(open_page(preshift=True), server, nurse)
    dialog = page.locator("#preshift-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Vagtstart-tjek")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.reload()  # tonight's check was shown on this tablet: not again
    page.wait_for_selector("#health-ok.is-live", timeout=10_000)
    page.wait_for_timeout(1000)
    expect(dialog).to_be_hidden()
    # An hour into the night, a board opened for the first time does not open it.
    db.execute("UPDATE sites SET night_start = (now() AT TIME ZONE tz - interval '61 min')"
               "::time WHERE id = %s", (site,))
    later = open_board(open_page(preshift=True), server, nurse)
    later.wait_for_timeout(1000)
    expect(later.locator("#preshift-dialog")).to_be_hidden()


def test_preshift_check_lists_uncovered_rooms(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], add_device: Callable[..., tuple[str, str]],
        db: psycopg.Connection) -> None:
    import provisioning
    from core.settings import get_settings

    provisioning.add_room(get_settings(), site, "f2", "flat", "Lejlighed 2")  # type: ignore[arg-type]
    add_device(site, "door-f1", room="f1", kind=DeviceKind.DOOR)
    db.execute("UPDATE devices SET battery = 9, last_event_at = now() WHERE site = %s", (site,))
    # The door's clock is 90 s fast (accepted: within the 2-minute skew).
    db.execute("INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
               "VALUES (%s, 'door-f1', 'c1', now() + interval '90 s', 'f1', 'heartbeat', now())",
               (site,))
    # Its door reported open three hours ago, and never closed (a lost message).
    db.execute("INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
               "VALUES (%s, 'door-f1', 'o1', now() - interval '3 h', 'f1', 'door.open', "
               "now() - interval '3 h')", (site,))
    server = api_process()
    page = open_board(open_page(), server, make_user("staff", site))
    page.click("#preshift-open")
    body = page.locator("#preshift-body")
    expect(body.locator("[data-kind='low-battery']")).to_contain_text("Lejlighed 1")
    expect(body.locator("[data-kind='low-battery']")).to_contain_text("Batteri 9 %")
    expect(body.locator("[data-kind='clock']")).to_contain_text("Lejlighed 1")
    expect(body.locator("[data-kind='clock']")).to_contain_text("Uret går 90 s for hurtigt")
    expect(body.locator("[data-kind='stuck']")).to_contain_text("Lejlighed 1")
    expect(body.locator("[data-kind='stuck']")).to_contain_text("Døren har stået åben siden")
    expect(body.locator("[data-kind='not-monitored']")).to_contain_text("Lejlighed 2")
    expect(page.locator("li[data-room='f2']")).to_have_attribute("data-state", "not_monitored")
    expect(page.locator("li[data-room='f2'] .tile-state")).to_have_text("Ikke overvåget")


def test_admin_adds_device_sees_credentials_once_and_form_errors_keep_input(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], add_device: Callable[..., tuple[str, str]]) -> None:
    add_device(site, "door-f1", room="f1", kind=DeviceKind.DOOR)
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.select_option("#admin-site", site)
    expect(page.locator("#devices-body tr[data-device='door-f1']")).to_be_visible()

    # Client-side: a bad id is refused before anything is sent, and what was typed stays.
    page.fill("#device-id", "Bad Id!")
    page.click("#device-form [type=submit]")
    expect(page.locator("#device-id-error")).to_contain_text("små bogstaver")
    expect(page.locator("#device-id")).to_have_value("Bad Id!")

    # Server-side: a duplicate is refused with the server's reason, input kept.
    page.fill("#device-id", "door-f1")
    page.select_option("#device-room", "f1")
    page.click("#device-form [type=submit]")
    expect(page.locator("#device-form .form-error")).to_be_visible()
    expect(page.locator("#device-id")).to_have_value("door-f1")

    # A staff-room door (kind staff: the protocol's staff presence, issue 13 §3).
    device = unique("staff")
    page.fill("#device-id", device)
    page.select_option("#device-room", "lounge")
    page.select_option("#device-kind", "staff")
    page.click("#device-form [type=submit]")
    expect(page.locator("#credentials")).to_be_visible()
    expect(page.locator("#cred-password")).not_to_be_empty()
    expect(page.locator("#cred-client-id")).to_have_text(page.locator("#cred-username")
                                                         .inner_text())
    expect(page.locator(f"#devices-body tr[data-device='{device}']")).to_contain_text(
        "Personale")
    page.wait_for_timeout(200)
    screenshot(page, "admin-devices")
    violations = axe_violations(page)
    assert not violations, describe(violations)

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#devices-body tr[data-device='{device}'] [data-action='revoke']").click()
    expect(page.locator(f"#devices-body tr[data-device='{device}']")).to_have_count(0)


def test_staff_cannot_use_admin_page(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("staff", site), next_path="/admin.html")
    expect(page.locator("#forbidden")).to_be_visible()
    expect(page.locator("#admin")).to_be_hidden()


@pytest.mark.parametrize("viewport", [TABLET, PHONE], ids=["tablet", "phone"])
def test_board_is_keyboard_usable(
        viewport: dict[str, int], site: str, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page],
        raise_alert: Callable[..., int]) -> None:
    server = api_process()
    staff = make_user("staff", site)
    page = open_board(open_page(viewport), server, staff)
    alert_id = raise_alert(site, "f1", "left_flat")
    ack = page.locator(f"#alert-list li[data-id='{alert_id}'] .act-ack")
    expect(ack).to_be_visible()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('act-ack')"):
            break
    else:
        pytest.fail("the acknowledge button cannot be reached with Tab")
    page.keyboard.press("Enter")
    state = page.locator(f"#alert-list li[data-id='{alert_id}'] .alert-state")
    expect(state).to_contain_text(staff.username)
