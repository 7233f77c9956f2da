"""Reading a site's layout: the site rows, its rooms (monitored or not), its devices and
their health, as the board, the admin API and the evaluation see them.

Writes (adding sites, rooms, bases and devices) are in ``ingest.layouts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

import psycopg

from core.events import DeviceKind, RoomKind, fits_in

__all__ = [
    "DeviceHealth", "DeviceMove", "DeviceView", "RoomView", "SiteRecord", "active_devices",
    "count_flats", "count_rooms", "delete_room", "delete_site", "device_health", "device_kinds",
    "existing_sites", "list_sites", "move_device", "room_exists", "room_kind", "room_labels",
    "rooms_with_monitoring", "site_exists", "sites_by_id",
]


@dataclass(frozen=True, slots=True)
class SiteRecord:
    id: str
    name: str
    tz: str
    night_start: time
    night_end: time
    resolve_notes: bool = False  # free-text resolve notes allowed (off: outcome codes only)


@dataclass(frozen=True, slots=True)
class RoomView:
    id: str
    kind: str
    label: str
    monitored: bool  # a flat is monitored only with a basis valid today (site's local date)
    corridor: str | None = None  # a flat's corridor: its floor, for rounds on the board


@dataclass(frozen=True, slots=True)
class DeviceView:
    id: str
    room: str
    kind: str
    source: str
    presence: str
    battery: int | None
    last_event_at: datetime | None
    heartbeat_s: int


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    device: str
    room: str
    presence: str
    battery: int | None
    last_event_at: datetime | None
    last_received_at: datetime | None
    silent: bool
    clock_offset_s: float | None = None  # device clock - arrival, median of recent events
    clock_samples: int = 0


CLOCK_WINDOW = timedelta(hours=1)  # the events a device's clock offset is estimated from
CLOCK_SAMPLES = 25

_SITE_COLUMNS = "SELECT id, name, tz, night_start, night_end, resolve_notes FROM sites"


def set_resolve_notes(conn: psycopg.Connection, site: str, allowed: bool) -> bool:
    """Allow or forbid free-text resolve notes on ``site``; False when there is no such site."""
    return conn.execute("UPDATE sites SET resolve_notes = %s WHERE id = %s RETURNING id",
                        (allowed, site)).fetchone() is not None


def resolve_notes_allowed(conn: psycopg.Connection, site: str) -> bool:
    row = conn.execute("SELECT resolve_notes FROM sites WHERE id = %s", (site,)).fetchone()
    return bool(row and row[0])


def existing_sites(conn: psycopg.Connection, sites: list[str]) -> set[str]:
    """Those of ``sites`` that exist."""
    rows = conn.execute("SELECT id FROM sites WHERE id = ANY(%s)", (sites,)).fetchall()
    return {row[0] for row in rows}


def site_exists(conn: psycopg.Connection, site: str) -> bool:
    return conn.execute("SELECT 1 FROM sites WHERE id = %s", (site,)).fetchone() is not None


def room_exists(conn: psycopg.Connection, site: str, room: str) -> bool:
    return conn.execute("SELECT 1 FROM rooms WHERE site = %s AND id = %s",
                        (site, room)).fetchone() is not None


def list_sites(conn: psycopg.Connection, only: list[str] | None = None) -> list[SiteRecord]:
    """Every site, or those in ``only``, ordered by id."""
    if only is None:
        rows = conn.execute(_SITE_COLUMNS + " ORDER BY id").fetchall()
    else:
        rows = conn.execute(_SITE_COLUMNS + " WHERE id = ANY(%s) ORDER BY id",
                            (only,)).fetchall()
    return [SiteRecord(*row) for row in rows]


def sites_by_id(conn: psycopg.Connection, sites: list[str]) -> dict[str, SiteRecord]:
    """Those of ``sites`` that exist, by id."""
    rows = conn.execute(_SITE_COLUMNS + " WHERE id = ANY(%s)", (sites,)).fetchall()
    return {row[0]: SiteRecord(*row) for row in rows}


def rooms_with_monitoring(conn: psycopg.Connection, site: str) -> list[RoomView]:
    rows = conn.execute(
        "SELECT r.id, r.kind, r.label, (r.kind <> 'flat' OR EXISTS ("
        "  SELECT 1 FROM room_bases b WHERE b.site = r.site AND b.room = r.id"
        "  AND b.valid_from <= (now() AT TIME ZONE s.tz)::date"
        "  AND (b.valid_to IS NULL OR b.valid_to >= (now() AT TIME ZONE s.tz)::date)"
        ")) AS monitored, r.corridor "
        "FROM rooms r JOIN sites s ON s.id = r.site WHERE r.site = %s ORDER BY r.id",
        (site,)).fetchall()
    return [RoomView(*row) for row in rows]


def active_devices(conn: psycopg.Connection, site: str) -> list[DeviceView]:
    """The site's devices that are not revoked, ordered by id."""
    rows = conn.execute(
        "SELECT id, room, kind, source, presence, battery, last_event_at, heartbeat_s "
        "FROM devices WHERE site = %s AND revoked_at IS NULL ORDER BY id", (site,)).fetchall()
    return [DeviceView(*row) for row in rows]


def device_health(conn: psycopg.Connection, site: str) -> tuple[list[DeviceHealth], datetime]:
    """The active devices' presence, battery and silence, and the database's ``now()``."""
    rows = conn.execute(
        # Silence is about arrival (wall clock), not the devices' own event time: a
        # buffered, skewed or replayed device can be current with old timestamps.
        "SELECT d.id AS device, d.room, d.presence, d.battery, d.last_event_at,"
        " d.last_received_at,"
        " (d.last_received_at IS NULL OR d.last_received_at < now() - make_interval("
        "   secs => 2 * d.heartbeat_s)) AS silent, o.offset_s, o.samples "
        "FROM devices d "
        # The clock offset: the median of ts - arrival over the device's last events of the
        # hour (robust: a buffered burst or one odd stamp does not move it). Events the
        # gateway refused as stamped in the future are dead letters, not counted here.
        "CROSS JOIN LATERAL (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY "
        "    extract(epoch FROM r.ts - r.received_at))::float8 AS offset_s,"
        "    count(*)::int AS samples FROM ("
        "  SELECT e.ts, e.received_at FROM events e WHERE e.site = d.site AND e.device = d.id"
        "  AND e.received_at > now() - %s ORDER BY e.received_at DESC LIMIT %s) r) o "
        "WHERE d.site = %s AND d.revoked_at IS NULL ORDER BY d.id",
        (CLOCK_WINDOW, CLOCK_SAMPLES, site)).fetchall()
    checked = conn.execute("SELECT now()").fetchone()
    assert checked is not None
    now: datetime = checked[0]
    return [DeviceHealth(*row) for row in rows], now


def count_rooms(conn: psycopg.Connection, sites: list[str]) -> int:
    row = conn.execute("SELECT count(*) FROM rooms WHERE site = ANY(%s)", (sites,)).fetchone()
    return int(row[0]) if row else 0


def count_flats(conn: psycopg.Connection, site: str) -> int:
    row = conn.execute("SELECT count(*) FROM rooms WHERE site = %s AND kind = 'flat'",
                       (site,)).fetchone()
    return int(row[0]) if row else 0


def room_labels(conn: psycopg.Connection, site: str) -> dict[str, str]:
    """Room id -> label, every room of the site."""
    rows = conn.execute("SELECT id, label FROM rooms WHERE site = %s", (site,)).fetchall()
    return {row[0]: row[1] for row in rows}


def device_kinds(conn: psycopg.Connection, site: str) -> dict[str, str]:
    """Device id -> kind, every device of the site (revoked ones too)."""
    rows = conn.execute("SELECT id, kind FROM devices WHERE site = %s", (site,)).fetchall()
    return {row[0]: row[1] for row in rows}


def common_room_ids(conn: psycopg.Connection, site: str) -> set[str]:
    return {row[0] for row in conn.execute(
        "SELECT id FROM rooms WHERE site = %s AND kind = 'common'", (site,))}


def set_room_corridor(conn: psycopg.Connection, site: str, room: str, corridor: str) -> bool:
    """Record the common room a flat's door opens onto; True when it changed."""
    return conn.execute(
        "UPDATE rooms SET corridor = %s WHERE site = %s AND id = %s "
        "AND corridor IS DISTINCT FROM %s", (corridor, site, room, corridor)).rowcount > 0


RoomRemoval = Literal["deleted", "missing", "in_use"]


def delete_room(conn: psycopg.Connection, site: str, room: str) -> RoomRemoval:
    """Delete a room that never held a device nor raised an alert (one added by mistake),
    with its bases and rule settings; flats whose door opened onto it lose that corridor.
    ``in_use``: it has devices (revoked ones too) or alerts, and stays: its history is the
    building's (``ingest.erasure.erase_room`` removes the history of a flat whose resident
    moved out, and keeps the room)."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM rooms WHERE site = %s AND id = %s FOR UPDATE",
                        (site, room)).fetchone() is None:
            return "missing"
        if conn.execute(
                "SELECT 1 FROM devices WHERE site = %(site)s AND room = %(room)s "
                "UNION ALL SELECT 1 FROM alerts WHERE site = %(site)s AND room = %(room)s "
                "LIMIT 1", {"site": site, "room": room}).fetchone() is not None:
            return "in_use"
        conn.execute("DELETE FROM rule_settings WHERE site = %s AND room = %s", (site, room))
        conn.execute("UPDATE rooms SET corridor = NULL WHERE site = %s AND corridor = %s",
                     (site, room))
        conn.execute("DELETE FROM rooms WHERE site = %s AND id = %s", (site, room))
    return "deleted"


MoveOutcome = Literal["moved", "no_device", "no_room", "same_room", "wrong_kind"]


@dataclass(frozen=True, slots=True)
class DeviceMove:
    outcome: MoveOutcome
    before: str | None = None  # the room it sat in
    device_kind: DeviceKind | None = None
    room_kind: RoomKind | None = None  # of the room asked for


def move_device(conn: psycopg.Connection, site: str, device: str, room: str) -> DeviceMove:
    """Move an active device of ``site`` to another of its rooms, one of a kind the device
    fits in (``core.events.fits_in``; else ``wrong_kind``, unchanged). Its stored events
    keep the room they happened in (each event row carries it): the rules engine attributes
    only events stored after the move to ``room`` (``rules.runtime``). A room of another
    site is ``no_room``: rooms are per site."""
    with conn.transaction():
        row = conn.execute(
            "SELECT room, kind FROM devices WHERE site = %s AND id = %s AND revoked_at IS NULL "
            "FOR UPDATE", (site, device)).fetchone()
        if row is None:
            return DeviceMove("no_device")
        before, device_kind = str(row[0]), DeviceKind(row[1])
        found = conn.execute("SELECT kind FROM rooms WHERE site = %s AND id = %s",
                             (site, room)).fetchone()
        if found is None:
            return DeviceMove("no_room", before, device_kind)
        room_kind = RoomKind(found[0])
        if before == room:
            return DeviceMove("same_room", before, device_kind, room_kind)
        if not fits_in(device_kind, room_kind):
            return DeviceMove("wrong_kind", before, device_kind, room_kind)
        conn.execute("UPDATE devices SET room = %s WHERE site = %s AND id = %s",
                     (room, site, device))
    return DeviceMove("moved", before, device_kind, room_kind)


def room_kind(conn: psycopg.Connection, site: str, room: str) -> RoomKind | None:
    row = conn.execute("SELECT kind FROM rooms WHERE site = %s AND id = %s",
                       (site, room)).fetchone()
    return None if row is None else RoomKind(row[0])


SiteRemoval = Literal["deleted", "missing", "has_history"]

# What a site recorded: any of these keeps it (its history is the pilot's evidence). Each
# reads one row through an index on (site, ...): on the events hypertable one index probe
# per chunk, never a scan.
_HISTORY = """SELECT 1 FROM events WHERE site = %(site)s
UNION ALL SELECT 1 FROM alerts WHERE site = %(site)s
UNION ALL SELECT 1 FROM rounds WHERE site = %(site)s
UNION ALL SELECT 1 FROM shift_answers WHERE site = %(site)s
UNION ALL SELECT 1 FROM resident_outcomes WHERE site = %(site)s
UNION ALL SELECT 1 FROM staff_presence WHERE site = %(site)s
LIMIT 1"""


def delete_site(conn: psycopg.Connection, site: str) -> tuple[SiteRemoval, list[str]]:
    """Delete a site that never recorded anything (no event, alert, round, shift answer,
    resident outcome or staff round): its rooms, bases, devices, rule settings, boards,
    roster and the like, in one transaction; staff lose it from their sites. Returns the
    outcome and the broker usernames of its devices, for the caller to delete *after*
    this commits (the broker has no transactions). ``has_history``: it stays, unchanged.
    The audit log keeps what was done to it."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM sites WHERE id = %s FOR UPDATE",
                        (site,)).fetchone() is None:
            return "missing", []
        if conn.execute(_HISTORY, {"site": site}).fetchone() is not None:
            return "has_history", []
        accounts = [username for (username,) in conn.execute(
            "DELETE FROM devices WHERE site = %s AND mqtt_username IS NOT NULL "
            "AND revoked_at IS NULL RETURNING mqtt_username", (site,))]
        conn.execute("DELETE FROM devices WHERE site = %s", (site,))
        conn.execute("DELETE FROM room_bases WHERE site = %s", (site,))
        # A site id may be used again: its old staff must not see the new one.
        conn.execute("UPDATE users SET sites = array_remove(sites, %(site)s) "
                     "WHERE %(site)s = ANY(sites)", {"site": site})
        conn.execute("DELETE FROM sites WHERE id = %s", (site,))  # the rest cascades
    return "deleted", sorted(accounts)
