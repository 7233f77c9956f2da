"""The one event type every source is normalised into, and the protocol's closed sets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventKind(StrEnum):
    DOOR_OPEN = "door.open"
    DOOR_CLOSED = "door.closed"
    MOTION = "motion"
    PRESENCE_ON = "presence.on"
    PRESENCE_OFF = "presence.off"
    BED_EXIT = "bed.exit"
    BED_ENTER = "bed.enter"
    HEARTBEAT = "heartbeat"


class RoomKind(StrEnum):
    FLAT = "flat"
    COMMON = "common"
    EXIT = "exit"


class DeviceKind(StrEnum):
    DOOR = "door"
    BED = "bed"
    MOTION = "motion"
    EXIT = "exit"
    # Staff on the floor (issue 13 §3): a staff-room door contact or a staff tag reader.
    # Any event of it means staff, not a resident (``rules.staff``).
    STAFF = "staff"


# Where each kind of device is read by the rules (``rules.rooms``): a bed sensor only in a
# flat, a motion sensor in a flat or a common room, a door contact on a flat's or a
# building's door, an exit contact on a building exit; staff devices anywhere. Anywhere
# else its events would be stored and never read, so provisioning refuses it.
ROOM_KINDS_OF: dict[DeviceKind, frozenset[RoomKind]] = {
    DeviceKind.DOOR: frozenset({RoomKind.FLAT, RoomKind.EXIT}),
    DeviceKind.BED: frozenset({RoomKind.FLAT}),
    DeviceKind.MOTION: frozenset({RoomKind.FLAT, RoomKind.COMMON}),
    DeviceKind.EXIT: frozenset({RoomKind.EXIT}),
    DeviceKind.STAFF: frozenset(RoomKind),
}


def fits_in(device: DeviceKind, room: RoomKind) -> bool:
    """Whether a device of kind ``device`` may sit in a room of kind ``room``."""
    return RoomKind(room) in ROOM_KINDS_OF[DeviceKind(device)]


def room_kinds_for(device: DeviceKind) -> str:
    """The room kinds ``device`` fits in, for a message: "flat, exit"."""
    return ", ".join(kind.value for kind in RoomKind if kind in ROOM_KINDS_OF[device])


class DeviceSource(StrEnum):
    NATIVE = "native"
    ZIGBEE2MQTT = "zigbee2mqtt"
    CHIRPSTACK = "chirpstack"


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Event:
    """One sensor observation, as stored. ``ts`` is always timezone-aware UTC."""

    site: str
    device: str
    id: str
    ts: datetime
    kind: EventKind
    battery: int | None = None
    # A bed sensor's state in its heartbeat (protocol v1's optional ``occupied``): evidence
    # that outlives a lost ``bed.exit``/``bed.enter``. None: not reported (or not a bed).
    occupied: bool | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device's ``online``/``offline`` report (MQTT status topic or bridge availability)."""

    site: str
    device: str
    presence: Presence
    ts: datetime
    # Delivered because the gateway (re)subscribed, not because the device just said so:
    # stored as the device's presence, but not a new transition for the rules.
    retained: bool = False
