"""Bridges on the admin page and in the admin API: listed from the broker, added (the
password shown once) and revoked, audited; not for staff."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
from playwright.sync_api import Page, expect

from core.settings import StackInfo
from tests.support.api import Account
from tests.support.board import ApiProcess, log_in
from tests.support.devices import DeviceClient
from tests.support.store import unique


def listed(http: httpx.Client, headers: dict[str, str]) -> dict[str, dict[str, object]]:
    answer = http.get("/api/v1/bridges", headers=headers)
    assert answer.status_code == 200, answer.text
    return {b["name"]: b for b in answer.json()}


def test_an_admin_adds_lists_and_revokes_a_bridge_and_it_is_audited(
        http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection,
        stack: StackInfo) -> None:
    name = unique("zb")
    admin = {**headers_for(make_user("admin")), "Accept-Language": "da"}
    added = http.post("/api/v1/bridges", headers=admin,
                      json={"name": name, "source": "zigbee2mqtt"})
    assert added.status_code == 201, added.text
    creds = added.json()
    assert creds["username"] == f"bridge-{name}"
    DeviceClient(stack.mqtt_host, stack.mqtt_port, creds["username"], creds["password"]).close()
    assert listed(http, admin)[name] == {"name": name, "username": f"bridge-{name}",
                                         "source": "zigbee2mqtt", "topics": ["zigbee2mqtt/#"]}
    again = http.post("/api/v1/bridges", headers=admin,
                      json={"name": name, "source": "chirpstack"})
    assert again.status_code == 409
    assert again.json()["detail"] == f"broen '{name}' findes allerede; tilbagekald den først"
    assert http.delete(f"/api/v1/bridges/{name}", headers=admin).status_code == 200
    assert name not in listed(http, admin)
    gone = http.delete(f"/api/v1/bridges/{name}", headers=admin)
    assert gone.status_code == 404 and gone.json()["detail"] == f"der er ingen bro '{name}'"
    assert db.execute("SELECT action FROM audit_log WHERE target = %s ORDER BY id",
                      (name,)).fetchall() == [("bridge.add",), ("bridge.revoke",)]


def test_staff_and_evaluators_cannot_see_add_or_revoke_bridges(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]]) -> None:
    name = unique("zb")
    for role in ("staff", "evaluator"):
        caller = headers_for(make_user(role, site))
        assert http.get("/api/v1/bridges", headers=caller).status_code == 403
        assert http.post("/api/v1/bridges", headers=caller,
                         json={"name": name, "source": "zigbee2mqtt"}).status_code == 403
        assert http.delete(f"/api/v1/bridges/{name}", headers=caller).status_code == 403
    assert http.get("/api/v1/bridges").status_code == 401
    assert name not in listed(http, headers_for(make_user("admin")))


def test_admin_page_adds_a_bridge_shows_its_password_once_and_revokes_it(
        site: str, api_process: Callable[..., ApiProcess], make_user: Callable[..., Account],
        open_page: Callable[..., Page], stack: StackInfo) -> None:
    name = unique("cs")
    server = api_process()
    page = open_page()
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.click("#tab-devices")
    page.fill("#bridge-name", name)
    page.select_option("#bridge-source", "chirpstack")
    page.click("#bridge-form [type=submit]")
    expect(page.locator("#bridge-credentials")).to_be_visible()
    expect(page.locator("#bridge-credentials-title")).to_have_text(
        f"MQTT-adgang til broen {name}")
    password = page.locator("#bridge-cred-password").inner_text()
    DeviceClient(stack.mqtt_host, stack.mqtt_port, f"bridge-{name}", password).close()
    row = page.locator(f"#bridges-body tr[data-bridge='{name}']")
    expect(row).to_contain_text("ChirpStack")
    expect(row).to_contain_text("application/#")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action='revoke']").click()
    expect(page.locator("#bridges-ok")).to_have_text(f"Broen {name} er tilbagekaldt.")
    expect(row).to_have_count(0)
