"""Sites, rooms, monitoring bases and devices: the checks, the store rows (written through
``ingest.layouts``, in one transaction with the broker change) and the broker accounts.

A device's broker password is generated here, returned once and never stored by Nattero:
only the broker keeps it (hashed, by the dynamic-security plugin).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigurationError
from core.events import DeviceKind, DeviceSource, RoomKind, fits_in, room_kinds_for
from core.i18n import mark
from core.night_window import DEFAULT_NIGHT, DEFAULT_TIME_ZONE, NightWindow
from core.settings import Settings
from ingest import layouts
from ingest.db import Session, session_scope
from ingest.models import Device
from provisioning.broker_group import BrokerGroup, managed_brokers
from provisioning.errors import ProvisioningError
from provisioning.names import (
    ID_SLUG,
    SLUG,
    DeviceCredentials,
    check_external_id,
    check_mapping,
    client_id_of,
    device_topic_prefix,
    device_username,
)


def _check_tz(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProvisioningError(
            f"time zone {tz!r} is unknown; use an IANA name such as Europe/Copenhagen") from None


def _check_slug(what: str, value: str, pattern: re.Pattern[str] = SLUG) -> None:
    if not pattern.match(value):
        raise ProvisioningError(
            f"{what} id {value!r} must be lower-case letters, digits and '-' "
            f"(max 63 characters, starting with a letter or digit)")


# The one wording of a device in the wrong kind of room: the CLI's error, the admin API's
# refusal and the CSV import's problem (translated in the latter two).
WRONG_ROOM_KIND = mark("a '{kind}' sensor cannot sit in room '{room}', a room of type "
                       "'{room_kind}': it fits only in a room of type {kinds}")


def check_room_kind(device_kind: DeviceKind, room: str, room_kind: RoomKind) -> None:
    """Refuse (``ProvisioningError``) a device of a kind the rules never read in a room of
    ``room_kind`` (``core.events.ROOM_KINDS_OF``): a bed sensor in a corridor."""
    if not fits_in(device_kind, room_kind):
        raise ProvisioningError(WRONG_ROOM_KIND.format(
            kind=DeviceKind(device_kind).value, room=room, room_kind=RoomKind(room_kind).value,
            kinds=room_kinds_for(DeviceKind(device_kind))))


def _new_credentials(site: str, device: str) -> DeviceCredentials:
    username = device_username(site, device)
    return DeviceCredentials(username=username, client_id=client_id_of(username),
                             password=secrets.token_urlsafe(24))


def broker_accounts(settings: Settings) -> BrokerGroup:
    """Short-lived admin connections to the accounts of every broker devices may connect
    to (use as a context manager)."""
    return managed_brokers(settings)


def add_site(settings: Settings, site: str, name: str, tz: str = DEFAULT_TIME_ZONE,
             night: str = DEFAULT_NIGHT, *, exist_ok: bool = False) -> None:
    _check_slug("site", site)
    _check_tz(tz)
    try:
        window = NightWindow.parse(night, tz)
    except ConfigurationError as exc:
        raise ProvisioningError(str(exc)) from None
    if not name.strip():
        raise ProvisioningError("site name must not be empty")
    with session_scope(settings.sqlalchemy_url()) as session:
        if layouts.site_exists(session, site):
            if exist_ok:
                return
            raise ProvisioningError(f"site {site!r} exists already")
        layouts.insert_site(session, site, name, tz, window.start, window.end)


def change_site(settings: Settings, site: str, *, name: str | None = None,
                tz: str | None = None, night: str | None = None) -> dict[str, str]:
    """Change a site's name, time zone or night window (what is given); returns the values
    before. A running rules engine applies a new night window within seconds
    (``rules.runtime.LAYOUT_TTL_S``); an alert already raised stays."""
    if name is not None and not name.strip():
        raise ProvisioningError("site name must not be empty")
    if tz is not None:
        _check_tz(tz)
    with session_scope(settings.sqlalchemy_url()) as session:
        window = None
        if night is not None:
            try:
                parsed = NightWindow.parse(night, tz or DEFAULT_TIME_ZONE)
            except ConfigurationError as exc:
                raise ProvisioningError(str(exc)) from None
            window = (parsed.start, parsed.end)
        before = layouts.update_site(session, site, name=name, tz=tz, night=window)
        if before is None:
            raise ProvisioningError(f"site {site!r} does not exist; `nattero site list` shows "
                                    "the sites")
        return before


def relabel_room(settings: Settings, site: str, room: str, label: str) -> str:
    """Give a room a new label (shown on the board; never a name); returns the old one."""
    if not label.strip():
        raise ProvisioningError("a room's label must not be empty")
    with session_scope(settings.sqlalchemy_url()) as session:
        before = layouts.relabel_room(session, site, room, label.strip())
        if before is None:
            raise ProvisioningError(f"room {room!r} does not exist on site {site!r}")
        return before


def ensure_site(settings: Settings, site: str, name: str, tz: str = DEFAULT_TIME_ZONE,
                night: str = DEFAULT_NIGHT) -> None:
    add_site(settings, site, name, tz, night, exist_ok=True)


def add_room(settings: Settings, site: str, room: str, kind: RoomKind,
             label: str | None = None, *, exist_ok: bool = False) -> None:
    _check_slug("room", room, ID_SLUG)
    with session_scope(settings.sqlalchemy_url()) as session:
        if layouts.site_exists(session, site) and exist_ok \
                and layouts.room_kind(session, site, room) is not None:
            return
        insert_room(session, site, room, kind, label)


def insert_room(session: Session, site: str, room: str, kind: RoomKind,
                label: str | None = None) -> None:
    """``add_room`` in the caller's session (the caller commits)."""
    _check_slug("room", room, ID_SLUG)
    if not layouts.site_exists(session, site):
        raise ProvisioningError(
            f"site {site!r} does not exist; add it with: nattero site add {site} --name NAME")
    if layouts.room_kind(session, site, room) is not None:
        raise ProvisioningError(f"room {room!r} exists already on site {site!r}")
    layouts.insert_room(session, site, room, RoomKind(kind).value, label or room)


def ensure_room(settings: Settings, site: str, room: str, kind: RoomKind,
                label: str | None = None) -> None:
    add_room(settings, site, room, kind, label, exist_ok=True)


def record_basis(settings: Settings, site: str, room: str, *, consent: bool = False,
                 decision_ref: str | None = None, valid_from: date | None = None,
                 valid_to: date | None = None, actor: str = "cli") -> None:
    """Record why a flat may be monitored (consent, or a municipal decision with dates)."""
    if decision_ref is not None and not decision_ref.strip():
        raise ProvisioningError("a municipal decision needs its reference, e.g. --decision "
                                "'KK-2026-0413'")
    if consent == (decision_ref is not None):
        raise ProvisioningError("give exactly one basis: --consent or --decision REF")
    if decision_ref is not None and valid_from is None:
        raise ProvisioningError("a municipal decision needs --valid-from DATE")
    start = valid_from or datetime.now(UTC).date()
    if valid_to is not None and valid_to < start:
        raise ProvisioningError(f"--valid-to {valid_to} is before --valid-from {start}")
    with session_scope(settings.sqlalchemy_url()) as session:
        kind = layouts.room_kind(session, site, room)
        if kind is None:
            raise ProvisioningError(f"room {room!r} does not exist on site {site!r}")
        if kind != RoomKind.FLAT:
            raise ProvisioningError(
                f"room {room!r} is a {kind} room; a basis is recorded only for flats")
        layouts.insert_basis(session, site, room, "consent" if consent else "decision",
                             decision_ref, start, valid_to, actor)


def device_exists(settings: Settings, site: str, device: str) -> bool:
    with session_scope(settings.sqlalchemy_url()) as session:
        found = layouts.find_device(session, site, device)
        return found is not None and found.active


def _check_device(device: str, heartbeat_s: int) -> None:
    _check_slug("device", device, ID_SLUG)
    if not 10 <= heartbeat_s <= 86400:
        raise ProvisioningError("--heartbeat must be between 10 and 86400 seconds")


def add_device(settings: Settings, site: str, device: str, room: str, kind: DeviceKind,
               heartbeat_s: int = 300, *, source: DeviceSource = DeviceSource.NATIVE,
               external_id: str | None = None, mapping: str | None = None) -> DeviceCredentials:
    """Provision a device; returns its broker credentials (shown once, stored nowhere)."""
    # Checked before connecting too: a typo needs no database or broker.
    _check_device(device, heartbeat_s)
    external_id = check_external_id(source, external_id)
    mapping = check_mapping(source, mapping)
    with session_scope(settings.sqlalchemy_url()) as session:
        if source != DeviceSource.NATIVE:  # a bridged device has no account of its own
            return insert_device(session, None, site, device, room, kind, heartbeat_s,
                                 source=source, external_id=external_id, mapping=mapping)
        with broker_accounts(settings) as broker:
            return insert_device(session, broker, site, device, room, kind, heartbeat_s,
                                 source=source, external_id=external_id, mapping=mapping)


def insert_device(session: Session, broker: BrokerGroup | None, site: str, device: str,
                  room: str, kind: DeviceKind, heartbeat_s: int = 300, *,
                  source: DeviceSource = DeviceSource.NATIVE, external_id: str | None = None,
                  mapping: str | None = None) -> DeviceCredentials:
    """``add_device`` in the caller's session and broker connection (None only for a
    bridged device): the device's row, and for a native device its broker account (created
    last, so a refused row creates none).

    The caller commits; if it rolls back instead, it must delete the account
    (``broker.delete_account(credentials.username)``): the broker has no transactions."""
    _check_device(device, heartbeat_s)
    external_id = check_external_id(source, external_id)
    mapping = check_mapping(source, mapping)
    credentials = _new_credentials(site, device)
    room_kind = layouts.room_kind(session, site, room)
    if room_kind is None:
        raise ProvisioningError(
            f"room {room!r} does not exist on site {site!r}; add it with: "
            f"nattero room add {site} {room} --kind flat|common|exit")
    check_room_kind(kind, room, RoomKind(room_kind))
    existing = layouts.find_device(session, site, device)
    if existing is not None and existing.active:
        raise ProvisioningError(
            f"device {device!r} exists already on site {site!r}; revoke it first or "
            "choose another id")
    if not layouts.insert_device(
            session, site, device, room, DeviceKind(kind).value, heartbeat_s,
            DeviceSource(source).value, external_id, mapping,
            credentials.username if source == "native" else None):
        raise ProvisioningError(
            f"external id {external_id!r} is already used by another device")
    if source == DeviceSource.NATIVE:
        if broker is None:
            raise ProvisioningError("a native device needs a broker connection for its account")
        broker.create_device_account(credentials.username, credentials.password,
                                     device_topic_prefix(site, device),
                                     client_id=credentials.client_id)
    return credentials


def rotate_device_password(settings: Settings, site: str, device: str) -> DeviceCredentials:
    """A new password for a device whose password was lost (the old one stops working).

    The new account is bound to the device's client id, like a device added today."""
    with session_scope(settings.sqlalchemy_url()) as session:
        found = layouts.find_device(session, site, device)
        if found is None or not found.active:
            raise ProvisioningError(f"device {device!r} is not provisioned on site {site!r}")
    credentials = _new_credentials(site, device)
    with broker_accounts(settings) as broker:
        if broker.account_exists(credentials.username):
            broker.delete_account(credentials.username)
        broker.create_device_account(credentials.username, credentials.password,
                                     device_topic_prefix(site, device),
                                     client_id=credentials.client_id)
    return credentials


def revoke_device(settings: Settings, site: str, device: str) -> None:
    """Remove a device's access at once: the broker disconnects and refuses it."""
    with session_scope(settings.sqlalchemy_url()) as session:
        found = layouts.revoke_device(session, site, device, datetime.now(UTC))
        if found is None:
            raise ProvisioningError(f"device {device!r} is not provisioned on site {site!r}")
        username = found.mqtt_username
        if username:
            with broker_accounts(settings) as broker:
                if broker.account_exists(username):
                    broker.delete_account(username)


def delete_device_accounts(settings: Settings, usernames: list[str]) -> None:
    """Delete devices' broker accounts (those that exist): after the store deleted their
    devices and committed, as ``ingest.sites.delete_site`` requires."""
    if not usernames:
        return
    with broker_accounts(settings) as broker:
        for username in usernames:
            if broker.account_exists(username):
                broker.delete_account(username)


def list_devices(settings: Settings, site: str | None = None) -> list[Device]:
    with session_scope(settings.sqlalchemy_url()) as session:
        return layouts.list_devices(session, site)
