"""An admin moves a device to another room of its site (API, command line, the admin page in
Chromium), audited; the rules then count its new events in the new room, and never its
events from before the move, live or in the replay on start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import psycopg
from playwright.sync_api import Page, expect

import provisioning
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.settings import StackInfo, get_settings
from ingest.sites import move_device
from ingest.writer import Batch, EventWriter
from rules.runtime import RulesRuntime
from tests.support.api import Account
from tests.support.board import ApiProcess, log_in
from tests.support.cli import nattero_cli

NIGHT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 02:00 in Copenhagen


def device_room(db: psycopg.Connection, site: str, device: str) -> str:
    row = db.execute("SELECT room FROM devices WHERE site = %s AND id = %s",
                     (site, device)).fetchone()
    assert row is not None
    return str(row[0])


def add_flat(site: str, room: str) -> None:
    provisioning.add_room(get_settings(), site, room, RoomKind.FLAT, f"Lejlighed {room}")
    provisioning.record_basis(get_settings(), site, room, consent=True)


def add_exit(site: str, room: str) -> None:
    provisioning.add_room(get_settings(), site, room, RoomKind.EXIT, "Bagdør")


def test_an_admin_moves_a_device_to_another_room_and_it_is_audited(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    add_flat(site, "f2")
    add_device(site, "door-a", room="f1")
    admin = headers_for(make_user("admin"))
    answer = http.patch(f"/api/v1/sites/{site}/devices/door-a", json={"room": "f2"},
                        headers=admin)
    assert answer.status_code == 200, answer.text
    assert device_room(db, site, "door-a") == "f2"
    rooms = {r["id"]: r for r in http.get(f"/api/v1/sites/{site}/rooms", headers=admin).json()}
    assert [d["id"] for d in rooms["f2"]["devices"]] == ["door-a"]
    assert rooms["f1"]["devices"] == []
    assert db.execute("SELECT actor, target, detail FROM audit_log WHERE site = %s AND "
                      "action = 'device.move'", (site,)).fetchall() == [
        (admin_name(db, site), "door-a", {"before": "f1", "after": "f2"})]


def admin_name(db: psycopg.Connection, site: str) -> str:
    row = db.execute("SELECT actor FROM audit_log WHERE site = %s AND action = 'device.move' "
                     "ORDER BY id DESC LIMIT 1", (site,)).fetchone()
    assert row is not None and not str(row[0]).startswith("cli:")
    return str(row[0])


def test_a_move_to_another_sites_room_or_by_a_non_admin_is_refused_and_changes_nothing(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    other = f"{site}-b"
    provisioning.add_site(get_settings(), other, "Andet hjem")
    add_flat(other, "f7")
    add_device(site, "door-a", room="f1")
    admin = {**headers_for(make_user("admin")), "Accept-Language": "da"}
    elsewhere = http.patch(f"/api/v1/sites/{site}/devices/door-a", json={"room": "f7"},
                           headers=admin)
    assert elsewhere.status_code == 404
    assert elsewhere.json()["detail"] == f"rummet 'f7' findes ikke på stedet '{site}'"
    # The other site's path does not reach this site's device either.
    assert http.patch(f"/api/v1/sites/{other}/devices/door-a", json={"room": "f7"},
                      headers=admin).status_code == 404
    same = http.patch(f"/api/v1/sites/{site}/devices/door-a", json={"room": "f1"},
                      headers=admin)
    assert same.status_code == 409
    assert same.json()["detail"] == "sensoren 'door-a' sidder allerede i rummet 'f1'"
    ghost = http.patch(f"/api/v1/sites/{site}/devices/ghost", json={"room": "f1"},
                       headers=admin)
    assert ghost.json()["detail"] == f"sensoren 'ghost' er ikke oprettet på stedet '{site}'"
    for role in ("staff", "evaluator"):
        caller = headers_for(make_user(role, site))
        assert http.patch(f"/api/v1/sites/{site}/devices/door-a", json={"room": "lounge"},
                          headers=caller).status_code == 403
    assert http.patch(f"/api/v1/sites/{site}/devices/door-a",
                      json={"room": "lounge"}).status_code == 401
    assert device_room(db, site, "door-a") == "f1"
    assert db.execute("SELECT count(*) FROM audit_log WHERE site IN (%s, %s) AND action = "
                      "'device.move'", (site, other)).fetchone() == (0,)


def test_the_command_line_moves_a_device(
        site: str, db: psycopg.Connection, add_device: Callable[..., tuple[str, str]]) -> None:
    add_flat(site, "f2")
    add_device(site, "door-a", room="f1")
    moved = nattero_cli("device", "move", site, "door-a", "--room", "f2")
    assert moved.returncode == 0, moved.stderr
    assert "f1 -> f2" in moved.stdout
    assert device_room(db, site, "door-a") == "f2"
    assert db.execute("SELECT actor LIKE 'cli:%%', detail FROM audit_log WHERE site = %s AND "
                      "action = 'device.move'", (site,)).fetchall() == [
        (True, {"before": "f1", "after": "f2"})]
    nowhere = nattero_cli("device", "move", site, "door-a", "--room", "nowhere")
    assert nowhere.returncode == 1 and "room 'nowhere' does not exist" in nowhere.stderr
    assert device_room(db, site, "door-a") == "f2"


def test_admin_page_moves_a_device_in_a_dialog(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], add_device: Callable[..., tuple[str, str]],
        db: psycopg.Connection) -> None:
    add_flat(site, "f2")
    add_device(site, "door-a", room="f1")
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-devices")
    page.select_option("#admin-site", site)
    page.locator("#devices-body tr[data-device='door-a'] [data-action='move']").click()
    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#move-title")).to_have_text("Flyt sensor door-a")
    # Its own room is not offered.
    expect(page.locator("#move-room option[value='f1']")).to_have_count(0)
    page.select_option("#move-room", "f2")
    page.click("#move-form [type=submit]")
    expect(dialog).to_be_hidden()
    expect(page.locator("#devices-ok")).to_have_text("door-a sidder nu i Lejlighed f2.")
    expect(page.locator("#devices-body tr[data-device='door-a']")).to_contain_text("Lejlighed f2")
    assert device_room(db, site, "door-a") == "f2"


def _exit_opened(site: str, device: str, event_id: str) -> Event:
    return Event(site, device, event_id, NIGHT, EventKind.DOOR_OPEN)


def test_a_moved_devices_next_event_raises_its_alert_in_the_new_room(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    add_exit(site, "exit2")
    add_device(site, "exit-door", room="exit", kind=DeviceKind.EXIT)
    rules = RulesRuntime(migrated.database_url, sites=[site])
    rules.load()
    assert move_device(db, site, "exit-door", "exit2").outcome == "moved"
    writer = EventWriter(migrated.database_url, hooks=[rules.on_batch])
    try:
        # At once, not after the ticker's next layout reload: the stored room says it moved.
        writer.write(Batch(events=[(_exit_opened(site, "exit-door", "e1"), NIGHT)]))
    finally:
        writer.close()
        rules.stop()
    assert db.execute("SELECT room, rule FROM alerts WHERE site = %s",
                      (site,)).fetchall() == [("exit2", "building_exit")]


def test_a_restart_does_not_count_a_moved_devices_earlier_events_in_its_new_room(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    add_exit(site, "exit2")
    add_device(site, "exit-door", room="exit", kind=DeviceKind.EXIT)
    writer = EventWriter(migrated.database_url)  # stored, not evaluated (no rules running)
    try:
        writer.write(Batch(events=[(_exit_opened(site, "exit-door", "e1"), NIGHT)]))
    finally:
        writer.close()
    assert move_device(db, site, "exit-door", "exit2").outcome == "moved"
    rules = RulesRuntime(migrated.database_url, sites=[site])
    try:
        rules.load()  # the replay of the night: the event happened in 'exit', not 'exit2'
    finally:
        rules.stop()
    assert db.execute("SELECT room FROM events WHERE site = %s",
                      (site,)).fetchall() == [("exit",)]
    assert db.execute("SELECT room FROM alerts WHERE site = %s", (site,)).fetchall() == []
