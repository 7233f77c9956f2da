"""An occupancy export from request to bytes: check it, describe it, stream it.

Shared by the API route and ``nattero export``; the caller writes the audit row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from evaluation.errors import ExportTooLarge
from evaluation.formats import XLSX_MAX_ROWS, ExportFormat, write_export
from evaluation.occupancy import (
    Level,
    Manifest,
    OccupancyRequest,
    Source,
    estimate_rows,
    occupancy_rows,
)
from evaluation.period import SiteInfo, load_sites
from ingest.sites import count_rooms


@dataclass(slots=True)
class PreparedExport:
    request: OccupancyRequest
    format: ExportFormat
    sites: list[SiteInfo]
    manifest: Manifest

    @property
    def filename(self) -> str:
        req = self.request
        sites = req.sites[0] if len(req.sites) == 1 else f"{len(req.sites)}-sites"
        return (f"occupancy-{sites}-{req.level.value}-{req.bucket.value}-"
                f"{req.period.first:%Y%m%d}-{req.period.last:%Y%m%d}.{self.format.suffix}")

    def audit_detail(self) -> dict[str, object]:
        req = self.request
        return {"sites": list(req.sites), "level": req.level.value, "bucket": req.bucket.value,
                "from": req.period.first.isoformat(), "to": req.period.last.isoformat(),
                "k": req.k, "format": self.format.value}


def prepare_export(conn: psycopg.Connection, request: OccupancyRequest,
                   fmt: ExportFormat) -> PreparedExport:
    """Check the request (sites exist, the format can hold it) before a byte is sent."""
    sites = load_sites(conn, list(request.sites))
    if fmt is ExportFormat.XLSX:
        rooms = count_rooms(conn, list(request.sites)) if request.level is Level.ROOM else 0
        if estimate_rows(request, rooms) > XLSX_MAX_ROWS:
            raise ExportTooLarge(
                f"this export may have more rows than XLSX holds ({XLSX_MAX_ROWS:,}); "
                "choose a coarser bucket, a shorter period, or format=parquet or csv")
    manifest = Manifest(request, fmt.value, {s.id: s.tz.key for s in sites})
    return PreparedExport(request, fmt, sites, manifest)


def export_bytes(conn: psycopg.Connection, prepared: PreparedExport, secret_key: str,
                 source: Source = Source.AUTO) -> Iterator[bytes]:
    """The export's bytes; each site is read from the 15-minute rollups where they cover it
    exactly, else from the raw events (same rows either way; the manifest's ``source``
    says which)."""
    rows = occupancy_rows(conn, prepared.request, prepared.sites, prepared.manifest, secret_key,
                          source)
    yield from write_export(prepared.format, prepared.request.columns, rows, prepared.manifest)
