"""Administration (admin only): sites, rooms, monitoring bases, devices, users, rules.

Provisioning goes through ``provisioning`` - the same code as the CLI - and its
``ProvisioningError`` becomes 422 with its message. Every change is written to the audit log.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Path, status
from pydantic import BaseModel, Field, model_validator

import provisioning
from api import users
from api.deps import ConnDep, CurrentAdmin, NowDep, SettingsDep, existing_site
from api.errors import Invalid, Refusal, responses
from api.models import ID_PATTERN, SITE_PATTERN, TEXT_PATTERN, DeviceId, RoomId, SiteId
from api.users import Account, Role, User, UserError, create_user, list_users
from core.events import DeviceKind, RoomKind, fits_in, room_kinds_for
from core.i18n import mark
from core.night_window import DEFAULT_NIGHT, DEFAULT_TIME_ZONE
from core.settings import Settings
from ingest import sites as stored_sites
from ingest.audit import audit
from ingest.rule_settings import upsert_rule_setting
from provisioning import DeviceCredentials, ProvisioningError
from provisioning.broker_accounts import BrokerAccountError
from provisioning.device_setup import DeviceSetup, device_setup, setup_qr_svg, setup_text
from provisioning.sites import WRONG_ROOM_KIND
from rules.settings import RuleName, Severity

router = APIRouter(tags=["admin"])

_WRITE = responses(400, 401, 403, 404, 422, 503)


class NewSite(BaseModel):
    id: str = Field(pattern=SITE_PATTERN, examples=["solsikken"])
    name: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    tz: str = Field(DEFAULT_TIME_ZONE, max_length=64, pattern=TEXT_PATTERN)
    night: str = Field(DEFAULT_NIGHT, description="night window HH:MM-HH:MM", max_length=11,
                       pattern=TEXT_PATTERN)


class NewRoom(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    kind: RoomKind
    label: str | None = Field(None, max_length=200, pattern=TEXT_PATTERN,
                              description="shown on the board; no names")


class NewBasis(BaseModel):
    kind: Literal["consent", "decision"]
    reference: str | None = Field(None, max_length=200, pattern=TEXT_PATTERN,
                                  description="decision reference")
    valid_from: date | None = None
    valid_to: date | None = None


class DeviceAccess(DeviceCredentials):
    """A device's new broker account, with its whole setup as a file and a QR code: in
    this answer only (the password is stored nowhere but the broker)."""

    setup: DeviceSetup
    setup_file: str = Field(description="the setup as a file's JSON text; the QR code "
                            "encodes exactly this text")
    qr_svg: str = Field(description="the setup as a QR code: an SVG data: URI")


def wrong_room_kind(kind: DeviceKind, room: str, room_kind: RoomKind) -> Refusal:
    """422: a device of ``kind`` in a room of ``room_kind`` is never read by the rules."""
    return Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, WRONG_ROOM_KIND, kind=kind.value,
                   room=room, room_kind=room_kind.value, kinds=room_kinds_for(kind))


def device_access(settings: Settings, site: str, device: str,
                  credentials: DeviceCredentials) -> DeviceAccess:
    setup = device_setup(settings, site, device, credentials)
    return DeviceAccess(**credentials.model_dump(), setup=setup, setup_file=setup_text(setup),
                        qr_svg=setup_qr_svg(setup))


class NewDevice(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    room: str = Field(pattern=ID_PATTERN)
    kind: DeviceKind
    heartbeat_s: int = Field(300, ge=10, le=86400)


class NewUser(BaseModel):
    username: str = Field(min_length=2, max_length=63, pattern=TEXT_PATTERN)
    password: str = Field(min_length=10, max_length=1024, pattern=r"^[^\x00]*$")
    role: Role
    sites: list[Annotated[str, Field(pattern=SITE_PATTERN)]] = Field(default_factory=list)


class NewPassword(BaseModel):
    password: str = Field(min_length=10, max_length=1024, pattern=r"^[^\x00]*$")


Username = Annotated[str, Path(min_length=2, max_length=63, pattern=TEXT_PATTERN,
                               description="login name")]


class RuleSettingIn(BaseModel):
    rule: RuleName
    room: str | None = Field(None, pattern=ID_PATTERN, description="omit for the whole site")
    enabled: bool | None = None
    minutes: int | None = Field(
        None, ge=0, le=720,
        description="0 only for building_exit: building exits always call (at once)")
    severity: Severity | None = None

    @model_validator(mode="after")
    def _something_to_set(self) -> RuleSettingIn:
        if self.enabled is None and self.minutes is None and self.severity is None:
            raise Invalid(mark("set at least one of enabled, minutes, severity"))
        if self.minutes == 0 and self.rule is not RuleName.BUILDING_EXIT:
            raise Invalid(mark("minutes=0 means 'at once' and is only for building_exit; "
                               "give {rule} 1 to 720 minutes"), rule=str(self.rule))
        return self


class RuleSettingOut(BaseModel):
    site: str
    room: str | None
    rule: str
    enabled: bool | None
    minutes: int | None
    severity: str | None
    updated_by: str
    updated_at: datetime


class Done(BaseModel):
    ok: Literal[True] = True
    message: str


def _provisioning_failed(exc: Exception) -> HTTPException | Refusal:
    if isinstance(exc, BrokerAccountError):
        # With several brokers (docs/brokers.md) one that is away refuses every change: the
        # admin must be told, in her language, to bring it back.
        return Refusal(status.HTTP_503_SERVICE_UNAVAILABLE,
                       "a broker did not answer or refused the change ({reason}); check that "
                       "every broker runs (/readyz names one that is away) and try again",
                       reason=str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.post("/sites", status_code=201, response_model=Done, responses=_WRITE)
def add_site(body: NewSite, admin: CurrentAdmin, conn: ConnDep, settings: SettingsDep) -> Done:
    try:
        provisioning.add_site(settings, body.id, body.name, body.tz, body.night)
    except ProvisioningError as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "site.add", body.id, body.id, body.model_dump())
    return Done(message=f"site {body.id} added")


@router.post("/sites/{site}/rooms", status_code=201, response_model=Done, responses=_WRITE)
def add_room(site: SiteId, body: NewRoom, admin: CurrentAdmin, conn: ConnDep,
             settings: SettingsDep) -> Done:
    try:
        provisioning.add_room(settings, site, body.id, body.kind, body.label)
    except ProvisioningError as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "room.add", site, body.id, body.model_dump(mode="json"))
    return Done(message=f"room {site}/{body.id} added")


@router.post("/sites/{site}/rooms/{room}/basis", status_code=201, response_model=Done,
             responses=_WRITE)
def record_basis(site: SiteId, room: RoomId, body: NewBasis, admin: CurrentAdmin,
                 conn: ConnDep, settings: SettingsDep) -> Done:
    """Record why a flat may be monitored (consent, or a municipal decision with dates)."""
    try:
        provisioning.record_basis(settings, site, room, consent=body.kind == "consent",
                                  decision_ref=body.reference if body.kind == "decision"
                                  else None, valid_from=body.valid_from,
                                  valid_to=body.valid_to, actor=admin.username)
    except ProvisioningError as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "room.basis", site, room, body.model_dump(mode="json"))
    return Done(message=f"basis recorded for {site}/{room}")


@router.post("/sites/{site}/devices", status_code=201, response_model=DeviceAccess,
             responses=_WRITE)
def add_device(site: SiteId, body: NewDevice, admin: CurrentAdmin, conn: ConnDep,
               settings: SettingsDep) -> DeviceAccess:
    """Provision a device; the MQTT password (and the setup file and QR code that carry
    it) is in this response only, store it now. A kind of device the rules never read in
    the room's kind of room (a bed sensor in a corridor) is refused (422)."""
    room_kind = stored_sites.room_kind(conn, site, body.room)
    if room_kind is not None and not fits_in(body.kind, room_kind):
        raise wrong_room_kind(body.kind, body.room, room_kind)
    try:
        credentials = provisioning.add_device(settings, site, body.id, body.room, body.kind,
                                              body.heartbeat_s)
    except (ProvisioningError, BrokerAccountError) as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "device.add", site, body.id, body.model_dump(mode="json"))
    return device_access(settings, site, body.id, credentials)


@router.post("/sites/{site}/devices/{device}/revoke", response_model=Done, responses=_WRITE)
def revoke_device(site: SiteId, device: DeviceId, admin: CurrentAdmin, conn: ConnDep,
                  settings: SettingsDep) -> Done:
    """Remove a device's access at once: the broker disconnects and refuses it."""
    try:
        provisioning.revoke_device(settings, site, device)
    except ProvisioningError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except BrokerAccountError as exc:
        raise _provisioning_failed(exc) from None
    audit(conn, admin.username, "device.revoke", site, device)
    return Done(message=f"device {site}/{device} revoked")


@router.get("/users", response_model=list[Account], responses=responses(401, 403, 503))
def get_users(admin: CurrentAdmin, conn: ConnDep, now: NowDep) -> list[Account]:
    return list_users(conn, now)


# One whole message per change, so each is translated as a whole (api.errors.Refusal).
_NOT_YOURSELF = {
    "disable": mark("you cannot disable your own account here; ask another admin or use: "
                    "nattero user disable {username}"),
    "delete": mark("you cannot delete your own account here; ask another admin or use: "
                   "nattero user delete {username}"),
}


def _not_yourself(admin: User, username: str, what: Literal["disable", "delete"]) -> None:
    # An admin who disables or deletes their own account locks themself out mid-change;
    # another admin or `nattero user` can.
    if users.normalise_username(username) == admin.username:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, _NOT_YOURSELF[what],
                      username=admin.username)


def _account_change(conn: ConnDep, admin: User, username: str, action: str,
                    change: str) -> Done:
    name = users.normalise_username(username)
    try:
        with conn.transaction():
            if action == "user.disable":
                users.set_disabled(conn, name, True)
            elif action == "user.enable":
                users.set_disabled(conn, name, False)
            else:
                users.delete_user(conn, name)
            audit(conn, admin.username, action, None, name)
    except UserError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return Done(message=f"user {name} {change}")


@router.post("/users/{username}/password", response_model=Done, responses=_WRITE)
def set_password(username: Username, body: NewPassword, admin: CurrentAdmin,
                 conn: ConnDep) -> Done:
    """Set a new password; every token of that account (yours too) stops working."""
    name = users.normalise_username(username)
    try:
        users.check_password(body.password)
        with conn.transaction():
            users.change_password(conn, name, body.password)
            audit(conn, admin.username, "user.passwd", None, name)
    except UserError as exc:
        code = (status.HTTP_404_NOT_FOUND if isinstance(exc, users.NoSuchUser)
                else status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise HTTPException(code, str(exc)) from None
    return Done(message=f"password of {name} changed; its earlier logins are ended")


@router.post("/users/{username}/unlock", response_model=Done, responses=_WRITE)
def unlock_user(username: Username, admin: CurrentAdmin, conn: ConnDep) -> Done:
    """End every lockout of the account (all its clients may log in again at once)."""
    name = users.normalise_username(username)
    try:
        with conn.transaction():
            clients = users.unlock_user(conn, name)
            audit(conn, admin.username, "user.unlock", None, name, {"clients": clients})
    except UserError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return Done(message=f"user {name} unlocked")


@router.post("/users/{username}/disable", response_model=Done, responses=_WRITE)
def disable_user(username: Username, admin: CurrentAdmin, conn: ConnDep) -> Done:
    """Stop the account logging in; its tokens and open boards end at once."""
    _not_yourself(admin, username, "disable")
    return _account_change(conn, admin, username, "user.disable", "disabled")


@router.post("/users/{username}/enable", response_model=Done, responses=_WRITE)
def enable_user(username: Username, admin: CurrentAdmin, conn: ConnDep) -> Done:
    """Let a disabled account log in again (its tokens from before stay dead)."""
    return _account_change(conn, admin, username, "user.enable", "enabled")


@router.delete("/users/{username}", response_model=Done, responses=_WRITE)
def delete_user(username: Username, admin: CurrentAdmin, conn: ConnDep) -> Done:
    """Delete the account; its tokens end, and a later account of the same name gets none."""
    _not_yourself(admin, username, "delete")
    return _account_change(conn, admin, username, "user.delete", "deleted")


@router.post("/users", status_code=201, response_model=User, responses=_WRITE)
def add_user(body: NewUser, admin: CurrentAdmin, conn: ConnDep) -> User:
    try:
        with conn.transaction():
            user = create_user(conn, body.username, body.password, body.role, body.sites)
            audit(conn, admin.username, "user.add", None, user.username,
                  {"role": user.role.value, "sites": user.sites})
    except UserError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return user


@router.put("/sites/{site}/rules", response_model=RuleSettingOut, responses=_WRITE)
def set_rule(site: SiteId, body: Annotated[RuleSettingIn, Body()], admin: CurrentAdmin,
             conn: ConnDep) -> RuleSettingOut:
    """Override one rule for the whole site (no ``room``) or for one room. Fields left
    out (null) are inherited from the level below."""
    with conn.transaction():
        existing_site(conn, site)
        if body.room is not None and not stored_sites.room_exists(conn, site, body.room):
            raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT,
                          "room '{room}' does not exist on site '{site}'",
                          room=body.room, site=site)
        stored = upsert_rule_setting(
            conn, site, body.room, body.rule.value, body.enabled, body.minutes,
            body.severity.value if body.severity else None, admin.username)
        audit(conn, admin.username, "rules.set", site, body.room or site,
              body.model_dump(mode="json"))
    return RuleSettingOut.model_validate(stored, from_attributes=True)
