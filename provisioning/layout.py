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
      - {id: f15, kind: flat, corridor: hall}   # the door opens onto the hall
      - {id: lounge, kind: common}
      - {id: hall, kind: common}
    devices:
      - {id: f12-door, room: f12, kind: door, heartbeat: 300}
    rules:                         # optional: the site's own limits (``rules.settings``)
      building_exit: {minutes: 20} # e.g. a shelter whose residents go out to smoke

Applying adds what is missing and leaves what exists alone (an existing site, room or
device is never changed); a basis is recorded unless the same one is on file. A site rule
in ``rules`` is set when the stored one differs (and audited, like the admin page's). Only the
devices added get a password, returned once in ``credentials``; a device whose password was
lost gets a new one from ``provisioning.rotate_device_password``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.alerts import RuleName, Severity
from core.events import DeviceKind, RoomKind
from core.night_window import DEFAULT_NIGHT, DEFAULT_TIME_ZONE
from core.settings import Settings
from ingest import listing, sites
from ingest.audit import audit
from ingest.rule_settings import site_rule_values, upsert_rule_setting
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
    corridor: str | None = None  # a flat's: the common room its door opens onto


class DeviceSpec(_Spec):
    id: str
    room: str
    kind: DeviceKind
    heartbeat: int = 300


class RuleSpec(_Spec):
    """A site-wide override of one rule; a field left out is the default's."""

    enabled: bool | None = None
    minutes: int | None = Field(default=None, ge=0, le=720)
    severity: Severity | None = None


class SiteLayout(_Spec):
    site: str
    name: str
    tz: str = DEFAULT_TIME_ZONE
    night: str = DEFAULT_NIGHT
    rooms: list[RoomSpec] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)
    rules: dict[RuleName, RuleSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rule_minutes(self) -> SiteLayout:
        for rule, spec in self.rules.items():
            # 0 means "at once", which only a building exit can mean (rules.settings).
            if spec.minutes == 0 and rule is not RuleName.BUILDING_EXIT:
                raise ValueError(f"rules.{rule}: give minutes from 1 to 720 "
                                 f"(0 means 'at once' only for building_exit)")
        return self


@dataclass
class AppliedLayout:
    site: str
    site_added: bool
    rooms_added: list[str] = field(default_factory=list)
    bases_recorded: list[str] = field(default_factory=list)
    rules_set: list[str] = field(default_factory=list)
    corridors_set: list[str] = field(default_factory=list)
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
        stored_common = sites.common_room_ids(conn, site)
    # Refuse before adding anything: a device added before a failure would have a password
    # printed nowhere.
    known_rooms = stored_rooms | {room.id for room in layout.rooms}
    common = ({room.id for room in layout.rooms if room.kind is RoomKind.COMMON}
              | stored_common)
    for room in layout.rooms:
        if room.corridor is not None and (room.kind is not RoomKind.FLAT
                                          or room.corridor not in common):
            raise ProvisioningError(
                f"room {room.id!r} of site {site!r} has corridor {room.corridor!r}: only a "
                f"flat has one, and it must be a common room of the site (kind: common)")
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
        on_file = listing.list_bases(conn, site)
    for room in layout.rooms:
        basis = room.basis
        if basis is None or any(_same_basis(basis, row) for row in on_file if row.room == room.id):
            continue
        record_basis(settings, site, room.id, consent=basis.consent,
                     decision_ref=basis.decision, valid_from=basis.valid_from,
                     valid_to=basis.valid_to, actor=actor)
        applied.bases_recorded.append(room.id)
    _set_corridors(settings, layout, applied)
    _set_rules(settings, layout, applied, actor)
    # Devices last. The apply is several transactions, and a running rules engine reads
    # the layout again only when an event names a device it does not know: a device that
    # appeared before its room's basis, corridor or the site's rules would have its first
    # minutes judged without them (a flat unmonitored, a rule at its default).
    with _connect(settings) as conn:
        active = {device.id for device in sites.active_devices(conn, site)}
    for device in layout.devices:
        if device.id not in active:
            applied.credentials[device.id] = add_device(
                settings, site, device.id, device.room, device.kind, heartbeat_s=device.heartbeat)
            applied.devices_added.append(device.id)


def _set_corridors(settings: Settings, layout: SiteLayout, applied: AppliedLayout) -> None:
    with _connect(settings) as conn, conn.transaction():
        for room in layout.rooms:
            if room.corridor is None:
                continue
            if sites.set_room_corridor(conn, layout.site, room.id, room.corridor):
                applied.corridors_set.append(room.id)


def _set_rules(settings: Settings, layout: SiteLayout, applied: AppliedLayout,
               actor: str) -> None:
    if not layout.rules:
        return
    with _connect(settings) as conn, conn.transaction():
        stored = site_rule_values(conn, layout.site)
        for rule, spec in layout.rules.items():
            wanted = (spec.enabled, spec.minutes,
                      None if spec.severity is None else spec.severity.value)
            if stored.get(rule.value) == wanted:
                continue
            upsert_rule_setting(conn, layout.site, None, rule.value, *wanted, updated_by=actor)
            audit(conn, actor, "rules.set", layout.site, layout.site,
                  {"rule": rule.value, "enabled": spec.enabled, "minutes": spec.minutes,
                   "severity": wanted[2], "via": "site apply"})
            applied.rules_set.append(rule.value)


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.resolved_database_url(), autocommit=True)


def _same_basis(wanted: BasisSpec, stored: listing.BasisRow) -> bool:
    """The same basis is on file; a basis without ``valid_from`` matches any start."""
    kind = "consent" if wanted.consent else "decision"
    return (stored.kind == kind and stored.reference == wanted.decision
            and stored.valid_to == wanted.valid_to
            and (wanted.valid_from is None or stored.valid_from == wanted.valid_from))
