"""The anonymous alert-level export: one row per alert, for the evaluators' own analysis.

A row holds the local clock hour the alert began in (never its minute), the site, the
room's pseudonym of that calendar month (``evaluation.pseudonyms``, as in room-level
occupancy exports), the room's kind, the rule, the outcome ("unresolved" when nobody
resolved it) and the whole minutes from raising to acknowledging and to resolving. Never a
room id, a room label, a device id, a staff name or an exact time.

Suppression is the occupancy export's own, decided per quarter hour of a site: an alert
that began in a quarter hour with fewer than ``k`` contributing rooms (rooms with any
event, heartbeats included) is left out, so an alert row never tells of a quarter whose
activity every other export withholds; the manifest counts the alerts left out. Like a
room-level export it covers whole calendar months, needs a reason (audited by the caller),
and only nights that have ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from evaluation.exports import check_ended, check_whole_months
from evaluation.formats import ExportFormat, write_export
from evaluation.occupancy import DEFAULT_K, Bucket, needs_zoned_buckets
from evaluation.period import Period, SiteInfo, load_sites
from evaluation.pseudonyms import RoomPseudonyms
from ingest import evaluation as stored
from ingest.occupancy import occupancy_buckets

__all__ = ["ALERT_COLUMNS", "AlertExport", "AlertManifest", "AlertRequest",
           "alert_export_bytes", "alert_rows", "prepare_alert_export"]

ALERT_COLUMNS = ("hour", "site", "room", "room_kind", "rule", "outcome", "ack_minutes",
                 "resolve_minutes")
_QUARTER_S = 900


@dataclass(frozen=True, slots=True)
class AlertRequest:
    sites: tuple[str, ...]
    period: Period
    k: int = DEFAULT_K
    reason: str | None = None


@dataclass(slots=True)
class AlertManifest:
    request: AlertRequest
    format: str
    timezones: dict[str, str]
    rows: int = 0
    suppressed_alerts: int = 0
    rows_per_site: dict[str, int] = field(default_factory=dict)
    suppressed_per_site: dict[str, int] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        req = self.request
        return {
            "export": "alerts", "version": 1,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "parameters": {"sites": list(req.sites), "k": req.k, "format": self.format},
            "period": {"from": req.period.first.isoformat(), "to": req.period.last.isoformat(),
                       "inclusive": True, "timezones": self.timezones,
                       "hour": "local clock hour the alert began in, ISO 8601 with offset"},
            "columns": list(ALERT_COLUMNS),
            "rows": self.rows, "rows_per_site": self.rows_per_site,
            "suppression": {
                "applied": self.suppressed_alerts > 0, "k": req.k,
                "suppressed_alerts": self.suppressed_alerts,
                "suppressed_per_site": self.suppressed_per_site,
                "rule": f"an alert that began in a quarter hour with fewer than {req.k} "
                        "contributing rooms (the occupancy export's suppressed quarters) is "
                        "left out; suppressed_alerts counts them"},
            "pseudonyms": "room = HMAC-SHA256 keyed by the server secret and the calendar "
                          "month of the hour, the same as in room-level occupancy exports of "
                          "that month; rows are in hour, then pseudonym order",
            "not_included": ["room id", "room label", "device id", "staff names",
                             "exact times (hours only)", "alert ids"],
            "definitions": {
                "outcome": "help_given, no_action_needed, false_alarm, "
                           "cleared_automatically, or unresolved (nobody resolved it)",
                "ack_minutes": "whole minutes from raised to acknowledged (empty: never)",
                "resolve_minutes": "whole minutes from raised to resolved (empty: never)"},
        }


@dataclass(slots=True)
class AlertExport:
    request: AlertRequest
    format: ExportFormat
    sites: list[SiteInfo]
    manifest: AlertManifest

    @property
    def filename(self) -> str:
        req = self.request
        sites = req.sites[0] if len(req.sites) == 1 else f"{len(req.sites)}-sites"
        return (f"alerts-{sites}-{req.period.first:%Y%m%d}-{req.period.last:%Y%m%d}."
                f"{self.format.suffix}")

    def audit_detail(self) -> dict[str, object]:
        req = self.request
        return {"sites": list(req.sites), "from": req.period.first.isoformat(),
                "to": req.period.last.isoformat(), "k": req.k, "format": self.format.value,
                "reason": req.reason}


def prepare_alert_export(conn: psycopg.Connection, request: AlertRequest, fmt: ExportFormat,
                         now: datetime | None = None) -> AlertExport:
    """Check the request (sites exist, whole months, a reason, nights ended)."""
    sites = load_sites(conn, list(request.sites))
    check_whole_months(request.period, request.reason)
    check_ended(request.period, sites, now or datetime.now(UTC))
    manifest = AlertManifest(request, fmt.value, {s.id: s.tz.key for s in sites})
    return AlertExport(request, fmt, sites, manifest)


def _published_quarters(conn: psycopg.Connection, site: SiteInfo, start: datetime,
                        end: datetime, k: int) -> set[int]:
    """The quarter hours (epoch seconds // 900) the occupancy export publishes at ``k``."""
    rows = occupancy_buckets(
        conn, site=site.id, tz=site.tz.key, start=start, end=end,
        quarter_zoned=needs_zoned_buckets(site, Bucket.QUARTER, start, end), width=None,
        zoned=False, rollup=None, per_room=False, k=k)
    return {int(row[0].timestamp()) // _QUARTER_S for row in rows if not row[-1]}


def _minutes(later: datetime | None, raised: datetime) -> int | None:
    return None if later is None else int((later - raised).total_seconds() // 60)


def alert_rows(conn: psycopg.Connection, export: AlertExport,
               secret_key: str) -> Iterator[tuple[Any, ...]]:
    """The export's rows, site after site; updates the manifest as it goes."""
    pseudonyms = RoomPseudonyms(secret_key)
    manifest = export.manifest
    for site in export.sites:
        start, end = export.request.period.bounds(site.tz)
        published = _published_quarters(conn, site, start, end, export.request.k)
        rows: list[tuple[Any, ...]] = []
        withheld = 0
        for alert in stored.export_alerts(conn, site.id, start, end):
            if int(alert.first_ts.timestamp()) // _QUARTER_S not in published:
                withheld += 1
                continue
            local = alert.first_ts.astimezone(site.tz)
            hour = local.replace(minute=0, second=0, microsecond=0)
            month = date(local.year, local.month, 1)
            rows.append((hour, site.id, pseudonyms(site.id, alert.room, month),
                         alert.room_kind, alert.rule, alert.outcome or "unresolved",
                         _minutes(alert.acknowledged_at, alert.raised_at),
                         _minutes(alert.resolved_at, alert.raised_at)))
        # Hour, then pseudonym: the order of the store (ids, exact times) must not show.
        rows.sort(key=lambda r: (r[0], r[2], r[4], r[5], r[6] or 0, r[7] or 0))
        manifest.rows += len(rows)
        manifest.rows_per_site[site.id] = len(rows)
        manifest.suppressed_alerts += withheld
        manifest.suppressed_per_site[site.id] = withheld
        yield from rows


def alert_export_bytes(conn: psycopg.Connection, export: AlertExport,
                       secret_key: str) -> Iterator[bytes]:
    yield from write_export(export.format, ALERT_COLUMNS, alert_rows(conn, export, secret_key),
                            export.manifest, name="alerts")
