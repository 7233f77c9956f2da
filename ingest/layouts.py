"""Writing a site's layout: sites, rooms, monitoring bases and devices (SQLAlchemy ORM).

Every function works in the caller's session (``ingest.db.session_scope``), so
``provisioning`` can keep a broker change and its rows in one transaction: a device row
is rolled back when its broker account cannot be created. The checks that make a request
sensible (ids, time zones, which basis) belong to ``provisioning``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.models import Device, MonitoringBasisRecord, Room, Site

__all__ = [
    "ProvisionedDevice", "find_device", "insert_basis", "insert_device", "insert_room",
    "insert_site", "list_devices", "relabel_room", "revoke_device", "room_kind", "site_exists",
    "update_site",
]


@dataclass(frozen=True, slots=True)
class ProvisionedDevice:
    site: str
    device: str
    room: str
    kind: str
    mqtt_username: str | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _provisioned(row: Device) -> ProvisionedDevice:
    return ProvisionedDevice(row.site, row.id, row.room, row.kind, row.mqtt_username,
                             row.revoked_at)


def site_exists(session: Session, site: str) -> bool:
    return session.get(Site, site) is not None


def insert_site(session: Session, site: str, name: str, tz: str, night_start: time,
                night_end: time) -> None:
    session.add(Site(id=site, name=name, tz=tz, night_start=night_start, night_end=night_end))


def update_site(session: Session, site: str, *, name: str | None = None, tz: str | None = None,
                night: tuple[time, time] | None = None) -> dict[str, str] | None:
    """Change what is given of a site's name, time zone and night window; returns the
    values before the change (as text, for the audit log), None when there is no such site."""
    found = session.get(Site, site)
    if found is None:
        return None
    before = {"name": found.name, "tz": found.tz,
              "night": f"{found.night_start:%H:%M}-{found.night_end:%H:%M}"}
    if name is not None:
        found.name = name
    if tz is not None:
        found.tz = tz
    if night is not None:
        found.night_start, found.night_end = night
    return before


def relabel_room(session: Session, site: str, room: str, label: str) -> str | None:
    """Give a room a new label; returns the old one, None when there is no such room."""
    found = session.get(Room, (site, room))
    if found is None:
        return None
    before, found.label = found.label, label
    return before


def room_kind(session: Session, site: str, room: str) -> str | None:
    """The room's kind, or None when the site has no such room."""
    found = session.get(Room, (site, room))
    return None if found is None else found.kind


def insert_room(session: Session, site: str, room: str, kind: str, label: str) -> None:
    session.add(Room(site=site, id=room, kind=kind, label=label))


def insert_basis(session: Session, site: str, room: str, kind: str, reference: str | None,
                 valid_from: date, valid_to: date | None, recorded_by: str) -> None:
    session.add(MonitoringBasisRecord(
        site=site, room=room, kind=kind, reference=reference, valid_from=valid_from,
        valid_to=valid_to, recorded_by=recorded_by))


def find_device(session: Session, site: str, device: str) -> ProvisionedDevice | None:
    """The device's row, revoked or not; None when it was never provisioned."""
    found = session.get(Device, (site, device))
    return None if found is None else _provisioned(found)


def insert_device(session: Session, site: str, device: str, room: str, kind: str,
                  heartbeat_s: int, source: str, external_id: str | None, mapping: str | None,
                  mqtt_username: str | None) -> bool:
    """Add a device, replacing a revoked one of the same id. False (and the session's
    transaction failed) when another device already uses the external id."""
    existing = session.get(Device, (site, device))
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(Device(site=site, id=device, room=room, kind=kind, heartbeat_s=heartbeat_s,
                       source=source, external_id=external_id, mapping=mapping,
                       mqtt_username=mqtt_username))
    try:
        session.flush()
    except IntegrityError:
        return False
    return True


def revoke_device(session: Session, site: str, device: str,
                  at: datetime) -> ProvisionedDevice | None:
    """Mark the device revoked at ``at``; None when it was never provisioned."""
    found = session.get(Device, (site, device))
    if found is None:
        return None
    found.revoked_at = at
    return _provisioned(found)


def list_devices(session: Session, site: str | None = None) -> list[Device]:
    """Every device (of one site, if given), revoked ones included, by site and id."""
    query = select(Device).order_by(Device.site, Device.id)
    if site:
        query = query.where(Device.site == site)
    return list(session.scalars(query))
