"""A whole site from one YAML document: its rooms, monitoring bases and devices, idempotently.

``nattero site apply FILE`` reads one or more documents (``---`` between sites), each::

    site: solsikken
    name: Bofællesskabet Solsikken
    tz: Europe/Copenhagen          # optional
    night: 22:00-07:00             # optional
    rooms:
      - {id: f12, kind: flat, label: Lejlighed 12, basis: {consent: true}}
      - id: f14
        kind: flat
        basis: {decision: KK-2026-0413, valid_from: 2026-01-01}
      - {id: lounge, kind: common}
    devices:
      - {id: f12-door, room: f12, kind: door, heartbeat: 300}

Applying adds what is missing and leaves what exists alone (an existing site, room or
device is never changed); a basis is recorded unless the same one is on file. Only the
devices added get a password, returned once in ``credentials``; a device whose password was
lost gets a new one from ``provisioning.rotate_device_password``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.events import DeviceKind, RoomKind
from core.night_window import DEFAULT_NIGHT, DEFAULT_TIME_ZONE
from core.settings import Settings
from ingest import listing, sites
from provisioning.errors import ProvisioningError
from provisioning.names import DeviceCredentials
from provisioning.sites import (
    add_device,
    ensure_room,
    ensure_site,
    record_basis,
)

__all__ = ["AppliedLayout", "PartlyApplied", "SiteLayout", "apply_layout", "parse_layouts"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasisSpec(_Spec):
    consent: bool = False
    decision: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class RoomSpec(_Spec):
    id: str
    kind: RoomKind
    label: str | None = None
    basis: BasisSpec | None = None


class DeviceSpec(_Spec):
    id: str
    room: str
    kind: DeviceKind
    heartbeat: int = 300


class SiteLayout(_Spec):
    site: str
    name: str
    tz: str = DEFAULT_TIME_ZONE
    night: str = DEFAULT_NIGHT
    rooms: list[RoomSpec] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)


@dataclass
class AppliedLayout:
    site: str
    site_added: bool
    rooms_added: list[str] = field(default_factory=list)
    bases_recorded: list[str] = field(default_factory=list)
    devices_added: list[str] = field(default_factory=list)
    credentials: dict[str, DeviceCredentials] = field(default_factory=dict)


class PartlyApplied(ProvisioningError):
    """Applying a layout stopped half-way; ``applied`` holds what was done, passwords too."""

    def __init__(self, message: str, applied: AppliedLayout) -> None:
        super().__init__(message)
        self.applied = applied


def parse_layouts(text: str, source: str) -> list[SiteLayout]:
    """The site layouts in a YAML (or JSON) text; raises naming the first problem."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise ProvisioningError(f"{source} is not valid YAML: {exc}") from None
    layouts: list[SiteLayout] = []
    for number, document in enumerate(documents, 1):
        try:
            layouts.append(SiteLayout.model_validate(document))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "document"
            raise ProvisioningError(
                f"{source}, site document {number}: {where}: {first['msg']} "
                f"({exc.error_count()} problem(s); see `nattero site apply --help`)") from None
    if not layouts:
        raise ProvisioningError(f"{source} holds no site; see `nattero site apply --help`")
    return layouts


def apply_layout(settings: Settings, layout: SiteLayout, *, actor: str = "cli") -> AppliedLayout:
    """Make the store and the broker hold at least what ``layout`` describes."""
    site = layout.site
    with _connect(settings) as conn:
        applied = AppliedLayout(site, site_added=not sites.site_exists(conn, site))
        stored_rooms = {room.id for room in sites.rooms_with_monitoring(conn, site)}
    # Refuse before adding anything: a device added before a failure would have a password
    # printed nowhere.
    known_rooms = stored_rooms | {room.id for room in layout.rooms}
    for device in layout.devices:
        if device.room not in known_rooms:
            raise ProvisioningError(
                f"device {device.id!r} of site {site!r} is in room {device.room!r}, which is "
                f"neither in the layout's rooms nor provisioned; add it under `rooms:`")
    try:
        _add_missing(settings, layout, applied, stored_rooms, actor)
    except ProvisioningError as exc:
        if not applied.credentials:
            raise
        raise PartlyApplied(f"{exc} (site {site!r} is partly applied; the passwords of the "
                            f"devices added so far are printed)", applied) from exc
    return applied


def _add_missing(settings: Settings, layout: SiteLayout, applied: AppliedLayout,
                 stored_rooms: set[str], actor: str) -> None:
    site = layout.site
    ensure_site(settings, site, layout.name, tz=layout.tz, night=layout.night)
    for room in layout.rooms:
        if room.id not in stored_rooms:
            ensure_room(settings, site, room.id, room.kind, label=room.label)
            applied.rooms_added.append(room.id)
    with _connect(settings) as conn:
        active = {device.id for device in sites.active_devices(conn, site)}
    for device in layout.devices:
        if device.id not in active:
            applied.credentials[device.id] = add_device(
                settings, site, device.id, device.room, device.kind, heartbeat_s=device.heartbeat)
            applied.devices_added.append(device.id)
    with _connect(settings) as conn:
        on_file = listing.list_bases(conn, site)
    for room in layout.rooms:
        basis = room.basis
        if basis is None or any(_same_basis(basis, row) for row in on_file if row.room == room.id):
            continue
        record_basis(settings, site, room.id, consent=basis.consent,
                     decision_ref=basis.decision, valid_from=basis.valid_from,
                     valid_to=basis.valid_to, actor=actor)
        applied.bases_recorded.append(room.id)


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.resolved_database_url(), autocommit=True)


def _same_basis(wanted: BasisSpec, stored: listing.BasisRow) -> bool:
    """The same basis is on file; a basis without ``valid_from`` matches any start."""
    kind = "consent" if wanted.consent else "decision"
    return (stored.kind == kind and stored.reference == wanted.decision
            and stored.valid_to == wanted.valid_to
            and (wanted.valid_from is None or stored.valid_from == wanted.valid_from))
