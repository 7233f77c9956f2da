"""What the board needs to draw a site: its rooms (monitored or not), devices and health."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from api.deps import ConnDep, CurrentStaff, CurrentUser, existing_site, visible_site
from api.errors import responses
from api.models import SiteId
from api.users import Role
from ingest import sites as stored
from ingest.basis_expiry import WARNING_DAYS, basis_ends
from ingest.push import open_silence
from ingest.sensor_states import StuckState, stuck_sensors

router = APIRouter(prefix="/sites", tags=["sites"])

LOW_BATTERY_BELOW = 15


class SiteOut(BaseModel):
    id: str
    name: str
    tz: str
    night_start: str = Field(pattern=r"^\d{2}:\d{2}$", description="local time HH:MM")
    night_end: str = Field(pattern=r"^\d{2}:\d{2}$", description="local time HH:MM")
    resolve_notes: bool = Field(False, description="free-text resolve notes allowed (else "
                                "outcome codes only; an admin turns them on per site)")

    @field_validator("night_start", "night_end", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        return value.strftime("%H:%M") if isinstance(value, time) else value


class DeviceOut(BaseModel):
    id: str
    kind: Literal["door", "bed", "motion", "exit", "staff"]
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
    corridor: str | None = Field(None, description="a flat's corridor (the common room its "
                                 "door opens onto): its floor, for a round of the floor")
    basis_ends: date | None = Field(
        None, description="a flat's: the last day its basis covers, when that is past or "
        "within the warning window (ingest.basis_expiry.WARNING_DAYS); else null")
    devices: list[DeviceOut]


class DeviceProblem(BaseModel):
    device: str
    room: str
    problem: Literal["offline", "silent", "low_battery"]
    last_event_at: datetime | None
    battery: int | None


class DeviceClock(BaseModel):
    device: str
    room: str
    offset_s: float = Field(
        description="the device's clock less the server's at arrival, in seconds (median of "
        "its last events of the hour): positive = the device is fast. Beyond "
        "NATTERO_EVENT_FUTURE_SKEW_S ahead its events are refused (dead letter future_ts)")
    samples: int = Field(description="how many recent events the estimate is the median of")


class StuckSensorOut(BaseModel):
    device: str
    room: str
    state: StuckState = Field(description="door_open: open for over an hour; bed_empty: "
                              "empty for over 18 hours (a lost message, a sensor out of "
                              "place, or a resident away): its state is not to be relied on")
    since: datetime = Field(description="the event time of the report that began the state")


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
    clocks: list[DeviceClock] = Field(
        description="clock offset per device heard in the last hour (none: no estimate)")
    stuck: list[StuckSensorOut] = Field(
        default_factory=list,
        description="door and bed sensors whose last reported state (open, empty) has lasted "
        "longer than is plausible: the rules treat it as unknown, never as the resident safe")
    no_board_since: datetime | None = Field(
        None, description="during the night: since when no board of the site has been "
        "connected (recorded after NATTERO_BOARD_SILENCE_MINUTES); None while one is")


@router.get("", response_model=list[SiteOut], responses=responses(401, 503))
def list_sites(user: CurrentUser, conn: ConnDep) -> list[SiteOut]:
    """Sites visible to the caller (staff: their own; admin and evaluators: all)."""
    records = stored.list_sites(conn, user.sites if user.role == Role.STAFF else None)
    return [SiteOut.model_validate(record, from_attributes=True) for record in records]


@router.get("/{site}/rooms", response_model=list[RoomOut],
            responses=responses(401, 403, 404, 422, 503))
def list_rooms(site: SiteId, user: CurrentStaff, conn: ConnDep) -> list[RoomOut]:
    """Rooms with kind, label, whether monitored today (a flat needs a valid basis) and
    their devices."""
    visible_site(user, site)
    existing_site(conn, site)
    rooms = stored.rooms_with_monitoring(conn, site)
    ending = {end.room: end.ends for end in basis_ends(conn, WARNING_DAYS, [site])}
    by_room: dict[str, list[DeviceOut]] = {}
    for device in stored.active_devices(conn, site):
        by_room.setdefault(device.room, []).append(
            DeviceOut.model_validate(device, from_attributes=True))
    return [RoomOut.model_validate({"id": room.id, "kind": room.kind, "label": room.label,
                                    "monitored": room.monitored,
                                    "corridor": room.corridor,
                                    "basis_ends": ending.get(room.id),
                                    "devices": by_room.get(room.id, [])})
            for room in rooms]


@router.get("/{site}/health", response_model=SiteHealth,
            responses=responses(401, 403, 404, 422, 503))
def site_health(site: SiteId, user: CurrentStaff, conn: ConnDep) -> SiteHealth:
    """Is data flowing? Offline, silent (no event for 2x heartbeat) and low-battery devices,
    and door or bed sensors stuck in a state for longer than is plausible."""
    visible_site(user, site)
    existing_site(conn, site)
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
    silence = open_silence(conn, site)
    stuck = [StuckSensorOut(device=s.device, room=s.room, state=s.state, since=s.since)
             for s in stuck_sensors(conn, site)]
    return SiteHealth(site=site, checked_at=checked_at, last_event_at=last,
                      devices=len(rows), ok=not (offline or silent or low or silence or stuck),
                      stuck=stuck,
                      no_board_since=silence.silent_since if silence else None,
                      offline=offline,
                      silent=silent, low_battery=low,
                      clocks=[DeviceClock(device=r.device, room=r.room, offset_s=r.clock_offset_s,
                                          samples=r.clock_samples)
                              for r in rows if r.clock_offset_s is not None])
