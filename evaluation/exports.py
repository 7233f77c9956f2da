"""An occupancy export from request to bytes: check it, describe it, stream it.

Shared by the API route and ``nattero export``; the caller writes the audit row (with the
reason of a room-level export). What is refused here, before a byte is read:

- any day whose night has not ended yet (the current night, the future): an evaluator
  must never see a door opening of a minute ago;
- a room-level export that is not of whole calendar months (the pseudonyms' blocks,
  see ``evaluation.pseudonyms``), or that gives no reason.

Refusals are worded Danish first, then English: the evaluator page shows them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from evaluation.errors import ExportTooLarge, NightNotEnded, NotWholeMonths, ReasonRequired
from evaluation.formats import XLSX_MAX_ROWS, ExportFormat, write_export
from evaluation.occupancy import (
    Level,
    Manifest,
    OccupancyRequest,
    Source,
    estimate_rows,
    occupancy_rows,
)
from evaluation.period import Period, SiteInfo, load_sites
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
                "k": req.k, "format": self.format.value,
                **({"reason": req.reason} if req.level is Level.ROOM else {})}


#: A room-level reason shorter than this says nothing ("test", "x").
MIN_REASON = 10
MAX_REASON = 500


def prepare_export(conn: psycopg.Connection, request: OccupancyRequest,
                   fmt: ExportFormat, now: datetime | None = None) -> PreparedExport:
    """Check the request (sites exist, nights ended, room level of whole months with a
    reason, the format can hold it) before a byte is sent. ``now`` is the wall clock
    unless a test injects one."""
    sites = load_sites(conn, list(request.sites))
    if request.level is Level.ROOM:
        check_whole_months(request.period, request.reason)
    check_ended(request.period, sites, now or datetime.now(UTC))
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


def check_whole_months(period: Period, reason: str | None) -> None:
    """Room-level data (occupancy per room, alerts) cover whole months and give a reason."""
    if not period.is_whole_months:
        months = period.whole_months()
        raise NotWholeMonths(
            f"Eksport pr. rum dækker hele kalendermåneder (pseudonymerne skifter hver "
            f"måned); vælg fra {months.first} til {months.last}. / Room-level exports cover "
            f"whole calendar months (the room pseudonyms change with the month): give "
            f"from={months.first} to={months.last}, or export at site level.")
    reason = (reason or "").strip()
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        raise ReasonRequired(
            f"Eksport pr. rum kræver en begrundelse på {MIN_REASON}-{MAX_REASON} tegn; den "
            f"skrives i auditloggen. / A room-level export needs a reason of {MIN_REASON} to "
            f"{MAX_REASON} characters, written to the audit log: give reason=... "
            "(nattero export --reason ...).")


def check_ended(period: Period, sites: list[SiteInfo], now: datetime) -> None:
    for site in sites:
        complete = site.complete_at(period)
        if complete > now:
            last = site.last_complete_day(now)
            ends = complete.astimezone(site.tz)
            raise NightNotEnded(
                f"Perioden når ind i en nat, der ikke er slut (sted {site.id}: data til "
                f"{period.last} er først komplette {ends:%Y-%m-%d %H:%M}); kun afsluttede "
                f"nætter kan eksporteres, vælg til-dato {last} eller tidligere. / The period "
                f"reaches a night that has not ended (site {site.id}: data up to "
                f"{period.last} are complete at {ends:%Y-%m-%d %H:%M} {site.tz.key}); only "
                f"nights that have ended can be exported: give to={last} or earlier.")
