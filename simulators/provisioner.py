"""Provision a profile's site, rooms, bases and devices through ``provisioning``.

Idempotent: a second run adds nothing. A device that exists but whose password the
simulator does not know (the credentials file was lost) gets a rotated password. The
simulator then connects with each device's own account, never a privileged one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

from core.events import RoomKind
from simulators.credentials import CredentialStore
from simulators.errors import CredentialsError
from simulators.profile import SiteProfile

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["provision_site", "rotate_devices", "stored_accounts"]

# A consent without a date in the profile is taken as on file long before any simulated
# night; left out, the store would date it today, and past nights would be unmonitored.
CONSENT_ON_FILE_SINCE = date(2020, 1, 1)


def provision_site(settings: Settings, profile: SiteProfile, store: CredentialStore) -> int:
    """Make the site match the profile; returns how many device passwords were issued."""
    import provisioning

    site = profile.site
    provisioning.ensure_site(settings, site, profile.name, tz=profile.tz, night=profile.night)
    for room in profile.rooms:
        provisioning.ensure_room(settings, site, room.id, room.kind, label=room.label)
    issued, fresh_rooms = 0, set()
    for spec in profile.device_specs:
        known = store.get(site, spec.id)
        if provisioning.device_exists(settings, site, spec.id):
            if known is not None:
                continue
            credentials = provisioning.rotate_device_password(settings, site, spec.id)
        else:
            credentials = provisioning.add_device(
                settings, site, spec.id, spec.room, spec.kind, heartbeat_s=spec.heartbeat_s)
            fresh_rooms.add(spec.room)
        store.put(site, spec.id, credentials.username, credentials.password)
        issued += 1
    for room in profile.rooms:
        if room.kind is not RoomKind.FLAT or room.basis is None:
            continue
        basis = room.basis
        key = f"{site}/{room.id}/{basis.model_dump_json()}"
        # A new room means a new (or reset) site: its basis must be recorded again.
        if room.id in fresh_rooms or not store.has_basis(key):
            provisioning.record_basis(
                settings, site, room.id, consent=basis.consent, decision_ref=basis.decision_ref,
                valid_from=basis.valid_from or CONSENT_ON_FILE_SINCE, valid_to=basis.valid_to,
                actor="simulator")
            store.add_basis(key)
    return issued


def rotate_devices(settings: Settings, store: CredentialStore, devices: Iterable[str]) -> None:
    """New passwords for ``site/device`` names the broker refused (stale stored password)."""
    import provisioning

    for name in devices:
        site, device = name.split("/", 1)
        try:
            credentials = provisioning.rotate_device_password(settings, site, device)
        except provisioning.ProvisioningError as exc:
            raise CredentialsError(f"cannot rotate the password of {name}: {exc}") from exc
        store.put(site, device, credentials.username, credentials.password)


def stored_accounts(store: CredentialStore, profile: SiteProfile) -> dict[str, tuple[str, str]]:
    """The profile's devices' stored credentials; raises naming any that are missing."""
    found: dict[str, tuple[str, str]] = {}
    missing: list[str] = []
    for spec in profile.device_specs:
        credentials = store.get(profile.site, spec.id)
        if credentials is None:
            missing.append(spec.id)
        else:
            found[spec.id] = credentials
    if missing:
        raise CredentialsError(
            f"no stored password for {len(missing)} device(s) of site {profile.site!r} "
            f"(first {missing[0]!r}) in {store.path}; run the simulation with provisioning "
            f"on (the default) to add them or rotate their passwords")
    return found
