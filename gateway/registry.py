"""Which devices are provisioned: a cache of the ``devices`` table for the gateway.

Looked at every few seconds (so a revoke takes effect quickly even for messages already
queued at the broker) and on a miss, so a device added a moment ago is never dead-lettered
as unknown. Looking is one small query: the table is read again only when the layout
version (migration 0021, bumped by every change to a device's row the registry keeps)
moved. A leased worker runs a gateway per site, and each of them read every device of the
installation every two seconds: half the CPU of a worker idling with twenty sites. Such a
gateway keeps its own site's devices only (``sites``): a takeover of 50 sites read the
whole installation's devices 50 times.

A failed lookup raises ``StoreUnavailable``: an unreachable database must never turn a
good event into an "unknown device" dead letter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg

from core.events import DeviceSource
from ingest import devices as stored
from ingest.devices import KnownDevice
from ingest.rule_layouts import layout_version
from ingest.writer import StoreUnavailable

__all__ = ["DeviceRegistry", "KnownDevice"]

_T = TypeVar("_T")


class DeviceRegistry:
    def __init__(self, dsn: str, refresh_s: float = 2.0,
                 sites: Sequence[str] | None = None) -> None:
        """``sites``: the only sites whose devices are kept (a leased site's gateway, which
        hears only its own site's topics); None: every site's."""
        self._dsn = dsn
        self._sites = list(sites) if sites else None
        self._refresh_s = refresh_s
        self._conn: psycopg.Connection | None = None
        self._by_id: dict[tuple[str, str], KnownDevice] = {}
        self._by_device: dict[str, list[KnownDevice]] = {}
        self._by_external: dict[tuple[str, str], KnownDevice] = {}
        self._loaded_at = 0.0
        self._version: int | None = None  # the layout version of the devices read

    def _read(self, query: Callable[[psycopg.Connection], _T]) -> _T:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=3)
            return query(self._conn)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise StoreUnavailable(f"device registry: {exc}".strip()) from exc

    def reload(self) -> None:
        # The version first: a change committed while the devices are read moves it
        # again, and is read next time, never missed.
        version, devices = self._read(
            lambda conn: (layout_version(conn), stored.known_devices(conn, self._sites)))
        self._version = version
        self._by_id = {(d.site, d.device): d for d in devices}
        self._by_device = {}
        for d in devices:
            self._by_device.setdefault(d.device, []).append(d)
        self._by_external = {(d.source.value, d.external_id): d for d in devices
                             if d.external_id is not None}
        self._loaded_at = time.monotonic()

    def reload_if_stale(self) -> None:
        if time.monotonic() - self._loaded_at < self._refresh_s:
            return
        if self._version is not None and self._read(layout_version) == self._version:
            self._loaded_at = time.monotonic()  # nothing changed: looked at, not read
            return
        self.reload()

    def get(self, site: str, device: str) -> KnownDevice | None:
        found = self._by_id.get((site, device))
        if found is None:
            found = self._read(lambda conn: stored.find_device(conn, site, device))
            if found is not None:
                self._by_id[(site, device)] = found
        return found

    def sites_of(self, device: str) -> list[str]:
        """Sites where a device of this id is provisioned (for a clear wrong-site reason)."""
        if self._sites is not None:  # not all kept: a dead letter's rare question
            return self._read(lambda conn: stored.sites_of_device(conn, device))
        return sorted({d.site for d in self._by_device.get(device, [])})

    def by_external_id(self, source: DeviceSource, external_id: str) -> KnownDevice | None:
        found = self._by_external.get((source.value, external_id))
        if found is None:
            found = self._read(
                lambda conn: stored.device_by_external_id(conn, source, external_id))
            if found is not None:
                self._by_external[(source.value, external_id)] = found
        return found

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
