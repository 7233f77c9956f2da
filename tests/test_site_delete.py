"""An admin deletes a site added by mistake (API, command line, the admin page in
Chromium): everything of it goes in one transaction, then its devices' broker accounts; a
site that recorded anything stays, with a Danish reason. Audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect

from core.events import Event, EventKind
from core.settings import StackInfo
from ingest.writer import Batch, EventWriter
from tests.support.api import Account
from tests.support.board import ApiProcess, log_in
from tests.support.cli import nattero_cli
from tests.support.devices import DeviceClient

NIGHT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

_TABLES = ("rooms", "devices", "room_bases", "rule_settings")


def left_of(db: psycopg.Connection, site: str) -> dict[str, int]:
    counts = {table: db.execute(f"SELECT count(*) FROM {table} WHERE site = %s",
                                (site,)).fetchone() for table in _TABLES}
    found = db.execute("SELECT count(*) FROM sites WHERE id = %s", (site,)).fetchone()
    return {"sites": found[0] if found else -1,
            **{table: row[0] if row else -1 for table, row in counts.items()}}


def record_an_event(migrated: StackInfo, site: str, device: str) -> None:
    writer = EventWriter(migrated.database_url)
    try:
        writer.write(Batch(events=[(Event(site, device, "e1", NIGHT, EventKind.DOOR_OPEN),
                                    NIGHT)]))
    finally:
        writer.close()


def test_an_admin_deletes_a_site_that_never_recorded_anything_with_all_of_it(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]], stack: StackInfo) -> None:
    username, password = add_device(site, "door-f1", room="f1")
    DeviceClient(stack.mqtt_host, stack.mqtt_port, username, password).close()
    staff = make_user("staff", site)
    admin = headers_for(make_user("admin"))
    assert http.put(f"/api/v1/sites/{site}/rules", json={"rule": "left_flat", "room": "f1",
                    "minutes": 20}, headers=admin).status_code == 200
    answer = http.delete(f"/api/v1/sites/{site}", headers=admin)
    assert answer.status_code == 200, answer.text
    assert left_of(db, site) == dict.fromkeys(("sites", *_TABLES), 0)
    assert db.execute("SELECT sites FROM users WHERE username = %s",
                      (staff.username,)).fetchone() == ([],)
    # Its device's account went with it, after the commit.
    with pytest.raises(ConnectionRefusedError):
        DeviceClient(stack.mqtt_host, stack.mqtt_port, username, password)
    assert db.execute("SELECT detail FROM audit_log WHERE site = %s AND action = "
                      "'site.delete'", (site,)).fetchall() == [
        ({"device_accounts": [username]},)]
    assert http.delete(f"/api/v1/sites/{site}", headers=admin).status_code == 404


def test_a_site_with_history_stays_and_non_admins_cannot_delete_a_site(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]], migrated: StackInfo) -> None:
    add_device(site, "door-f1", room="f1")
    for role in ("staff", "evaluator"):
        caller = headers_for(make_user(role, site))
        assert http.delete(f"/api/v1/sites/{site}", headers=caller).status_code == 403
    assert http.delete(f"/api/v1/sites/{site}").status_code == 401
    record_an_event(migrated, site, "door-f1")
    admin = {**headers_for(make_user("admin")), "Accept-Language": "da"}
    kept = http.delete(f"/api/v1/sites/{site}", headers=admin)
    assert kept.status_code == 409
    assert kept.json()["detail"].startswith(
        f"stedet '{site}' har registreret hændelser, alarmer eller runder og bliver derfor")
    assert left_of(db, site)["sites"] == 1 and left_of(db, site)["devices"] == 1
    assert db.execute("SELECT count(*) FROM audit_log WHERE site = %s AND action = "
                      "'site.delete'", (site,)).fetchone() == (0,)


def test_the_command_line_deletes_an_empty_site_and_keeps_one_with_history(
        site: str, db: psycopg.Connection, add_device: Callable[..., tuple[str, str]],
        migrated: StackInfo) -> None:
    add_device(site, "door-f1", room="f1")
    record_an_event(migrated, site, "door-f1")
    stays = nattero_cli("site", "delete", site)
    assert stays.returncode == 1 and "has recorded events" in stays.stderr
    nattero_cli("site", "add", f"{site}-x", "--name", "Forkert")
    gone = nattero_cli("site", "delete", f"{site}-x")
    assert gone.returncode == 0, gone.stderr
    assert left_of(db, f"{site}-x")["sites"] == 0
    assert left_of(db, site)["sites"] == 1
    assert db.execute("SELECT actor LIKE 'cli:%%' FROM audit_log WHERE site = %s AND action = "
                      "'site.delete'", (f"{site}-x",)).fetchall() == [(True,)]


def test_admin_page_deletes_a_site_after_confirming_and_explains_one_that_stays(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], add_device: Callable[..., tuple[str, str]],
        db: psycopg.Connection, migrated: StackInfo) -> None:
    nattero_cli("site", "add", f"{site}-x", "--name", "Forkert sted")
    add_device(site, "door-f1", room="f1")
    record_an_event(migrated, site, "door-f1")
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-sites")
    questions: list[str] = []

    def answer(dialog: object) -> None:
        questions.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.once("dialog", answer)
    page.locator(f"#sites-body tr[data-site='{site}-x'] [data-action='delete']").click()
    expect(page.locator(f"#sites-body tr[data-site='{site}-x']")).to_have_count(1)
    assert questions and questions[0].startswith("Slette stedet Forkert sted")
    assert left_of(db, f"{site}-x")["sites"] == 1  # dismissed: nothing deleted
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#sites-body tr[data-site='{site}-x'] [data-action='delete']").click()
    expect(page.locator("#sites-ok")).to_have_text("Forkert sted er slettet.")
    expect(page.locator(f"#sites-body tr[data-site='{site}-x']")).to_have_count(0)
    assert left_of(db, f"{site}-x")["sites"] == 0
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#sites-body tr[data-site='{site}'] [data-action='delete']").click()
    expect(page.locator("#sites-error")).to_contain_text(
        "Kunne ikke slette: stedet")
    expect(page.locator("#sites-error")).to_contain_text("har registreret hændelser")
    assert left_of(db, site)["sites"] == 1
