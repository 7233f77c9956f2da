"""The simulated devices' broker passwords, kept in ``{state_dir}/simulator-credentials.json``.

A device's password is shown only once, when it is added or rotated, so the simulator
keeps what it was given in a file only its owner may read (mode 0600). The file also
remembers which monitoring bases were recorded, so repeated runs do not record them again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from simulators.errors import CredentialsError

__all__ = ["CredentialStore"]

FILE_NAME = "simulator-credentials.json"


class CredentialStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._devices: dict[str, dict[str, str]] = {}
        self._bases: set[str] = set()
        if path.exists():
            try:
                raw: Any = json.loads(path.read_text(encoding="utf-8"))
                self._devices = {key: {"username": str(v["username"]),
                                       "password": str(v["password"])}
                                 for key, v in raw.get("devices", {}).items()}
                self._bases = set(raw.get("bases", []))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise CredentialsError(
                    f"{path} is not a simulator credentials file ({exc}); move it aside and "
                    f"run the simulation with provisioning to rotate the device passwords") \
                    from exc

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> CredentialStore:
        return cls(state_dir.resolve() / FILE_NAME)

    def get(self, site: str, device: str) -> tuple[str, str] | None:
        entry = self._devices.get(f"{site}/{device}")
        return (entry["username"], entry["password"]) if entry else None

    def put(self, site: str, device: str, username: str, password: str) -> None:
        self._devices[f"{site}/{device}"] = {"username": username, "password": password}
        self.save()

    def forget(self, site: str, device: str) -> None:
        self._devices.pop(f"{site}/{device}", None)
        self.save()

    def has_basis(self, key: str) -> bool:
        return key in self._bases

    def add_basis(self, key: str) -> None:
        self._bases.add(key)
        self.save()

    def save(self) -> None:
        """Write atomically, readable by the owner only: these are live passwords."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": 1, "devices": self._devices,
                           "bases": sorted(self._bases)}, indent=2, sort_keys=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
