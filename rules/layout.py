"""What the rules engine knows of a site: its night window, rooms, devices and bases.

A flat is monitored at an instant only while one of its recorded bases (the resident's
consent, or a municipal decision with a reference) covers the site-local date of that
instant; ``valid_from`` and ``valid_to`` are both inclusive. Common rooms and building
exits concern no single resident and are always monitored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType

from core.events import DeviceKind, RoomKind
from core.night_window import NightWindow
from rules.errors import LayoutError

__all__ = ["BasisKind", "DeviceInfo", "MonitoringBasis", "RoomInfo", "SiteLayout"]

DEFAULT_HEARTBEAT_S = 300


class BasisKind(StrEnum):
    CONSENT = "consent"
    DECISION = "decision"


@dataclass(frozen=True, slots=True)
class MonitoringBasis:
    """Why a flat may be monitored, and from/to which local dates (inclusive).

    A decision needs its reference and a ``valid_from``; a consent may leave both out
    (``valid_from=None`` means "since before anything we evaluate").
    """

    kind: BasisKind
    reference: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", BasisKind(self.kind))
        if self.kind is BasisKind.DECISION and (not self.reference or self.valid_from is None):
            raise LayoutError(
                "a municipal decision needs its reference and a valid-from date, e.g. "
                "nattero room basis SITE ROOM --decision REF --valid-from 2026-01-01"
            )
        if (
            self.valid_from is not None
            and self.valid_to is not None
            and self.valid_to < self.valid_from
        ):
            raise LayoutError(
                f"basis {self.reference or self.kind} ends ({self.valid_to}) before it starts "
                f"({self.valid_from})"
            )

    def covers(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to


@dataclass(frozen=True, slots=True)
class RoomInfo:
    kind: RoomKind
    label: str = ""
    bases: Sequence[MonitoringBasis] = ()
    # For a flat: the common room its door opens onto (a corridor with a motion sensor),
    # if known. Someone coming home walks through it just before the door opens.
    corridor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", RoomKind(self.kind))
        object.__setattr__(self, "bases", tuple(self.bases))


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    room: str
    kind: DeviceKind
    heartbeat_s: int = DEFAULT_HEARTBEAT_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DeviceKind(self.kind))
        if self.heartbeat_s <= 0:
            raise LayoutError(f"heartbeat interval must be positive, got {self.heartbeat_s} s")


@dataclass(frozen=True, slots=True)
class SiteLayout:
    """A site as the rules see it. Every device must sit in one of the site's rooms."""

    site: str
    night: NightWindow
    rooms: Mapping[str, RoomInfo] = field(default_factory=dict)
    devices: Mapping[str, DeviceInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rooms", MappingProxyType(dict(self.rooms)))
        object.__setattr__(self, "devices", MappingProxyType(dict(self.devices)))
        for room, room_info in self.rooms.items():
            if room_info.corridor is not None and (
                    room_info.corridor not in self.rooms
                    or self.rooms[room_info.corridor].kind is not RoomKind.COMMON):
                raise LayoutError(
                    f"room {room!r} of site {self.site!r} opens onto {room_info.corridor!r}, "
                    "which is not a common room of the site; name a common room")
        for device, info in self.devices.items():
            if info.room not in self.rooms:
                raise LayoutError(
                    f"device {device!r} sits in room {info.room!r}, which site {self.site!r} "
                    f"does not have; add it with: nattero room add {self.site} {info.room} "
                    "--kind flat|common|exit"
                )

    def is_monitored(self, room: str, ts: datetime) -> bool:
        """True if resident alerts may be raised for ``room`` at ``ts`` (see module doc)."""
        info = self.rooms[room]
        if info.kind is not RoomKind.FLAT:
            return True
        day = ts.astimezone(self.night.tz).date()
        return any(basis.covers(day) for basis in info.bases)
