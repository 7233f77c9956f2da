"""Changing what exists (admin only): a site's name, time zone and night window (or the site,
if it never recorded anything), a room's label (or the room, if added by mistake), a
device's room and password. Every change is audited
(with the values before and after; never a password).

The checks are provisioning's (``provisioning.change_site``, ``relabel_room``); they are
made here first too, so a refusal reads in the request's language. A running rules engine
applies a new night window within seconds (``rules.runtime.LAYOUT_TTL_S``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

import provisioning
from api.deps import ConnDep, CurrentAdmin, SettingsDep, existing_site
from api.errors import Refusal, responses
from api.models import ID_PATTERN, TEXT_PATTERN, DeviceId, RoomId, SiteId
from api.routes.admin import (
    DeviceAccess,
    Done,
    _provisioning_failed,
    device_access,
    wrong_room_kind,
)
from core.errors import ConfigurationError
from core.night_window import NightWindow
from ingest import sites as stored_sites
from ingest.audit import audit
from provisioning import ProvisioningError
from provisioning.broker_accounts import BrokerAccountError

router = APIRouter(tags=["admin"])

_WRITE = responses(400, 401, 403, 404, 422, 503)


class SiteChange(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=TEXT_PATTERN)
    tz: str | None = Field(None, max_length=64, pattern=TEXT_PATTERN,
                           description="IANA time zone, e.g. Europe/Copenhagen")
    night: str | None = Field(None, max_length=11, pattern=TEXT_PATTERN,
                              description="night window HH:MM-HH:MM, e.g. 22:00-07:00")


class RoomChange(BaseModel):
    label: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN,
                       description="shown on the board; never a resident's name")


class DeviceChange(BaseModel):
    room: str = Field(pattern=ID_PATTERN, max_length=63,
                      description="the room of the same site the device now sits in")


@router.patch("/sites/{site}", response_model=Done, responses=_WRITE)
def change_site(site: SiteId, body: SiteChange, admin: CurrentAdmin, conn: ConnDep,
                settings: SettingsDep) -> Done:
    """Change a site's name, time zone or night window (the fields given)."""
    if body.name is None and body.tz is None and body.night is None:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT,
                      "give at least one of: name, tz, night")
    existing_site(conn, site)
    if body.tz is not None:
        try:
            ZoneInfo(body.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT,
                          "time zone '{tz}' is unknown; use an IANA name such as "
                          "Europe/Copenhagen", tz=body.tz) from None
    if body.night is not None:
        try:
            NightWindow.parse(body.night)
        except ConfigurationError:
            raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT,
                          "the night window '{night}' is not HH:MM-HH:MM with times from "
                          "00:00 to 23:59, e.g. 22:00-07:00", night=body.night) from None
    try:
        before = provisioning.change_site(settings, site, name=body.name, tz=body.tz,
                                          night=body.night)
    except ProvisioningError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    after = body.model_dump(exclude_none=True)
    audit(conn, admin.username, "site.change", site, site,
          {"before": {key: before[key] for key in after}, "after": after})
    return Done(message=f"site {site} changed")


@router.patch("/sites/{site}/rooms/{room}", response_model=Done, responses=_WRITE)
def relabel_room(site: SiteId, room: RoomId, body: RoomChange, admin: CurrentAdmin,
                 conn: ConnDep, settings: SettingsDep) -> Done:
    """Give a room a new label (its id, kind, devices and history stay)."""
    if not stored_sites.room_exists(conn, site, room):
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      "room '{room}' does not exist on site '{site}'", room=room, site=site)
    try:
        before = provisioning.relabel_room(settings, site, room, body.label)
    except ProvisioningError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit(conn, admin.username, "room.relabel", site, room,
          {"before": before, "after": body.label.strip()})
    return Done(message=f"room {site}/{room} relabelled")


@router.delete("/sites/{site}/rooms/{room}", response_model=Done,
               responses={**_WRITE, **responses(409)})
def delete_room(site: SiteId, room: RoomId, admin: CurrentAdmin, conn: ConnDep) -> Done:
    """Delete a room added by mistake: one that never held a device nor raised an alert.
    Any other room stays (409): revoke its devices; a moved-out resident's history is
    erased with ``DELETE .../history``, and the room kept for the next."""
    removal = stored_sites.delete_room(conn, site, room)
    if removal == "missing":
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      "room '{room}' does not exist on site '{site}'", room=room, site=site)
    if removal == "in_use":
        raise Refusal(status.HTTP_409_CONFLICT,
                      "room '{room}' has held devices or raised alerts, so it stays; revoke "
                      "its devices, and erase its history when its resident moves out",
                      room=room)
    audit(conn, admin.username, "room.delete", site, room)
    return Done(message=f"room {site}/{room} deleted")


@router.post("/sites/{site}/devices/{device}/rotate", response_model=DeviceAccess,
             responses=_WRITE)
def rotate_device(site: SiteId, device: DeviceId, admin: CurrentAdmin, conn: ConnDep,
                  settings: SettingsDep) -> DeviceAccess:
    """A new MQTT password for a device (its old one stops working at once); the password,
    and the setup file and QR code that carry it, are in this answer only: store it in the
    device now."""
    if not provisioning.device_exists(settings, site, device):
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      "device '{device}' is not provisioned on site '{site}'",
                      device=device, site=site)
    try:
        credentials = provisioning.rotate_device_password(settings, site, device)
    except (ProvisioningError, BrokerAccountError) as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "device.rotate", site, device)
    return device_access(settings, site, device, credentials)


@router.patch("/sites/{site}/devices/{device}", response_model=Done,
              responses={**_WRITE, **responses(409)})
def move_device(site: SiteId, device: DeviceId, body: DeviceChange, admin: CurrentAdmin,
                conn: ConnDep) -> Done:
    """Move a device to another room of its site. Its events from now on count in the new
    room (a running rules engine picks the move up with the device's next event); those
    stored before stay in the room they happened in."""
    existing_site(conn, site)
    move = stored_sites.move_device(conn, site, device, body.room)
    if move.outcome == "no_device":
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      "device '{device}' is not provisioned on site '{site}'",
                      device=device, site=site)
    if move.outcome == "no_room":
        raise Refusal(status.HTTP_404_NOT_FOUND,
                      "room '{room}' does not exist on site '{site}'", room=body.room,
                      site=site)
    if move.outcome == "same_room":
        raise Refusal(status.HTTP_409_CONFLICT,
                      "device '{device}' already sits in room '{room}'", device=device,
                      room=body.room)
    if move.outcome == "wrong_kind":
        assert move.device_kind is not None and move.room_kind is not None
        raise wrong_room_kind(move.device_kind, body.room, move.room_kind)
    audit(conn, admin.username, "device.move", site, device,
          {"before": move.before, "after": body.room})
    return Done(message=f"device {site}/{device} moved to {body.room}")


@router.delete("/sites/{site}", response_model=Done, responses={**_WRITE, **responses(409)})
def delete_site(site: SiteId, admin: CurrentAdmin, conn: ConnDep,
                settings: SettingsDep) -> Done:
    """Delete a site that never recorded anything (a site added by mistake or for a trial
    that never started): its rooms, devices, rules, boards and roster go in one
    transaction, then its devices' broker accounts. A site with history stays (409)."""
    removal, accounts = stored_sites.delete_site(conn, site)
    if removal == "missing":
        raise Refusal(status.HTTP_404_NOT_FOUND, "site '{site}' does not exist", site=site)
    if removal == "has_history":
        raise Refusal(status.HTTP_409_CONFLICT,
                      "site '{site}' has recorded events, alerts or rounds, so it stays: its "
                      "history is the pilot's evidence; revoke its devices instead",
                      site=site)
    audit(conn, admin.username, "site.delete", site, site, {"device_accounts": accounts})
    try:
        provisioning.delete_device_accounts(settings, accounts)
    except BrokerAccountError:
        raise Refusal(status.HTTP_503_SERVICE_UNAVAILABLE,
                      "site '{site}' is deleted, but the broker could not be reached to "
                      "remove its devices' accounts; whatever they send is refused as "
                      "from unknown devices", site=site) from None
    return Done(message=f"site {site} deleted")
