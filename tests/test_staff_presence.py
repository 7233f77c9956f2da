"""Staff on the floor (issue 13 §3), through the board's API and the real pipeline: staff
who said they are going round cause no situation, and another site's staff cannot say it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from core.events import DeviceKind
from rules.runtime import STAFF_EVERY_S
from tests.support.api import Account
from tests.support.store import night_around_now
from tests.support.waiting import wait_until
from tests.test_rules_pipeline import Devices

Headers = Callable[[Account], dict[str, str]]


@pytest.fixture
def devices(stack: Any, site: str, add_device: Callable[..., tuple[str, str]]) -> Any:
    made = Devices(stack, site, add_device)
    made.add("f1-door", "f1", DeviceKind.DOOR)
    made.add("lounge-pir", "lounge", DeviceKind.MOTION)
    yield made
    made.close()


def _alerts(db: psycopg.Connection, site: str) -> list[tuple[Any, ...]]:
    return db.execute("SELECT rule, room, count FROM alerts WHERE site = %s ORDER BY id",
                      (site,)).fetchall()


def _stored(db: psycopg.Connection, site: str) -> int:
    row = db.execute("SELECT count(*) FROM events WHERE site = %s", (site,)).fetchone()
    return int(row[0]) if row else 0


def test_staff_going_round_cause_no_situation_through_the_pipeline(
        site: str, db: psycopg.Connection, devices: Devices, run_pipeline: Callable[..., Any],
        http: httpx.Client, make_user: Callable[..., Account], headers_for: Headers) -> None:
    night_around_now(db, site)
    run_pipeline(site)
    nurse = headers_for(make_user("staff", site))
    # Before any round: motion in the lounge is someone nobody knows (a quiet situation).
    devices.send("lounge-pir", "motion", datetime.now(UTC))
    assert wait_until(lambda: _alerts(db, site) == [("common_motion", "lounge", 1)])

    for body in ({"minutes": 15}, {"room": "f1", "minutes": 15}):
        response = http.post(f"/api/v1/sites/{site}/staff-presence", json=body, headers=nurse)
        assert response.status_code == 201, response.text
    assert [p["room"] for p in http.get(f"/api/v1/sites/{site}/staff-presence",
                                        headers=nurse).json()] == ["f1", None]
    time.sleep(STAFF_EVERY_S + 0.5)  # the rules read announced rounds once a second

    before = _stored(db, site)
    now = datetime.now(UTC)
    devices.send("lounge-pir", "motion", now)
    devices.send("f1-door", "door.open", now + timedelta(seconds=1))
    devices.send("f1-door", "door.closed", now + timedelta(seconds=4))
    # Alerts commit with their events: once these three are stored, their rules have run.
    assert wait_until(lambda: _stored(db, site) == before + 3)
    assert _alerts(db, site) == [("common_motion", "lounge", 1)]  # no merge, no outing
    audited = db.execute("SELECT action, target FROM audit_log WHERE site = %s AND action = "
                         "'staff.round' ORDER BY id", (site,)).fetchall()
    assert audited == [("staff.round", None), ("staff.round", "f1")]


def test_only_the_sites_own_staff_announce_a_round_and_only_into_a_flat(
        site: str, http: httpx.Client, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    import provisioning
    from core.settings import get_settings

    other = f"{site}-x"[:60]
    provisioning.add_site(get_settings(), other, "Andet sted")
    stranger = headers_for(make_user("staff", other))
    refused = http.post(f"/api/v1/sites/{site}/staff-presence", json={}, headers=stranger)
    assert refused.status_code == 403
    nurse = headers_for(make_user("staff", site))
    lounge = http.post(f"/api/v1/sites/{site}/staff-presence", json={"room": "lounge"},
                       headers={**nurse, "Accept-Language": "da"})
    assert lounge.status_code == 404
    assert "er ikke en lejlighed" in lounge.json()["detail"]
    too_long = http.post(f"/api/v1/sites/{site}/staff-presence", json={"minutes": 600},
                         headers=nurse)
    assert too_long.status_code == 422


def test_staff_who_take_a_bed_alert_are_in_the_flat_and_the_common_rooms(
        site: str, db: psycopg.Connection, devices: Devices, run_pipeline: Callable[..., Any],
        http: httpx.Client, make_user: Callable[..., Account], headers_for: Headers,
        raise_alert: Callable[..., int]) -> None:
    night_around_now(db, site)
    nurse = headers_for(make_user("staff", site))
    battery = raise_alert(site, "f1", "low_battery", "notice", device="f1-door")
    bed = raise_alert(site, "f1", "bed_exit_not_back", "normal")
    # A device alert sends nobody onto the floor.
    assert http.post(f"/api/v1/alerts/{battery}/ack", headers=nurse).status_code == 200
    assert http.get(f"/api/v1/sites/{site}/staff-presence", headers=nurse).json() == []
    # "Jeg tager den" on a bed alert: the nurse is on her way through the common rooms and
    # into the flat, for the board's 15 minutes.
    taken = http.post(f"/api/v1/alerts/{bed}/ack", headers=nurse)
    assert taken.status_code == 200, taken.text
    placed = http.get(f"/api/v1/sites/{site}/staff-presence", headers=nurse).json()
    assert sorted(p["room"] or "" for p in placed) == ["", "f1"]
    for presence in placed:
        length = (datetime.fromisoformat(presence["ends_at"])
                  - datetime.fromisoformat(presence["starts_at"]))
        assert length == timedelta(minutes=15)
    run_pipeline(site)
    time.sleep(STAFF_EVERY_S + 0.5)  # the rules read staff presence once a second

    before = _stored(db, site)
    now = datetime.now(UTC)
    devices.send("lounge-pir", "motion", now)  # her walk: not someone nobody knows
    devices.send("f1-door", "door.open", now + timedelta(seconds=1))  # her going in:
    devices.send("f1-door", "door.closed", now + timedelta(seconds=4))  # not an outing
    assert wait_until(lambda: _stored(db, site) == before + 3)
    assert _alerts(db, site) == [("low_battery", "f1", 1), ("bed_exit_not_back", "f1", 1)]
    audited = db.execute("SELECT detail->'staff_placed' FROM audit_log WHERE site = %s AND "
                         "action = 'alert.ack' ORDER BY id", (site,)).fetchall()
    assert [row[0] for row in audited] == [[], ["common", "f1"]]


def test_staff_who_take_an_outing_are_not_placed_in_its_flat(
        site: str, db: psycopg.Connection, http: httpx.Client,
        make_user: Callable[..., Account], headers_for: Headers,
        raise_alert: Callable[..., int]) -> None:
    # The resident is out: their homecoming through the flat door must still end the outing,
    # so only the common rooms are the nurse's.
    nurse = headers_for(make_user("staff", site))
    outing = raise_alert(site, "f1", "left_flat", "normal")
    assert http.post(f"/api/v1/alerts/{outing}/ack", headers=nurse).status_code == 200
    placed = http.get(f"/api/v1/sites/{site}/staff-presence", headers=nurse).json()
    assert [p["room"] for p in placed] == [None]
