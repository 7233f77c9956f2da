"""Bulk import of rooms and devices from CSV: every bad line reported, nothing half-imported,
and the devices of a good import connect to the real broker with their new credentials."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from playwright.sync_api import FilePayload, Page, expect

from core.settings import Settings, StackInfo
from provisioning.broker_accounts import BrokerAccountError
from provisioning.csv_import import ImportRefused, import_csv
from provisioning.sites import broker_accounts
from tests.support.api import Account
from tests.support.board import ApiProcess, log_in
from tests.support.cli import nattero_cli
from tests.support.devices import DeviceClient, event_payload
from tests.support.store import unique

GOOD = """rum;rumtype;betegnelse;sensor;sensortype;hjerteslag
f7;lejlighed;Lejlighed 7;f7-door;dør;300
f7;;;f7-bed;seng;
stue;fællesrum;Dagligstue;stue-pir;bevægelse;600
f1;;;f1-bed;seng;
"""

# Line 2 and 6 are fine; every other line is wrong in its own way, and line 7 clashes with
# what the site has stored already (f1 is a flat, door-f1 exists).
BAD = """room,room_kind,label,device,device_kind,heartbeat
f8,flat,Lejlighed 8,f8-door,door,
F9,flat,,f9-door,door,
f10,kitchen,,,,
f11,flat,,f11-door,,
f12,flat,,f12-bed,bed,5
f8,,,f8-pir,motion,
f1,common,,door-f1,door,
"""


def csv_file(text: str) -> FilePayload:
    return {"name": "rum.csv", "mimeType": "text/csv", "buffer": text.encode()}


def rooms_of(db: psycopg.Connection, site: str) -> list[str]:
    return [row[0] for row in db.execute("SELECT id FROM rooms WHERE site = %s ORDER BY id",
                                         (site,))]


def devices_of(db: psycopg.Connection, site: str) -> list[str]:
    return [row[0] for row in db.execute(
        "SELECT id FROM devices WHERE site = %s AND revoked_at IS NULL ORDER BY id", (site,))]


def account_exists(settings: Settings, username: str) -> bool:
    with broker_accounts(settings) as broker:
        return broker.account_exists(username)


def test_bad_lines_are_each_reported_in_danish_and_nothing_is_stored(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], add_device: Callable[..., object],
        db: psycopg.Connection, settings: Settings) -> None:
    add_device(site, "door-f1", room="f1")
    before_rooms, before_devices = rooms_of(db, site), devices_of(db, site)
    answer = http.post(f"/api/v1/sites/{site}/import", json={"csv": BAD},
                       headers={**headers_for(make_user("admin")), "Accept-Language": "da"})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["detail"] == "intet blev importeret: 6 problemer i filen"
    problems = {(p["line"], p["message"]) for p in body["problems"]}
    assert problems == {
        (3, "linje 3: rum-id'et 'F9' må kun have små bogstaver, tal, '.', '_' og '-' "
            "(højst 63 tegn)"),
        (4, "linje 4: rumtypen 'kitchen' kendes ikke; brug en af: lejlighed (flat), "
            "fællesrum (common), udgang (exit)"),
        (5, "linje 5: sensor 'f11-door' mangler en sensortype: dør (door), seng (bed), "
            "bevægelse (motion), yderdør (exit), personale (staff)"),
        (6, "linje 6: hjerteslag '5' skal være et helt antal sekunder fra 10 til 86400"),
        (8, "linje 8: rum 'f1' findes allerede med en anden type (flat); udelad typen, "
            "eller ret den"),
        (8, "linje 8: sensor 'door-f1' findes allerede på stedet; tilbagekald den først, "
            "eller vælg et andet id"),
    }
    # Nothing of the good lines (f8, its door and motion sensor) was written anywhere.
    assert rooms_of(db, site) == before_rooms
    assert devices_of(db, site) == before_devices
    assert not account_exists(settings, f"{site}.f8-door")
    assert not account_exists(settings, f"{site}.f8-pir")


def test_a_dry_run_reports_what_would_be_added_and_stores_nothing(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection) -> None:
    answer = http.post(f"/api/v1/sites/{site}/import", json={"csv": GOOD, "dry_run": True},
                       headers=headers_for(make_user("admin")))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dry_run"] and body["credentials"] == []
    assert body["rooms_added"] == ["f7", "stue"] and body["rooms_found"] == ["f1"]
    assert body["devices_added"] == ["f7-door", "f7-bed", "stue-pir", "f1-bed"]
    assert rooms_of(db, site) == ["exit", "f1", "lounge"]
    assert devices_of(db, site) == []


def test_a_good_import_stores_every_room_and_device_and_the_devices_connect(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        stack: StackInfo) -> None:
    answer = http.post(f"/api/v1/sites/{site}/import", json={"csv": "\ufeff" + GOOD},
                       headers=headers_for(make_user("admin")))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert rooms_of(db, site) == ["exit", "f1", "f7", "lounge", "stue"]
    assert devices_of(db, site) == ["f1-bed", "f7-bed", "f7-door", "stue-pir"]
    stored = db.execute("SELECT id, room, kind, heartbeat_s FROM devices WHERE site = %s "
                        "ORDER BY id", (site,)).fetchall()
    assert stored == [("f1-bed", "f1", "bed", 300), ("f7-bed", "f7", "bed", 300),
                      ("f7-door", "f7", "door", 300), ("stue-pir", "stue", "motion", 600)]
    assert db.execute("SELECT kind, label FROM rooms WHERE site = %s AND id = 'stue'",
                      (site,)).fetchone() == ("common", "Dagligstue")
    assert db.execute("SELECT count(*) FROM audit_log WHERE site = %s AND action = "
                      "'site.import'", (site,)).fetchone() == (1,)
    credentials = {c["device"]: c for c in body["credentials"]}
    assert sorted(credentials) == ["f1-bed", "f7-bed", "f7-door", "stue-pir"]
    for device, account in credentials.items():
        assert account["topic"] == f"nattero/v1/{site}/{device}/events"
        assert account["broker"] == f"mqtt://{stack.mqtt_host}:{stack.mqtt_port}"
        client = DeviceClient(stack.mqtt_host, stack.mqtt_port, account["username"],
                              account["password"], client_id=account["client_id"])
        try:
            client.publish(account["topic"], event_payload("heartbeat"))
            client.flush(10)  # the broker acknowledged: the account may publish there
        finally:
            client.close()


def test_a_broker_failure_half_way_deletes_the_accounts_made_and_stores_nothing(
        site: str, settings: Settings, db: psycopg.Connection) -> None:
    # A stray account under the third device's name makes the broker refuse it, after the
    # first two devices' accounts were created.
    stray = f"{site}.stue-pir"
    with broker_accounts(settings) as broker:
        broker.create_device_account(stray, "stray-password-123", "nattero/v1/stray",
                                     client_id=stray)
    try:
        with pytest.raises(BrokerAccountError):
            import_csv(settings, site, GOOD)
        assert rooms_of(db, site) == ["exit", "f1", "lounge"]
        assert devices_of(db, site) == []
        assert not account_exists(settings, f"{site}.f7-door")
        assert not account_exists(settings, f"{site}.f7-bed")
        assert account_exists(settings, stray)  # not the import's to delete
    finally:
        with broker_accounts(settings) as broker:
            broker.delete_account(stray)


@pytest.mark.parametrize(("text", "expected"), [
    ("", "the file is empty"),
    ("rum;farve\nf1;rød\n", "unknown column 'farve'"),
    ("sensor;sensortype\nd1;dør\n", "include 'rum'"),
    ("rum;rum\nf1;f1\n", "named twice"),
    ("rum\n", "names no room"),
    ("rum,rumtype\nf7,lejlighed,extra\n", "line 2: the line has 3 fields"),
    ("rum;sensor;sensortype\nf7;d7;dør\n", "line 2: room 'f7' is new and needs a room type"),
])
def test_a_file_that_cannot_be_imported_says_why(
        site: str, settings: Settings, text: str, expected: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        import_csv(settings, site, text)
    assert expected in str(refused.value)


def test_cli_import_reports_bad_lines_in_danish_then_writes_credentials_for_the_owner_only(
        site: str, tmp_path: Path, db: psycopg.Connection, stack: StackInfo) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD.replace("door-f1", "door-x"), encoding="utf-8")
    refused = nattero_cli("site", "import", site, str(bad))
    assert refused.returncode == 1
    assert "linje 3: rum-id'et 'F9'" in refused.stderr
    assert "error: intet blev importeret: 5 problemer i filen" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert devices_of(db, site) == []

    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    out = tmp_path / "credentials.csv"
    done = nattero_cli("site", "import", site, str(good), "--credentials", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["devices_added"] == ["f7-door", "f7-bed", "stue-pir", "f1-bed"]
    assert summary["credentials"] == []  # in the file, not on the screen
    assert os.stat(out).st_mode & 0o777 == 0o600
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "device,username,client_id,password,broker,topic" and len(lines) == 5
    _, username, client_id, password, broker, _ = lines[1].split(",")
    assert broker == f"mqtt://{stack.mqtt_host}:{stack.mqtt_port}"
    DeviceClient(stack.mqtt_host, stack.mqtt_port, username, password,
                 client_id=client_id).close()

    again = nattero_cli("site", "import", site, str(good), "--lang", "en")
    assert again.returncode == 1
    assert "line 2: sensor 'f7-door' exists already on this site" in again.stderr


def test_import_is_for_admins_only(site: str, http: httpx.Client,
                                   make_user: Callable[..., Account],
                                   headers_for: Callable[[Account], dict[str, str]]) -> None:
    answer = http.post(f"/api/v1/sites/{site}/import", json={"csv": GOOD},
                       headers=headers_for(make_user("staff", site)))
    assert answer.status_code == 403
    missing = http.post(f"/api/v1/sites/{unique('none')}/import", json={"csv": GOOD},
                        headers=headers_for(make_user("admin")))
    assert missing.status_code == 404


def test_admin_page_imports_a_file_shows_bad_lines_and_offers_credentials_once(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], db: psycopg.Connection, stack: StackInfo) -> None:
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-rooms")
    page.select_option("#admin-site", site)
    form = page.locator("#import-form")

    page.set_input_files("#import-file", files=csv_file(BAD))
    form.locator("[type=submit]").click()
    expect(form.locator(".form-error")).to_have_text("intet blev importeret: 5 problemer i filen")
    expect(page.locator("#import-problems li")).to_have_count(5)
    expect(page.locator("#import-problems li[data-line='4']")).to_contain_text(
        "rumtypen 'kitchen' kendes ikke")
    assert devices_of(db, site) == []

    page.set_input_files("#import-file", files=csv_file(GOOD))
    page.check("#import-dry-run")
    form.locator("[type=submit]").click()
    expect(form.locator(".form-ok")).to_contain_text("Intet er gemt endnu")
    expect(page.locator("#import-credentials")).to_be_hidden()
    assert devices_of(db, site) == []

    page.uncheck("#import-dry-run")
    form.locator("[type=submit]").click()
    expect(form.locator(".form-ok")).to_have_text(
        "Importeret: 2 nye rum og 4 nye sensorer.")
    expect(page.locator("#rooms-body")).to_contain_text("Dagligstue")
    with page.expect_download() as download:
        page.click("#import-download")
    assert download.value.suggested_filename == f"nattero-{site}-sensorer.csv"
    rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert rows[0] == "device,username,client_id,password,broker,topic" and len(rows) == 5
    _, username, client_id, password, _, _ = (cell.strip('"') for cell in rows[1].split(","))
    DeviceClient(stack.mqtt_host, stack.mqtt_port, username, password,
                 client_id=client_id).close()

    other = page.locator(f"#admin-site option:not([value='{site}'])").first.get_attribute("value")
    assert other
    page.select_option("#admin-site", other)
    expect(page.locator("#import-credentials")).to_be_hidden()  # offered once
