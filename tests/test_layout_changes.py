"""An admin changes what exists: a site's name, time zone and night window, a room's label
(API, command line and the admin page in Chromium), each change audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import time

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, Route, expect

import provisioning
from core.events import RoomKind
from core.settings import StackInfo, get_settings
from tests.support.api import Account
from tests.support.board import ApiProcess, log_in
from tests.support.cli import nattero_cli
from tests.support.devices import DeviceClient
from tests.support.store import unique


def site_row(db: psycopg.Connection, site: str) -> tuple[str, str, time, time]:
    row = db.execute("SELECT name, tz, night_start, night_end FROM sites WHERE id = %s",
                     (site,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def test_an_admin_changes_a_sites_night_window_and_name_and_it_is_audited(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection) -> None:
    admin = headers_for(make_user("admin"))
    answer = http.patch(f"/api/v1/sites/{site}", json={"night": "21:30-06:45"}, headers=admin)
    assert answer.status_code == 200, answer.text
    assert site_row(db, site) == ("Testhjemmet", "Europe/Copenhagen", time(21, 30),
                                  time(6, 45))
    answer = http.patch(f"/api/v1/sites/{site}", json={"name": "Egely", "tz": "Atlantic/Faroe"},
                        headers=admin)
    assert answer.status_code == 200, answer.text
    assert site_row(db, site)[:2] == ("Egely", "Atlantic/Faroe")
    detail = db.execute("SELECT detail FROM audit_log WHERE site = %s AND action = "
                        "'site.change' ORDER BY id", (site,)).fetchall()
    assert [row[0] for row in detail] == [
        {"before": {"night": "22:00-07:00"}, "after": {"night": "21:30-06:45"}},
        {"before": {"name": "Testhjemmet", "tz": "Europe/Copenhagen"},
         "after": {"name": "Egely", "tz": "Atlantic/Faroe"}}]


def test_a_bad_change_is_refused_in_danish_and_changes_nothing(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection) -> None:
    admin = {**headers_for(make_user("admin")), "Accept-Language": "da"}
    bad_night = http.patch(f"/api/v1/sites/{site}", json={"night": "25:00-07:00"},
                           headers=admin)
    assert bad_night.status_code == 422
    assert bad_night.json()["detail"].startswith("natten '25:00-07:00' er ikke TT:MM-TT:MM")
    bad_zone = http.patch(f"/api/v1/sites/{site}", json={"tz": "Mars/Olympus"}, headers=admin)
    assert bad_zone.json()["detail"].startswith("tidszonen 'Mars/Olympus' kendes ikke")
    nothing = http.patch(f"/api/v1/sites/{site}", json={}, headers=admin)
    assert nothing.status_code == 422 and nothing.json()["detail"].startswith("angiv mindst")
    assert site_row(db, site) == ("Testhjemmet", "Europe/Copenhagen", time(22), time(7))
    assert http.patch("/api/v1/sites/no-such-site", json={"night": "22:00-07:00"},
                      headers=admin).status_code == 404
    staff = headers_for(make_user("staff", site))
    assert http.patch(f"/api/v1/sites/{site}", json={"night": "20:00-07:00"},
                      headers=staff).status_code == 403
    assert http.patch(f"/api/v1/sites/{site}/rooms/f1", json={"label": "x"},
                      headers=staff).status_code == 403


def test_a_room_gets_a_new_label_and_keeps_its_devices(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        add_device: Callable[..., object]) -> None:
    add_device(site, "door-f1", room="f1")
    admin = headers_for(make_user("admin"))
    answer = http.patch(f"/api/v1/sites/{site}/rooms/f1", json={"label": "Lejlighed 1A"},
                        headers=admin)
    assert answer.status_code == 200, answer.text
    rooms = {r["id"]: r for r in http.get(f"/api/v1/sites/{site}/rooms", headers=admin).json()}
    assert rooms["f1"]["label"] == "Lejlighed 1A"
    assert [d["id"] for d in rooms["f1"]["devices"]] == ["door-f1"]
    assert http.patch(f"/api/v1/sites/{site}/rooms/nowhere", json={"label": "x"},
                      headers=admin).status_code == 404


def test_the_command_line_changes_a_night_window_and_a_label(
        site: str, db: psycopg.Connection) -> None:
    changed = nattero_cli("site", "set", site, "--night", "23:00-06:00")
    assert changed.returncode == 0, changed.stderr
    assert "night 22:00-07:00 -> 23:00-06:00" in changed.stdout
    assert site_row(db, site)[2:] == (time(23), time(6))
    bad = nattero_cli("site", "set", site, "--night", "23-06")
    assert bad.returncode == 1 and bad.stderr.startswith("error: night window '23-06'")
    relabelled = nattero_cli("room", "label", site, "lounge", "Stuen")
    assert relabelled.returncode == 0, relabelled.stderr
    rooms = json.loads(nattero_cli("room", "list", site, "--json").stdout)
    assert {r["room"]: r["label"] for r in rooms}["lounge"] == "Stuen"


def test_admin_page_changes_the_night_window_and_a_room_label(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection) -> None:
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-sites")
    page.select_option("#site-edit-id", site)
    expect(page.locator("#site-edit-name")).to_have_value("Testhjemmet")
    expect(page.locator("#site-edit-night-start")).to_have_value("22:00")
    page.fill("#site-edit-night-start", "25:00")
    page.click("#site-edit-form [type=submit]")
    expect(page.locator("#site-edit-night-start-error")).to_have_text("Skriv tid som TT:MM.")
    page.fill("#site-edit-night-start", "21:00")
    page.fill("#site-edit-night-end", "06:30")
    page.click("#site-edit-form [type=submit]")
    expect(page.locator("#site-edit-form .form-ok")).to_have_text("Testhjemmet er gemt.")
    assert site_row(db, site)[2:] == (time(21), time(6, 30))
    expect(page.locator("#sites-body")).to_contain_text("21:00")

    page.click("#tab-rooms")
    page.select_option("#admin-site", site)
    page.once("dialog", lambda dialog: dialog.accept("Fællesstuen"))
    page.locator("#rooms-body tr[data-room='lounge'] [data-action='relabel']").click()
    expect(page.locator("#rooms-ok")).to_have_text("Rum lounge hedder nu Fællesstuen.")
    expect(page.locator("#rooms-body tr[data-room='lounge']")).to_contain_text("Fællesstuen")


def test_a_rotated_device_password_replaces_the_old_one_at_the_broker(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], stack: StackInfo,
        add_device: Callable[..., tuple[str, str]], db: psycopg.Connection) -> None:
    username, old = add_device(site, "door-f1", room="f1")
    admin = headers_for(make_user("admin"))
    answer = http.post(f"/api/v1/sites/{site}/devices/door-f1/rotate", headers=admin)
    assert answer.status_code == 200, answer.text
    new = answer.json()
    assert new["username"] == username and new["password"] != old
    DeviceClient(stack.mqtt_host, stack.mqtt_port, username, new["password"]).close()
    with pytest.raises(ConnectionRefusedError):
        DeviceClient(stack.mqtt_host, stack.mqtt_port, username, old)
    assert db.execute("SELECT count(*) FROM audit_log WHERE site = %s AND action = "
                      "'device.rotate'", (site,)).fetchone() == (1,)
    missing = http.post(f"/api/v1/sites/{site}/devices/ghost/rotate",
                        headers={**admin, "Accept-Language": "da"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"sensoren 'ghost' er ikke oprettet på stedet '{site}'"


def test_admin_page_gives_a_device_a_new_password_and_shows_it_once(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], add_device: Callable[..., tuple[str, str]],
        stack: StackInfo) -> None:
    username, old = add_device(site, "door-f1", room="f1")
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-devices")
    page.select_option("#admin-site", site)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#devices-body tr[data-device='door-f1'] [data-action='rotate']").click()
    expect(page.locator("#credentials")).to_be_visible()
    expect(page.locator("#cred-username")).to_have_text(username)
    password = page.locator("#cred-password").inner_text()
    assert password and password != old
    DeviceClient(stack.mqtt_host, stack.mqtt_port, username, password).close()


def test_a_room_added_by_mistake_is_deleted_and_one_with_devices_stays(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    provisioning.add_room(get_settings(), site, "f9", RoomKind.FLAT, "Lejlighed 9")
    provisioning.record_basis(get_settings(), site, "f9", consent=True)
    add_device(site, "door-f1", room="f1")
    admin = {**headers_for(make_user("admin")), "Accept-Language": "da"}
    assert http.delete(f"/api/v1/sites/{site}/rooms/f9", headers=admin).status_code == 200
    assert db.execute("SELECT count(*) FROM rooms WHERE site = %s AND id = 'f9'",
                      (site,)).fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM room_bases WHERE site = %s AND room = 'f9'",
                      (site,)).fetchone() == (0,)
    kept = http.delete(f"/api/v1/sites/{site}/rooms/f1", headers=admin)
    assert kept.status_code == 409
    assert kept.json()["detail"].startswith("rum 'f1' har haft sensorer eller alarmer")
    assert db.execute("SELECT count(*) FROM rooms WHERE site = %s AND id = 'f1'",
                      (site,)).fetchone() == (1,)
    assert http.delete(f"/api/v1/sites/{site}/rooms/f9", headers=admin).status_code == 404
    gone = nattero_cli("room", "delete", site, "lounge")
    assert gone.returncode == 0, gone.stderr
    stays = nattero_cli("room", "delete", site, "f1")
    assert stays.returncode == 1 and "nattero erase room" in stays.stderr


def test_admin_page_deletes_an_empty_room_only(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], add_device: Callable[..., tuple[str, str]],
        db: psycopg.Connection) -> None:
    add_device(site, "door-f1", room="f1")
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-rooms")
    page.select_option("#admin-site", site)
    expect(page.locator("#rooms-body tr[data-room='f1']")).to_have_count(1)
    expect(page.locator("#rooms-body tr[data-room='f1'] [data-action='delete']")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#rooms-body tr[data-room='exit'] [data-action='delete']").click()
    expect(page.locator("#rooms-ok")).to_have_text("Hoveddør er slettet.")
    expect(page.locator("#rooms-body tr[data-room='exit']")).to_have_count(0)
    assert db.execute("SELECT count(*) FROM rooms WHERE site = %s AND id = 'exit'",
                      (site,)).fetchone() == (0,)


def test_a_slow_answer_for_the_site_shown_first_does_not_replace_the_chosen_sites_rooms(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page]) -> None:
    settings = get_settings()
    first = unique("0")  # sorts before every test site: the page shows it first
    provisioning.add_site(settings, first, "Forhuset")
    provisioning.add_room(settings, first, "g7", RoomKind.FLAT, "Lejlighed 7")
    server = api_process()
    page = open_page()

    held: list[Route] = []

    def hold_other_sites(route: Route) -> None:
        if f"/sites/{site}/" in route.request.url:
            route.continue_()
        else:
            held.append(route)  # the first site's rooms answer only after the chosen site's

    page.route("**/api/v1/sites/*/rooms", hold_other_sites)
    with page.expect_request(lambda request: request.url.endswith("/rooms")
                             and f"/sites/{site}/" not in request.url):
        log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-rooms")
    page.select_option("#admin-site", site)
    expect(page.locator("#rooms-body tr[data-room='f1']")).to_have_count(1)
    assert len(held) == 1
    with page.expect_response(lambda response: response.url == held[0].request.url):
        held[0].continue_()
    page.wait_for_timeout(300)  # the page has read and drawn the late answer by now
    expect(page.locator("#rooms-body tr[data-room='f1']")).to_have_count(1)
    expect(page.locator("#rooms-body tr")).to_have_count(3)  # f1, lounge, exit: no g7
    assert page.locator("#admin-site").input_value() == site
