"""What the board needs to draw a site: its rooms (monitored or not), devices and health."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, field_validator

from api.deps import ConnDep, CurrentStaff, CurrentUser, visible_site
from api.errors import Refusal, responses
from api.models import SiteId
from api.users import Role
from ingest import sites as stored

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


@router.get("", response_model=list[SiteOut], responses=responses(401, 503))
def list_sites(user: CurrentUser, conn: ConnDep) -> list[SiteOut]:
    """Sites visible to the caller (staff: their own; admin and evaluators: all)."""
    records = stored.list_sites(conn, user.sites if user.role == Role.STAFF else None)
    return [SiteOut.model_validate(record, from_attributes=True) for record in records]


def _existing(conn: ConnDep, site: str) -> None:
    if not stored.site_exists(conn, site):
        raise Refusal(status.HTTP_404_NOT_FOUND, "site '{site}' does not exist", site=site)


@router.get("/{site}/rooms", response_model=list[RoomOut],
            responses=responses(401, 403, 404, 422, 503))
def list_rooms(site: SiteId, user: CurrentStaff, conn: ConnDep) -> list[RoomOut]:
    """Rooms with kind, label, whether monitored today (a flat needs a valid basis) and
    their devices."""
    visible_site(user, site)
    _existing(conn, site)
    rooms = stored.rooms_with_monitoring(conn, site)
    by_room: dict[str, list[DeviceOut]] = {}
    for device in stored.active_devices(conn, site):
        by_room.setdefault(device.room, []).append(
            DeviceOut.model_validate(device, from_attributes=True))
    return [RoomOut.model_validate({"id": room.id, "kind": room.kind, "label": room.label,
                                    "monitored": room.monitored,
                                    "devices": by_room.get(room.id, [])})
            for room in rooms]


@router.get("/{site}/health", response_model=SiteHealth,
            responses=responses(401, 403, 404, 422, 503))
def site_health(site: SiteId, user: CurrentStaff, conn: ConnDep) -> SiteHealth:
    """Is data flowing? Offline, silent (no event for 2x heartbeat) and low-battery devices."""
    visible_site(user, site)
    _existing(conn, site)
    rows, checked_at = stored.device_health(conn, site)

    def problem(row: stored.DeviceHealth, kind: str) -> DeviceProblem:
        return DeviceProblem.model_validate(
            {"device": row.device, "room": row.room, "problem": kind,
             "last_event_at": row.last_event_at, "battery": row.battery})

    offline = [problem(r, "offline") for r in rows if r.presence == "offline"]
    silent = [problem(r, "silent") for r in rows if r.silent]
    low = [problem(r, "low_battery") for r in rows
           if r.battery is not None and r.battery < LOW_BATTERY_BELOW]
    last = max((r.last_received_at for r in rows if r.last_received_at), default=None)
    return SiteHealth(site=site, checked_at=checked_at, last_event_at=last,
                      devices=len(rows), ok=not (offline or silent or low), offline=offline,
                      silent=silent, low_battery=low)
