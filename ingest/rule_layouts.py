"""Sites as the rules see them, read from the store: rooms, bases, devices, rule settings.

Plain stored values (the rules runtime turns them into ``rules.layout`` values and checks
them); read on the rules runtime's connection, or by the writer in a batch's transaction
when an event comes from a device the rules do not know yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time

import psycopg

from core.alerts import RuleName, Severity
from core.events import DeviceKind, RoomKind

__all__ = [
    "StoredBasis", "StoredDevice", "StoredLayouts", "StoredRoom", "StoredRuleSetting",
    "StoredSite", "layout_version", "read_layouts",
]


@dataclass(frozen=True, slots=True)
class StoredSite:
    id: str
    tz: str
    night_start: time
    night_end: time


@dataclass(frozen=True, slots=True)
class StoredRoom:
    site: str
    id: str
    kind: RoomKind
    label: str
    corridor: str | None = None


@dataclass(frozen=True, slots=True)
class StoredBasis:
    """A flat's monitoring basis as recorded (checked by the rules, not here)."""

    site: str
    room: str
    kind: str  # consent | decision
    reference: str | None
    valid_from: date | None
    valid_to: date | None


@dataclass(frozen=True, slots=True)
class StoredDevice:
    """A device that is not revoked."""

    site: str
    id: str
    room: str
    kind: DeviceKind
    heartbeat_s: int


@dataclass(frozen=True, slots=True)
class StoredRuleSetting:
    """A site's (``room`` None) or a room's override of a rule; None fields inherit."""

    site: str
    room: str | None
    rule: RuleName
    enabled: bool | None
    minutes: int | None
    severity: Severity | None


@dataclass(frozen=True, slots=True)
class StoredLayouts:
    sites: tuple[StoredSite, ...]
    rooms: tuple[StoredRoom, ...]
    bases: tuple[StoredBasis, ...]
    devices: tuple[StoredDevice, ...]
    rule_settings: tuple[StoredRuleSetting, ...]


def layout_version(conn: psycopg.Connection) -> int:
    """The layouts' version (migrations 0021 and 0022): it moves with every change to what
    ``read_layouts`` and the gateway's device registry read."""
    row = conn.execute("SELECT version FROM layout_version").fetchone()
    return int(row[0]) if row else 0


def read_layouts(conn: psycopg.Connection,
                 sites: Iterable[str] | None = None) -> StoredLayouts:
    """Every site as stored (or those of ``sites``), on the caller's connection (and in
    its transaction).

    The devices are read first: each statement of a read-committed transaction sees what
    was committed when it began, and ``nattero site apply`` adds a site's devices only
    after its rooms, bases, corridors and rules, so a device read here always comes with
    the rest of its site (read the other way round, a device could arrive without them).
    ``sites``: a leased worker starts a runtime per site; reading the whole installation
    for each made starting 200 sites quadratic.
    """
    only = None if sites is None else list(sites)
    where = "(%(only)s::text[] IS NULL OR {col} = ANY(%(only)s::text[]))"
    by_site = where.format(col="site")
    params = {"only": only}
    devices = tuple(StoredDevice(site, device, room, DeviceKind(kind), heartbeat)
                    for site, device, room, kind, heartbeat in conn.execute(
                        "SELECT site, id, room, kind, heartbeat_s FROM devices "
                        f"WHERE revoked_at IS NULL AND {by_site}", params))
    return StoredLayouts(
        sites=tuple(StoredSite(*row) for row in conn.execute(
            f"SELECT id, tz, night_start, night_end FROM sites WHERE {where.format(col='id')}",
            params)),
        rooms=tuple(StoredRoom(site, room, RoomKind(kind), label, corridor)
                    for site, room, kind, label, corridor
                    in conn.execute("SELECT site, id, kind, label, corridor FROM rooms "
                                    f"WHERE {by_site}", params)),
        bases=tuple(StoredBasis(*row) for row in conn.execute(
            "SELECT site, room, kind, reference, valid_from, valid_to FROM room_bases "
            f"WHERE {by_site}", params)),
        devices=devices,
        rule_settings=tuple(
            StoredRuleSetting(site, room, RuleName(rule), enabled, minutes,
                              Severity(severity) if severity else None)
            for site, room, rule, enabled, minutes, severity in conn.execute(
                "SELECT site, room, rule, enabled, minutes, severity FROM rule_settings "
                f"WHERE {by_site}", params)),
    )
