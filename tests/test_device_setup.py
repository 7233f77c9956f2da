"""A device's setup (broker host and TLS port, topic, username, client id, password) comes
once, when it is added or its password renewed: as a JSON file and a QR code that encodes
exactly that file. The QR code is read back from a real Chromium screenshot (zxing-cpp)."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from core.settings import StackInfo, get_settings
from provisioning import DeviceCredentials, ProvisioningError
from provisioning.device_setup import device_setup
from tests.support.api import Account
from tests.support.board import ApiProcess, log_in
from tests.support.cli import nattero_cli
from tests.support.devices import DeviceClient


def decoded_qr(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, f"{len(found)} codes in the screenshot"
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    return str(found[0].text)


def broker_of_devices() -> tuple[str, int, bool]:
    url = get_settings().device_broker()
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    return host, int(port), scheme == "mqtts"


def test_a_new_device_comes_with_its_whole_setup_once(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection) -> None:
    admin = headers_for(make_user("admin"))
    answer = http.post(f"/api/v1/sites/{site}/devices", json={
        "id": "door-f1", "room": "f1", "kind": "door", "heartbeat_s": 300}, headers=admin)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    host, port, tls = broker_of_devices()
    assert body["setup"] == {
        "format": "nattero-device-setup/1", "site": site, "device": "door-f1",
        "broker_host": host, "broker_port": port, "tls": tls,
        "topic": f"nattero/v1/{site}/door-f1/events",
        "status_topic": f"nattero/v1/{site}/door-f1/status",
        "username": body["username"], "client_id": body["client_id"],
        "password": body["password"]}
    assert json.loads(body["setup_file"]) == body["setup"]
    assert body["qr_svg"].startswith("data:image/svg+xml")
    # Stored nowhere: not in the audit log either.
    details = db.execute("SELECT detail::text FROM audit_log WHERE site = %s",
                         (site,)).fetchall()
    assert details and all(body["password"] not in row[0] for row in details)


def test_the_setup_names_the_address_devices_are_given() -> None:
    credentials = DeviceCredentials(username="s.d", client_id="s.d", password="pw")
    host = "mqtt.kommune.example"
    for url, expected in ((f"mqtts://{host}:8883", (host, 8883, True)),
                          (f"mqtts://{host}", (host, 8883, True)),
                          ("mqtt://127.0.0.1:1883", ("127.0.0.1", 1883, False))):
        settings = get_settings().model_copy(update={"device_broker_url": url})
        setup = device_setup(settings, "s", "d", credentials)
        assert (setup.broker_host, setup.broker_port, setup.tls) == expected
    bad = get_settings().model_copy(update={"device_broker_url": "http://mqtt.example"})
    with pytest.raises(ProvisioningError, match="NATTERO_DEVICE_BROKER_URL"):
        device_setup(bad, "s", "d", credentials)


def open_devices(page: Page, server: ApiProcess, admin: Account, site: str) -> None:
    log_in(page, server, admin, next_path="/admin.html")
    page.click("#tab-devices")
    page.select_option("#admin-site", site)
    expect(page.locator("#device-room option[value='f1']")).to_have_count(1)


def shown_setup(page: Page) -> tuple[dict[str, Any], str, str]:
    """The setup the page shows: the downloaded file's JSON, its text and the QR's text."""
    expect(page.locator("#credentials")).to_be_visible()
    qr = page.locator("#cred-qr")
    expect(qr).to_have_attribute("alt", "QR-kode med opsætningen af door-f1")
    page.wait_for_function("document.getElementById('cred-qr').complete && "
                           "document.getElementById('cred-qr').naturalWidth > 0")
    text = decoded_qr(qr.screenshot())
    with page.expect_download() as info:
        page.click("#cred-download")
    download = info.value
    assert download.suggested_filename.endswith("-door-f1.json")
    file_text = Path(download.path()).read_text(encoding="utf-8")
    return json.loads(file_text), file_text, text


def test_admin_page_shows_a_qr_code_that_decodes_to_the_downloaded_setup_file(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], stack: StackInfo) -> None:
    server = api_process()
    page = open_page()
    open_devices(page, server, make_user("admin"), site)
    page.fill("#device-id", "door-f1")
    page.select_option("#device-room", "f1")
    page.select_option("#device-kind", "door")
    page.click("#device-form [type=submit]")
    setup, file_text, qr_text = shown_setup(page)
    assert qr_text == file_text
    expect(page.locator("#cred-password")).to_have_text(setup["password"])
    expect(page.locator("#cred-topic")).to_have_text(f"nattero/v1/{site}/door-f1/events")
    host, port, _ = broker_of_devices()
    assert (setup["broker_host"], setup["broker_port"]) == (host, port)
    # What the QR code says is enough to connect.
    DeviceClient(stack.mqtt_host, stack.mqtt_port, setup["username"], setup["password"],
                 client_id=setup["client_id"]).close()

    # A renewed password comes with a new setup; the old one no longer connects.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#devices-body tr[data-device='door-f1'] [data-action='rotate']").click()
    expect(page.locator("#cred-password")).not_to_have_text(setup["password"])
    renewed, renewed_file, renewed_qr = shown_setup(page)
    assert renewed_qr == renewed_file and renewed["password"] != setup["password"]
    DeviceClient(stack.mqtt_host, stack.mqtt_port, renewed["username"], renewed["password"],
                 client_id=renewed["client_id"]).close()
    with pytest.raises(ConnectionRefusedError):
        DeviceClient(stack.mqtt_host, stack.mqtt_port, setup["username"], setup["password"])

    # Another site chosen: the setup (and its password) is gone from the page.
    page.select_option("#admin-site", site)
    page.evaluate("document.getElementById('admin-site')"
                  ".dispatchEvent(new Event('change'))")
    expect(page.locator("#credentials")).to_be_hidden()
    assert page.locator("#cred-qr").get_attribute("src") is None


def test_the_command_line_writes_the_setup_file_and_qr_code_for_its_owner_only(
        site: str, tmp_path: Path, stack: StackInfo) -> None:
    added = nattero_cli("device", "add", site, "door-f1", "--room", "f1", "--kind", "door",
                        "--setup-dir", str(tmp_path), "--json")
    assert added.returncode == 0, added.stderr
    printed = json.loads(added.stdout)
    setup_file = tmp_path / f"nattero-{site}-door-f1.json"
    setup = json.loads(setup_file.read_text(encoding="utf-8"))
    assert setup["password"] == printed["password"]
    assert setup["topic"] == f"nattero/v1/{site}/door-f1/events"
    qr = tmp_path / f"nattero-{site}-door-f1.svg"
    assert qr.read_text(encoding="utf-8").startswith("<?xml")
    for path in (setup_file, qr):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Never overwritten: a renewal into the same folder is refused before anything changes.
    again = nattero_cli("device", "rotate", site, "door-f1", "--setup-dir", str(tmp_path))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    assert json.loads(setup_file.read_text(encoding="utf-8")) == setup
    DeviceClient(stack.mqtt_host, stack.mqtt_port, setup["username"], setup["password"],
                 client_id=setup["client_id"]).close()
