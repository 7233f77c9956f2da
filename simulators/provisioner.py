"""Provision the profiles' sites, rooms, bases and devices like an admin: ``nattero site apply``.

The simulator is a client of Nattero, not a part of it: it runs the ``nattero`` command line
of its own interpreter (``python -m nattero``) once for all sites, with their layouts as
YAML documents on stdin, and keeps the passwords printed for the devices added. Idempotent:
a second run adds nothing. A device that exists but whose password the simulator does not
know (the credentials file was lost) gets a new one from ``nattero device rotate``. The
simulator then connects with each device's own account, never a privileged one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from simulators.credentials import CredentialStore
from simulators.errors import CredentialsError, SimulatorError
from simulators.profile import SiteProfile
from simulators.rounds import PlannedRound, rounds_csv

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["layout", "provision_sites", "rotate_devices", "stored_accounts"]

# A consent without a date in the profile is taken as on file long before any simulated
# night; left out, the store would date it today, and past nights would be unmonitored.
CONSENT_ON_FILE_SINCE = date(2020, 1, 1)
CLI_TIMEOUT_S = 300.0


def layout(profile: SiteProfile) -> dict[str, Any]:
    """The profile as a ``nattero site apply`` document."""
    rooms: list[dict[str, Any]] = []
    for room in profile.rooms:
        entry: dict[str, Any] = {"id": room.id, "kind": room.kind.value, "label": room.label}
        if room.route:
            entry["corridor"] = room.route[0]  # the common room the flat's door opens onto
        if room.basis is not None:
            basis = room.basis
            entry["basis"] = {
                "consent": basis.consent, "decision": basis.decision_ref,
                "valid_from": (basis.valid_from or CONSENT_ON_FILE_SINCE).isoformat(),
                "valid_to": basis.valid_to.isoformat() if basis.valid_to else None}
        rooms.append(entry)
    return {"site": profile.site, "name": profile.name, "tz": profile.tz,
            "night": profile.night, "rooms": rooms,
            "devices": [{"id": spec.id, "room": spec.room, "kind": spec.kind.value,
                         "heartbeat": spec.heartbeat_s} for spec in profile.device_specs],
            "rules": {rule.value: spec.model_dump(mode="json", exclude_none=True)
                      for rule, spec in profile.rules.items()}}


def provision_sites(settings: Settings, profiles: Sequence[SiteProfile],
                    store: CredentialStore) -> int:
    """Make the sites match the profiles; returns how many device passwords were issued."""
    if not profiles:
        return 0
    documents = "\n---\n".join(json.dumps(layout(profile)) for profile in profiles)
    applied = _nattero(settings, ["site", "apply", "-", "--json"], documents)
    issued = 0
    for site in applied:
        for device, credentials in site["devices"].items():
            store.put(site["site"], device, credentials["username"], credentials["password"])
            issued += 1
    lost = [f"{profile.site}/{spec.id}" for profile in profiles
            for spec in profile.device_specs if store.get(profile.site, spec.id) is None]
    if lost:
        rotate_devices(settings, store, lost)
    return issued + len(lost)


def rotate_devices(settings: Settings, store: CredentialStore, devices: Iterable[str]) -> None:
    """New passwords for ``site/device`` names the broker refused (stale stored password)."""
    by_site: dict[str, list[str]] = {}
    for name in devices:
        site, device = name.split("/", 1)
        by_site.setdefault(site, []).append(device)
    for site, names in by_site.items():
        try:
            rotated = _nattero(settings, ["device", "rotate", site, *names, "--json"])
        except SimulatorError as exc:
            raise CredentialsError(f"cannot rotate the passwords of site {site!r}'s devices "
                                   f"({', '.join(names)}): {exc}") from exc
        for entry in rotated:
            store.put(entry["site"], entry["device"], entry["username"], entry["password"])


def log_rounds(settings: Settings, site: str, first: date, last: date,
               rounds: Sequence[PlannedRound]) -> int:
    """Set the site's baseline period and add the rounds staff logged (``nattero site
    baseline`` and ``nattero site rounds``); returns how many rounds were new."""
    _nattero(settings, ["site", "baseline", site, "--from", first.isoformat(),
                        "--to", last.isoformat(), "--json"])
    added = _nattero(settings, ["site", "rounds", site, "-", "--json"], rounds_csv(rounds))
    return int(added["stored"])


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


def _nattero(settings: Settings, args: list[str], stdin: str = "") -> Any:
    """Run ``nattero ARGS`` of this interpreter against ``settings``' stack; its JSON output."""
    command = [sys.executable, "-m", "nattero", *args]
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, env=_environment(settings), check=False)
    except subprocess.TimeoutExpired as exc:
        raise SimulatorError(f"`nattero {' '.join(args)}` did not finish within "
                             f"{CLI_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = lines[-1].removeprefix("error: ") if lines else f"exit code {done.returncode}"
        raise SimulatorError(f"`nattero {' '.join(args)}` failed: {reason}")
    return json.loads(done.stdout)


def _environment(settings: Settings) -> dict[str, str]:
    """This process's environment, with what ``settings`` was given explicitly on top."""
    env = dict(os.environ)
    env["NATTERO_STATE_DIR"] = str(settings.state_dir.resolve())
    for name in ("database_url", "mqtt_host", "mqtt_port", "broker_admin_username",
                 "broker_admin_password"):
        value = getattr(settings, name)
        if name in settings.model_fields_set and value is not None:
            env[f"NATTERO_{name.upper()}"] = str(value)
    return env
