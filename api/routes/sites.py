"""What the board needs to draw a site: its rooms (monitored or not), devices and health."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from fastapi import APIRouter, HTTPException, status
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, field_validator

from api.deps import ConnDep, CurrentStaff, CurrentUser, visible_site
from api.errors import responses
from api.models import SiteId
from api.users import Role

router = APIRouter(prefix="/sites", tags=["sites"])

LOW_BATTERY_BELOW = 15


class SiteOut(BaseModel):
    id: str
    name: str
    tz: str
    night_start: str = Field(pattern=r"^\d{2}:\d{2}$", description="local time HH:MM")
    night_end: str = Field(pattern=r"^\d{2}:\d{2}$", description="local time HH:MM")

    @field_validator("night_start", "night_end", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        return value.strftime("%H:%M") if isinstance(value, time) else value


class DeviceOut(BaseModel):
    id: str
    kind: Literal["door", "bed", "motion", "exit"]
    source: str
    presence: str
    battery: int | None
    last_event_at: datetime | None
    heartbeat_s: int


class RoomOut(BaseModel):
    id: str
    kind: Literal["flat", "common", "exit"]
    label: str
    monitored: bool
    devices: list[DeviceOut]


class DeviceProblem(BaseModel):
    device: str
    room: str
    problem: Literal["offline", "silent", "low_battery"]
    last_event_at: datetime | None
    battery: int | None


class SiteHealth(BaseModel):
    site: str
    checked_at: datetime
    last_event_at: datetime | None = Field(
        description="when data last arrived from the site (server clock)")
    devices: int
    ok: bool
    offline: list[DeviceProblem]
    silent: list[DeviceProblem]
    low_battery: list[DeviceProblem]


_SITE_COLUMNS = "SELECT id, name, tz, night_start, night_end FROM sites"


@router.get("", response_model=list[SiteOut], responses=responses(401, 503))
def list_sites(user: CurrentUser, conn: ConnDep) -> list[SiteOut]:
    """Sites visible to the caller (staff: their own; admin and evaluators: all)."""
    with conn.cursor(row_factory=dict_row) as cur:
        if user.role == Role.STAFF:
            rows = cur.execute(_SITE_COLUMNS + " WHERE id = ANY(%s) ORDER BY id",
                               (user.sites,)).fetchall()
        else:
            rows = cur.execute(_SITE_COLUMNS + " ORDER BY id").fetchall()
    return [SiteOut.model_validate(row) for row in rows]


def _existing(conn: ConnDep, site: str) -> None:
    if conn.execute("SELECT 1 FROM sites WHERE id = %s", (site,)).fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"site {site!r} does not exist")


@router.get("/{site}/rooms", response_model=list[RoomOut],
            responses=responses(401, 403, 404, 422, 503))
def list_rooms(site: SiteId, user: CurrentStaff, conn: ConnDep) -> list[RoomOut]:
    """Rooms with kind, label, whether monitored today (a flat needs a valid basis) and
    their devices."""
    visible_site(user, site)
    _existing(conn, site)
    with conn.cursor(row_factory=dict_row) as cur:
        rooms = cur.execute(
            "SELECT r.id, r.kind, r.label, (r.kind <> 'flat' OR EXISTS ("
            "  SELECT 1 FROM room_bases b WHERE b.site = r.site AND b.room = r.id"
            "  AND b.valid_from <= (now() AT TIME ZONE s.tz)::date"
            "  AND (b.valid_to IS NULL OR b.valid_to >= (now() AT TIME ZONE s.tz)::date)"
            ")) AS monitored "
            "FROM rooms r JOIN sites s ON s.id = r.site WHERE r.site = %s ORDER BY r.id",
            (site,)).fetchall()
        devices = cur.execute(
            "SELECT id, room, kind, source, presence, battery, last_event_at, heartbeat_s "
            "FROM devices WHERE site = %s AND revoked_at IS NULL ORDER BY id",
            (site,)).fetchall()
    by_room: dict[str, list[DeviceOut]] = {}
    for device in devices:
        by_room.setdefault(device["room"], []).append(DeviceOut.model_validate(device))
    return [RoomOut(**room, devices=by_room.get(room["id"], [])) for room in rooms]


@router.get("/{site}/health", response_model=SiteHealth,
            responses=responses(401, 403, 404, 422, 503))
def site_health(site: SiteId, user: CurrentStaff, conn: ConnDep) -> SiteHealth:
    """Is data flowing? Offline, silent (no event for 2x heartbeat) and low-battery devices."""
    visible_site(user, site)
    _existing(conn, site)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            # Silence is about arrival (wall clock), not the devices' own event time: a
            # buffered, skewed or replayed device can be current with old timestamps.
            "SELECT id AS device, room, presence, battery, last_event_at, last_received_at,"
            " (last_received_at IS NULL OR last_received_at < now() - make_interval("
            "   secs => 2 * heartbeat_s)) AS silent "
            "FROM devices WHERE site = %s AND revoked_at IS NULL ORDER BY id",
            (site,)).fetchall()
        checked = cur.execute("SELECT now() AS now").fetchone()
    assert checked is not None

    def problem(row: dict[str, object], kind: str) -> DeviceProblem:
        return DeviceProblem.model_validate({**row, "problem": kind})

    offline = [problem(r, "offline") for r in rows if r["presence"] == "offline"]
    silent = [problem(r, "silent") for r in rows if r["silent"]]
    low = [problem(r, "low_battery") for r in rows
           if r["battery"] is not None and r["battery"] < LOW_BATTERY_BELOW]
    last = max((r["last_received_at"] for r in rows if r["last_received_at"]), default=None)
    return SiteHealth(site=site, checked_at=checked["now"], last_event_at=last,
                      devices=len(rows), ok=not (offline or silent or low), offline=offline,
                      silent=silent, low_battery=low)
