"""Milesight WS301 (door/window contact) and WS202 (PIR) objects, per decoder version.

Sources: Milesight-IoT/SensorDecoders, ``WS_Series/WS301`` and ``WS_Series/WS202``.

* ``milesight-ws301``: the decoders published since 2023 (``WS301_Chirpstack_v4.js``,
  ``WS301_Decoder.js``) write ``magnet_status: "open"|"close"`` and ``tamper_status``; the
  2025 decoder writes the raw byte instead (``1`` open, ``0`` close) when its ``RAW_VALUE``
  switch is set, so both are read.
* ``milesight-ws301-legacy``: the older decoder documented in the WS301 README writes
  ``state: "open"|"close"`` and ``install``.
* ``milesight-ws202``: ``pir: "trigger"|"normal"`` (raw ``1``/``0``) and ``daylight``.

Every decoder writes ``battery`` as a percentage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.events import DeviceKind, EventKind

from ..payload import battery_percent
from .mapping import (
    Reading,
    invalid_value,
    refuse_other_version,
    require_kind,
    require_known_keys,
)

_DOORS = (DeviceKind.DOOR, DeviceKind.EXIT)

# Keys the 2023+ decoders write for device information and downlink answers; an uplink with
# only these is still a sign of life.
_DEVICE_INFO = (
    "ipso_version", "hardware_version", "firmware_version", "tsl_version", "sn",
    "lorawan_class", "reset_event", "device_status", "report_interval", "reboot",
    "query_device_status",
)


def ws301(decoded: Mapping[str, Any], kind: DeviceKind) -> list[Reading]:
    """WS301 door contact, decoders since 2023: ``magnet_status``."""
    name = "milesight-ws301"
    require_kind(name, kind, _DOORS)
    refuse_other_version(name, decoded, "magnet_status", "state", "milesight-ws301-legacy")
    require_known_keys(name, decoded, ("battery", "magnet_status", "tamper_status", *_DEVICE_INFO))
    return _door(name, decoded, "magnet_status")


def ws301_legacy(decoded: Mapping[str, Any], kind: DeviceKind) -> list[Reading]:
    """WS301 door contact, the older decoder of the README: ``state``."""
    name = "milesight-ws301-legacy"
    require_kind(name, kind, _DOORS)
    refuse_other_version(name, decoded, "state", "magnet_status", "milesight-ws301")
    require_known_keys(name, decoded, ("battery", "state", "install"))
    return _door(name, decoded, "state")


def ws202(decoded: Mapping[str, Any], kind: DeviceKind) -> list[Reading]:
    """WS202 PIR: ``pir`` trigger → motion + presence.on, normal → presence.off."""
    name = "milesight-ws202"
    require_kind(name, kind, (DeviceKind.MOTION,))
    require_known_keys(name, decoded, ("battery", "pir", "daylight", *_DEVICE_INFO))
    battery = battery_percent(decoded.get("battery"))
    pir = decoded.get("pir")
    if pir is None:
        return [(EventKind.HEARTBEAT, battery)]
    if isinstance(pir, bool):
        raise invalid_value(name, "pir", pir, '"trigger" or "normal" (raw 1 or 0)')
    if pir in ("trigger", 1):
        return [(EventKind.MOTION, battery), (EventKind.PRESENCE_ON, battery)]
    if pir in ("normal", 0):
        return [(EventKind.PRESENCE_OFF, battery)]
    raise invalid_value(name, "pir", pir, '"trigger" or "normal" (raw 1 or 0)')


def _door(name: str, decoded: Mapping[str, Any], key: str) -> list[Reading]:
    battery = battery_percent(decoded.get("battery"))
    value = decoded.get(key)
    if value is None:
        return [(EventKind.HEARTBEAT, battery)]
    # bool is an int in Python; a JSON true is not a value these decoders write.
    if not isinstance(value, bool) and value in ("open", 1):
        return [(EventKind.DOOR_OPEN, battery)]
    if not isinstance(value, bool) and value in ("close", 0):
        return [(EventKind.DOOR_CLOSED, battery)]
    raise invalid_value(name, key, value, '"open" or "close" (raw 1 or 0)')
