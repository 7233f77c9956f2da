"""Sensors whose last reported state has lasted longer than is plausible (issue 13 §4).

A door contact reports ``door.open`` and ``door.closed``, a bed sensor ``bed.exit`` and
``bed.enter``. When the message that ends a state is lost (a radio, a hub), the sensor
seems to say "open" or "empty" for hours. The rules already treat that state as evidence,
not truth (a second ``bed.exit`` re-arms the bed's timer; a door that opens again was
closed in between), so it never reads as "resident safe"; this module lets the night staff
and the technician *see* it: the pre-shift check and the site's health list every door
open and every bed empty for longer than a real one would be, so the sensor is checked
(or the resident's absence noted) before the night relies on it.

How long is implausible:

- a flat door or building exit open for more than ``DOOR_OPEN_PLAUSIBLE`` (flat doors and
  exits close by themselves; one held open for an hour is a lost ``door.closed`` or a
  contact out of line);
- a bed empty for more than ``BED_EMPTY_PLAUSIBLE``: longer than a day and the night
  after it, so a resident up since the morning is not flagged at the start of the night,
  but one whose bed has not been slept in across a whole night is (a lost ``bed.enter``, a
  sensor under the mattress moved, or a resident away).

Only events of the last ``LOOK_BACK`` are read (the events hypertable is partitioned by
time): a sensor whose last state change is older than that is reported by the silence
and offline checks instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import psycopg

__all__ = [
    "BED_EMPTY_PLAUSIBLE",
    "DOOR_OPEN_PLAUSIBLE",
    "StuckSensor",
    "StuckState",
    "stuck_sensors",
]

DOOR_OPEN_PLAUSIBLE = timedelta(hours=1)
BED_EMPTY_PLAUSIBLE = timedelta(hours=18)
LOOK_BACK = timedelta(days=7)


class StuckState(StrEnum):
    DOOR_OPEN = "door_open"
    BED_EMPTY = "bed_empty"


@dataclass(frozen=True, slots=True)
class StuckSensor:
    device: str
    room: str
    state: StuckState
    since: datetime  # the event time of the report that began the state


_STATE_OF = {"door.open": StuckState.DOOR_OPEN, "bed.exit": StuckState.BED_EMPTY}
_LIMIT = {StuckState.DOOR_OPEN: DOOR_OPEN_PLAUSIBLE, StuckState.BED_EMPTY: BED_EMPTY_PLAUSIBLE}


def stuck_sensors(conn: psycopg.Connection, site: str) -> list[StuckSensor]:
    """The site's active door and bed sensors whose last state report (open, empty) has
    lasted longer than is plausible, oldest first."""
    rows = conn.execute(
        "SELECT DISTINCT ON (e.device) e.device, d.room, e.kind, e.ts, now() "
        "FROM events e JOIN devices d ON d.site = e.site AND d.id = e.device "
        "WHERE e.site = %s AND d.revoked_at IS NULL AND e.ts > now() - %s "
        "AND e.kind IN ('door.open', 'door.closed', 'bed.exit', 'bed.enter') "
        "ORDER BY e.device, e.ts DESC, e.kind", (site, LOOK_BACK)).fetchall()
    stuck: list[StuckSensor] = []
    for device, room, kind, ts, now in rows:
        state = _STATE_OF.get(kind)
        if state is not None and now - ts > _LIMIT[state]:
            stuck.append(StuckSensor(device, room, state, ts))
    return sorted(stuck, key=lambda s: (s.since, s.device))
