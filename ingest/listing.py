"""Read-only listings of what is provisioned: sites, rooms, monitoring bases, devices, users.

For ``nattero site list``, ``room list``, ``device list`` and ``user list`` and for
``nattero site apply``, which compares a layout with what is stored. Never returns a
password hash; never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import psycopg

__all__ = ["BasisRow", "DeviceRow", "RoomRow", "SiteRow", "UserRow", "list_bases",
           "list_devices", "list_rooms", "list_sites", "list_users", "site_exists"]


@dataclass(frozen=True, slots=True)
class SiteRow:
    id: str
    name: str
    tz: str
    night_start: time
    night_end: time
    rooms: int
    devices: int            # not revoked


@dataclass(frozen=True, slots=True)
class RoomRow:
    site: str
    id: str
    kind: str
    label: str
    devices: int            # not revoked


@dataclass(frozen=True, slots=True)
class BasisRow:
    site: str
    room: str
    kind: str               # consent | decision
    reference: str | None
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True, slots=True)
class DeviceRow:
    site: str
    id: str
    room: str
    kind: str
    source: str
    presence: str
    battery: int | None
    last_event_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    role: str
    sites: tuple[str, ...]
    disabled: bool
    locked_until: datetime | None


def list_sites(dsn: str) -> list[SiteRow]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT s.id, s.name, s.tz, s.night_start, s.night_end,"
            " (SELECT count(*) FROM rooms r WHERE r.site = s.id),"
            " (SELECT count(*) FROM devices d WHERE d.site = s.id AND d.revoked_at IS NULL)"
            " FROM sites s ORDER BY s.id").fetchall()
    return [SiteRow(*row) for row in rows]


def site_exists(dsn: str, site: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM sites WHERE id = %s", (site,)).fetchone() is not None


def list_rooms(dsn: str, site: str) -> list[RoomRow]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT r.site, r.id, r.kind, r.label,"
            " (SELECT count(*) FROM devices d"
            "   WHERE d.site = r.site AND d.room = r.id AND d.revoked_at IS NULL)"
            " FROM rooms r WHERE r.site = %s ORDER BY r.id", (site,)).fetchall()
    return [RoomRow(*row) for row in rows]


def list_bases(dsn: str, site: str) -> list[BasisRow]:
    """Every basis ever recorded for the site's flats, oldest first."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT site, room, kind, reference, valid_from, valid_to FROM room_bases"
            " WHERE site = %s ORDER BY id", (site,)).fetchall()
    return [BasisRow(*row) for row in rows]


def list_devices(dsn: str, site: str | None = None) -> list[DeviceRow]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT site, id, room, kind, source, presence, battery, last_event_at, revoked_at"
            " FROM devices WHERE %(site)s::text IS NULL OR site = %(site)s"
            " ORDER BY site, id", {"site": site}).fetchall()
    return [DeviceRow(*row) for row in rows]


def list_users(dsn: str) -> list[UserRow]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT username, role, sites, disabled, locked_until FROM users"
            " ORDER BY username").fetchall()
    return [UserRow(username, role, tuple(sites), disabled, locked_until)
            for username, role, sites, disabled, locked_until in rows]
