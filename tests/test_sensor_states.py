"""Sensors stuck in a state (issue 13 §4): a door open for hours, a bed empty since
yesterday, listed in the site's health so the pre-shift check shows them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from core.events import DeviceKind
from tests.support.api import Account


def _report(db: psycopg.Connection, site: str, device: str, room: str, kind: str,
            ago: timedelta) -> None:
    at = datetime.now(UTC) - ago
    db.execute("INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s)",
               (site, device, f"{device}-{kind}-{ago.total_seconds()}", at, room, kind, at))


def test_a_door_open_for_hours_and_a_bed_empty_since_yesterday_are_listed(
        db: psycopg.Connection, http: httpx.Client, site: str,
        add_device: Callable[..., tuple[str, str]], make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]]) -> None:
    for device, room, kind in (("f1-door", "f1", DeviceKind.DOOR),
                               ("f1-bed", "f1", DeviceKind.BED),
                               ("exit-door", "exit", DeviceKind.EXIT),
                               ("f1-bed-2", "f1", DeviceKind.BED),
                               ("f1-door-2", "f1", DeviceKind.DOOR)):
        add_device(site, device, room=room, kind=kind)
    # Open 3 h ago, its close lost: stuck. The exit opened and closed: fine.
    _report(db, site, "f1-door", "f1", "door.open", timedelta(hours=3))
    _report(db, site, "exit-door", "exit", "door.open", timedelta(hours=3))
    _report(db, site, "exit-door", "exit", "door.closed", timedelta(hours=3) - timedelta(seconds=5))
    # Empty for 20 h (a bed.enter lost, or nobody slept there): stuck. Empty for 5 h: a
    # resident up since the morning, not flagged. A door open for 10 minutes: not yet.
    _report(db, site, "f1-bed", "f1", "bed.exit", timedelta(hours=20))
    _report(db, site, "f1-bed-2", "f1", "bed.exit", timedelta(hours=5))
    _report(db, site, "f1-door-2", "f1", "door.open", timedelta(minutes=10))

    health: dict[str, Any] = http.get(f"/api/v1/sites/{site}/health",
                                      headers=headers_for(make_user("staff", site))).json()
    stuck = {(s["device"], s["state"]) for s in health["stuck"]}
    assert stuck == {("f1-door", "door_open"), ("f1-bed", "bed_empty")}
    assert health["ok"] is False

    # The bed is slept in again and the door closes: nothing is stuck any more.
    _report(db, site, "f1-bed", "f1", "bed.enter", timedelta(minutes=1))
    _report(db, site, "f1-door", "f1", "door.closed", timedelta(minutes=1))
    health = http.get(f"/api/v1/sites/{site}/health",
                      headers=headers_for(make_user("staff", site))).json()
    assert health["stuck"] == []
