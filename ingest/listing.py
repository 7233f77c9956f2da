"""Read-only listings of what is provisioned, for an admin: sites with their counts, monitoring
bases, devices of every site (revoked ones too), accounts with their state.

For ``nattero site list``, ``device list`` and ``user list`` and for ``nattero site apply``,
which compares a layout with what is stored (rooms and sites: ``ingest.sites``). Never
returns a password hash; never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import psycopg

__all__ = ["BasisRow", "DeviceRow", "SiteOverview", "UserRow", "list_bases", "list_devices",
           "list_users", "site_overview"]


@dataclass(frozen=True, slots=True)
class SiteOverview:
    id: str
    name: str
    tz: str
    night_start: time
    night_end: time
    rooms: int
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


def site_overview(conn: psycopg.Connection) -> list[SiteOverview]:
    """Every site with how many rooms and active devices it has, ordered by id."""
    rows = conn.execute(
        "SELECT s.id, s.name, s.tz, s.night_start, s.night_end,"
        " (SELECT count(*) FROM rooms r WHERE r.site = s.id),"
        " (SELECT count(*) FROM devices d WHERE d.site = s.id AND d.revoked_at IS NULL)"
        " FROM sites s ORDER BY s.id").fetchall()
    return [SiteOverview(*row) for row in rows]


def list_bases(conn: psycopg.Connection, site: str) -> list[BasisRow]:
    """Every basis ever recorded for the site's flats, oldest first."""
    rows = conn.execute(
        "SELECT site, room, kind, reference, valid_from, valid_to FROM room_bases"
        " WHERE site = %s ORDER BY id", (site,)).fetchall()
    return [BasisRow(*row) for row in rows]


def list_devices(conn: psycopg.Connection, site: str | None = None) -> list[DeviceRow]:
    """Devices of one site or of all, revoked ones included, ordered by site and id."""
    rows = conn.execute(
        "SELECT site, id, room, kind, source, presence, battery, last_event_at, revoked_at"
        " FROM devices WHERE %(site)s::text IS NULL OR site = %(site)s"
        " ORDER BY site, id", {"site": site}).fetchall()
    return [DeviceRow(*row) for row in rows]


def list_users(conn: psycopg.Connection) -> list[UserRow]:
    """Accounts with their role, sites and state; never a password hash. ``locked_until``:
    the latest end of a lock on one of the account's clients (``login_locks``)."""
    rows = conn.execute(
        "SELECT username, role, sites, disabled, (SELECT max(l.locked_until) FROM login_locks l"
        " WHERE l.user_id = users.id AND l.locked_until > now()) FROM users"
        " ORDER BY username").fetchall()
    return [UserRow(username, role, tuple(sites), disabled, locked_until)
            for username, role, sites, disabled, locked_until in rows]
