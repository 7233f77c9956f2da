"""Elsys objects (ERS, ERS Eye, EMS...), as written by Elsys's generic payload decoder.

Source: the Elsys generic decoder (types 0x05 ``motion``, 0x0D ``digital``, 0x11
``occupancy``), as ported e.g. in maclarensg/ruby-elsys-decoder ``elsys.rb``.

* ``motion``: number of PIR triggers since the last uplink; above 0 → ``motion``.
* ``occupancy``: 0 unoccupied → ``presence.off``, 2 occupied → ``presence.on``; 1 is
  Elsys's "pending" (movement seen, occupancy not yet confirmed) and changes nothing.
* ``digital``: the external digital input, for a door contact wired to it:
  1 → ``door.open``, 0 → ``door.closed``. That polarity assumes a normally-closed reed wired
  so the input reads 1 when the magnet is away; check it on site with one opening.

Elsys reports the supply voltage (``vdd``, mV), not a percentage, so battery stays unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.events import DeviceKind, EventKind

from .mapping import Reading, invalid_value, require_kind, require_known_keys

NAME = "elsys"

# Keys the generic decoder writes for the measurements an ERS/EMS reports alongside.
_MEASUREMENTS = (
    "temperature", "humidity", "light", "motion", "co2", "vdd", "digital", "occupancy",
    "x", "y", "z", "accMotion", "waterleak", "pressure", "soundPeak", "soundAvg",
)


def elsys(decoded: Mapping[str, Any], kind: DeviceKind) -> list[Reading]:
    """Door (``digital``) or motion (``motion`` count, ``occupancy``) readings."""
    require_kind(NAME, kind, (DeviceKind.DOOR, DeviceKind.EXIT, DeviceKind.MOTION))
    require_known_keys(NAME, decoded, _MEASUREMENTS)
    readings = _door(decoded) if kind is not DeviceKind.MOTION else _motion(decoded)
    return readings or [(EventKind.HEARTBEAT, None)]


def _door(decoded: Mapping[str, Any]) -> list[Reading]:
    digital = _small_int(decoded, "digital", (0, 1))
    if digital is None:
        return []
    return [(EventKind.DOOR_OPEN if digital == 1 else EventKind.DOOR_CLOSED, None)]


def _motion(decoded: Mapping[str, Any]) -> list[Reading]:
    readings: list[Reading] = []
    count = decoded.get("motion")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise invalid_value(NAME, "motion", count, "a count 0-255")
        if count > 0:
            readings.append((EventKind.MOTION, None))
    occupancy = _small_int(decoded, "occupancy", (0, 1, 2))
    if occupancy == 2:
        readings.append((EventKind.PRESENCE_ON, None))
    elif occupancy == 0:
        readings.append((EventKind.PRESENCE_OFF, None))
    return readings


def _small_int(decoded: Mapping[str, Any], key: str, allowed: tuple[int, ...]) -> int | None:
    value = decoded.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or value not in allowed:
        raise invalid_value(NAME, key, value, " or ".join(str(a) for a in allowed))
    return int(value)
