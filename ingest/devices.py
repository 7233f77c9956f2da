"""The gateway's reads of the store: which devices are provisioned, and what a device
last reported (to restore a bridge adapter's memory after a restart).

Only reads. Connection handling and what a failure means (``StoreUnavailable``) stay with
the caller in ``gateway``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from core.events import DeviceKind, DeviceSource, EventKind

__all__ = ["KnownDevice", "StoredHistory", "device_by_external_id", "device_history",
           "find_device", "known_devices"]


@dataclass(frozen=True, slots=True)
class KnownDevice:
    site: str
    device: str
    room: str
    kind: DeviceKind
    source: DeviceSource
    external_id: str | None
    mapping: str | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """What the store last recorded for one device: enough to restore an adapter's memory."""

    last_level: EventKind | None
    last_ts: datetime | None
    last_event_id: str | None


_SELECT = """SELECT site, id, room, kind, source, external_id, mapping, revoked_at IS NOT NULL
FROM devices"""

_LAST_LEVEL = """SELECT kind FROM events WHERE site = %s AND device = %s AND kind = ANY(%s)
ORDER BY ts DESC, received_at DESC LIMIT 1"""
_LAST_EVENT = """SELECT ts, event_id FROM events WHERE site = %s AND device = %s
ORDER BY ts DESC, received_at DESC LIMIT 1"""


def _known(conn: psycopg.Connection, where: str = "",
           params: tuple[object, ...] = ()) -> list[KnownDevice]:
    rows = conn.execute(_SELECT + where, params).fetchall()
    return [KnownDevice(r[0], r[1], r[2], DeviceKind(r[3]), DeviceSource(r[4]), r[5], r[6],
                        bool(r[7])) for r in rows]


def known_devices(conn: psycopg.Connection, sites: Sequence[str] | None = None
                  ) -> list[KnownDevice]:
    """Every device ever provisioned (of ``sites``; None: of every site), revoked ones
    included (``revoked`` says which)."""
    if sites is None:
        return _known(conn)
    return _known(conn, " WHERE site = ANY(%s)", (list(sites),))


def sites_of_device(conn: psycopg.Connection, device: str) -> list[str]:
    """The sites where a device of this id is provisioned, revoked or not."""
    return [site for (site,) in conn.execute(
        "SELECT DISTINCT site FROM devices WHERE id = %s ORDER BY site", (device,))]


def find_device(conn: psycopg.Connection, site: str, device: str) -> KnownDevice | None:
    return next(iter(_known(conn, " WHERE site = %s AND id = %s", (site, device))), None)


def device_by_external_id(conn: psycopg.Connection, source: DeviceSource,
                          external_id: str) -> KnownDevice | None:
    return next(iter(_known(conn, " WHERE source = %s AND external_id = %s",
                            (source.value, external_id))), None)


def device_history(conn: psycopg.Connection, site: str, device: str,
                   level_kinds: Sequence[EventKind]) -> StoredHistory:
    """The device's last event of one of ``level_kinds`` and its last event of any kind."""
    level = conn.execute(_LAST_LEVEL, (site, device, [k.value for k in level_kinds])).fetchone()
    event = conn.execute(_LAST_EVENT, (site, device)).fetchone()
    return StoredHistory(
        last_level=EventKind(level[0]) if level else None,
        last_ts=event[0] if event else None,
        last_event_id=event[1] if event else None,
    )
