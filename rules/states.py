"""The explicit state machines: each state is an enum, each move a named transition.

``step(table, state, transition)`` is the only way a state changes; asking for a
transition the current state does not allow raises ``IllegalTransition``. The machines in
``rules.rooms`` and ``rules.devices`` decide which transition an event means, and ignore
sensor input that means none (a second ``door.open`` while the door is open): odd input
is normal, an illegal transition is a bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from rules.errors import IllegalTransition

__all__ = [
    "BATTERY",
    "BED",
    "DOOR",
    "EXCURSION",
    "MOTION",
    "PRESENCE",
    "BatteryLevel",
    "BatteryMove",
    "BedMove",
    "BedState",
    "DevicePresence",
    "DoorMove",
    "DoorState",
    "Excursion",
    "ExcursionMove",
    "MotionEpisode",
    "MotionMove",
    "PresenceMove",
    "step",
]

S = TypeVar("S", bound=StrEnum)
M = TypeVar("M", bound=StrEnum)


def step(table: Mapping[tuple[S, M], S], state: S, move: M) -> S:
    """The state after ``move`` from ``state``; raise IllegalTransition if not allowed."""
    try:
        return table[(state, move)]
    except KeyError:
        allowed = sorted(str(m) for (s, m) in table if s == state) or ["none"]
        raise IllegalTransition(
            f"{type(state).__name__}: transition {move!s} is not allowed from state "
            f"{state!s} (allowed from there: {', '.join(allowed)})"
        ) from None


class Excursion(StrEnum):
    """Where a flat's resident is, as its door and in-flat sensors tell it."""

    HOME = "home"
    LEAVING = "leaving"  # door opened from home, not yet closed
    OUT = "out"  # door closed behind the resident
    RETURNING = "returning"  # door opened while out: back, door not yet closed


class ExcursionMove(StrEnum):
    LEAVE = "leave"
    DOOR_CLOSED = "door_closed"
    RETURN_BY_DOOR = "return_by_door"
    SEEN_INSIDE = "seen_inside"
    ARRIVE = "arrive"  # the door opened from outside: someone came in from a building exit
    LEFT_UNSEEN = "left_unseen"  # that "arrival" was a departure: a building exit followed


EXCURSION: Mapping[tuple[Excursion, ExcursionMove], Excursion] = {
    (Excursion.HOME, ExcursionMove.LEAVE): Excursion.LEAVING,
    (Excursion.HOME, ExcursionMove.ARRIVE): Excursion.RETURNING,
    (Excursion.HOME, ExcursionMove.LEFT_UNSEEN): Excursion.OUT,
    (Excursion.LEAVING, ExcursionMove.DOOR_CLOSED): Excursion.OUT,
    (Excursion.OUT, ExcursionMove.RETURN_BY_DOOR): Excursion.RETURNING,
    (Excursion.OUT, ExcursionMove.SEEN_INSIDE): Excursion.HOME,
    (Excursion.RETURNING, ExcursionMove.DOOR_CLOSED): Excursion.HOME,
    (Excursion.RETURNING, ExcursionMove.SEEN_INSIDE): Excursion.HOME,
}


class BedState(StrEnum):
    IN_BED = "in_bed"
    OUT_OF_BED = "out_of_bed"


class BedMove(StrEnum):
    GET_UP = "get_up"
    LIE_DOWN = "lie_down"


BED: Mapping[tuple[BedState, BedMove], BedState] = {
    (BedState.IN_BED, BedMove.GET_UP): BedState.OUT_OF_BED,
    (BedState.OUT_OF_BED, BedMove.LIE_DOWN): BedState.IN_BED,
}


class MotionEpisode(StrEnum):
    QUIET = "quiet"
    ACTIVE = "active"


class MotionMove(StrEnum):
    START = "start"
    EXPIRE = "expire"


MOTION: Mapping[tuple[MotionEpisode, MotionMove], MotionEpisode] = {
    (MotionEpisode.QUIET, MotionMove.START): MotionEpisode.ACTIVE,
    (MotionEpisode.ACTIVE, MotionMove.EXPIRE): MotionEpisode.QUIET,
}


class DoorState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class DoorMove(StrEnum):
    OPEN = "open"
    CLOSE = "close"


DOOR: Mapping[tuple[DoorState, DoorMove], DoorState] = {
    (DoorState.CLOSED, DoorMove.OPEN): DoorState.OPEN,
    (DoorState.OPEN, DoorMove.CLOSE): DoorState.CLOSED,
}


class DevicePresence(StrEnum):
    """A device's liveness as the rules see it (not the MQTT retained status)."""

    UNHEARD = "unheard"  # provisioned, no sign of life since the engine's clock started
    ONLINE = "online"
    OFFLINE = "offline"


class PresenceMove(StrEnum):
    FIRST_HEARD = "first_heard"
    LOST = "lost"
    RECOVERED = "recovered"


PRESENCE: Mapping[tuple[DevicePresence, PresenceMove], DevicePresence] = {
    (DevicePresence.UNHEARD, PresenceMove.FIRST_HEARD): DevicePresence.ONLINE,
    (DevicePresence.UNHEARD, PresenceMove.LOST): DevicePresence.OFFLINE,
    (DevicePresence.ONLINE, PresenceMove.LOST): DevicePresence.OFFLINE,
    (DevicePresence.OFFLINE, PresenceMove.RECOVERED): DevicePresence.ONLINE,
}


class BatteryLevel(StrEnum):
    OK = "ok"
    LOW = "low"


class BatteryMove(StrEnum):
    DROP = "drop"
    RECHARGE = "recharge"


BATTERY: Mapping[tuple[BatteryLevel, BatteryMove], BatteryLevel] = {
    (BatteryLevel.OK, BatteryMove.DROP): BatteryLevel.LOW,
    (BatteryLevel.LOW, BatteryMove.RECHARGE): BatteryLevel.OK,
}
