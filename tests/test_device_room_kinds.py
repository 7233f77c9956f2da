"""A device only where the rules read it: a bed sensor in a flat, never in a common room or
at an exit; refused (in Danish where a person reads it) when it is added through the API,
the command line or a CSV import, and when it is moved."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
import pytest

from core.events import DeviceKind, RoomKind, fits_in
from tests.support.api import Account
from tests.support.cli import nattero_cli


@pytest.mark.pure
def test_a_bed_fits_only_a_flat_and_staff_devices_fit_anywhere() -> None:
    assert [room for room in RoomKind if fits_in(DeviceKind.BED, room)] == [RoomKind.FLAT]
    assert [room for room in RoomKind if fits_in(DeviceKind.EXIT, room)] == [RoomKind.EXIT]
    assert not fits_in(DeviceKind.MOTION, RoomKind.EXIT)
    assert not fits_in(DeviceKind.DOOR, RoomKind.COMMON)
    assert all(fits_in(DeviceKind.STAFF, room) for room in RoomKind)


def devices_of(db: psycopg.Connection, site: str) -> dict[str, str]:
    return dict(db.execute("SELECT id, room FROM devices WHERE site = %s", (site,)).fetchall())


def test_the_api_refuses_a_bed_sensor_in_a_common_room_in_danish(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection) -> None:
    admin = {**headers_for(make_user("admin")), "Accept-Language": "da"}
    refused = http.post(f"/api/v1/sites/{site}/devices", headers=admin,
                        json={"id": "bed-x", "room": "lounge", "kind": "bed"})
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "en sensor af typen 'bed' kan ikke sidde i rummet 'lounge', der er af typen 'common': "
        "den passer kun i et rum af typen flat")
    english = http.post(f"/api/v1/sites/{site}/devices", headers={**admin, "Accept-Language": "en"},
                        json={"id": "pir-x", "room": "exit", "kind": "motion"})
    assert english.status_code == 422
    assert english.json()["detail"] == (
        "a 'motion' sensor cannot sit in room 'exit', a room of type 'exit': it fits only in "
        "a room of type flat, common")
    assert devices_of(db, site) == {}
    added = http.post(f"/api/v1/sites/{site}/devices", headers=admin,
                      json={"id": "bed-f1", "room": "f1", "kind": "bed"})
    assert added.status_code == 201, added.text
    # Moving it to the lounge is refused the same way; it stays in f1.
    moved = http.patch(f"/api/v1/sites/{site}/devices/bed-f1", headers=admin,
                       json={"room": "lounge"})
    assert moved.status_code == 422
    assert moved.json()["detail"].startswith("en sensor af typen 'bed' kan ikke sidde i rummet "
                                             "'lounge'")
    assert devices_of(db, site) == {"bed-f1": "f1"}


def test_the_command_line_refuses_a_bed_sensor_at_the_exit(
        site: str, db: psycopg.Connection) -> None:
    refused = nattero_cli("device", "add", site, "bed-x", "--room", "exit", "--kind", "bed")
    assert refused.returncode == 1
    assert "a 'bed' sensor cannot sit in room 'exit'" in refused.stderr
    assert nattero_cli("device", "add", site, "bed-f1", "--room", "f1",
                       "--kind", "bed").returncode == 0
    not_moved = nattero_cli("device", "move", site, "bed-f1", "--room", "exit")
    assert not_moved.returncode == 1 and "fits only in a room of type flat" in not_moved.stderr
    assert devices_of(db, site) == {"bed-f1": "f1"}


def test_a_csv_import_reports_each_device_in_the_wrong_kind_of_room(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]], db: psycopg.Connection) -> None:
    csv = ("rum;rumtype;betegnelse;sensor;sensortype;hjerteslag\n"
           "gang;fællesrum;Gangen;gang-seng;seng;\n"      # a new common room, from the file
           "exit;;;exit-pir;bevægelse;\n"                 # a stored exit
           "f1;;;f1-bed;seng;\n")                         # fine
    answer = http.post(f"/api/v1/sites/{site}/import", json={"csv": csv, "dry_run": True},
                       headers={**headers_for(make_user("admin")), "Accept-Language": "da"})
    assert answer.status_code == 422, answer.text
    assert {(p["line"], p["message"]) for p in answer.json()["problems"]} == {
        (2, "linje 2: en sensor af typen 'bed' kan ikke sidde i rummet 'gang', der er af typen "
            "'common': den passer kun i et rum af typen flat"),
        (3, "linje 3: en sensor af typen 'motion' kan ikke sidde i rummet 'exit', der er af "
            "typen 'exit': den passer kun i et rum af typen flat, common"),
    }
    assert devices_of(db, site) == {}
