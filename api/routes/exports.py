"""Anonymous occupancy exports for evaluators (and admins); every export is audited, a
room-level one with the reason its requester gave.

The audit row is committed before the first byte is streamed; the rows are then read
through their own pooled connection, as the request's connection is handed back when the
route returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool

from api.deps import ConnDep, CurrentEvaluator, SecretDep
from api.errors import Refusal, responses
from api.models import SITE_PATTERN
from api.users import Role
from evaluation.alert_export import (
    AlertExport,
    AlertRequest,
    alert_export_bytes,
    prepare_alert_export,
)
from evaluation.errors import EvaluationError, UnknownSite
from evaluation.exports import PreparedExport, export_bytes, prepare_export
from evaluation.formats import ExportFormat
from evaluation.occupancy import DEFAULT_K, Bucket, Level, OccupancyRequest
from evaluation.period import Period
from ingest.audit import audit

router = APIRouter(prefix="/exports", tags=["exports"])

SITE_PATTERN_RE = re.compile(SITE_PATTERN)


def _sites(values: list[str]) -> tuple[str, ...]:
    sites = tuple(dict.fromkeys(s.strip() for v in values for s in v.split(",") if s.strip()))
    if not sites:
        raise HTTPException(422, "give at least one site")
    return sites


@router.get("/occupancy", responses=responses(400, 401, 403, 404, 422, 503),
            response_class=StreamingResponse)
def occupancy(
    request: Request, user: CurrentEvaluator, conn: ConnDep, secret: SecretDep,
    site: Annotated[list[str], Query(description="site id; repeat or comma-separate")],
    from_: Annotated[date, Query(alias="from", description="first local day, inclusive")],
    to: Annotated[date, Query(description="last local day, inclusive")],
    level: Annotated[Level, Query(description="site (aggregate) or room (pseudonymised)")] =
        Level.SITE,
    bucket: Annotated[Bucket, Query(description="15m, 1h or 1d")] = Bucket.QUARTER,
    format: Annotated[ExportFormat, Query(description="csv, csv-da, parquet or xlsx")] =
        ExportFormat.CSV,
    k: Annotated[int, Query(ge=1, le=1000, description="suppress buckets with fewer rooms")] =
        DEFAULT_K,
    reason: Annotated[str | None, Query(
        max_length=500, description="why room-level data is needed (required for level=room; "
                                    "written to the audit log)")] = None,
) -> StreamingResponse:
    """Activity per time bucket, anonymous; CSV comes as a ZIP with its manifest."""
    sites = _sites(site)
    for site_id in sites:
        if not SITE_PATTERN_RE.match(site_id):
            raise HTTPException(422,
                                f"{site_id!r} is not a site id")
    if k < DEFAULT_K and user.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"only an admin may lower the suppression threshold below "
                            f"{DEFAULT_K}; ask for k >= {DEFAULT_K}")
    try:
        wanted = OccupancyRequest(sites, Period(from_, to), level, bucket, k, reason)
        prepared = prepare_export(conn, wanted, format)
    except UnknownSite as exc:
        raise Refusal(status.HTTP_404_NOT_FOUND, exc.message, exc.values) from None
    except EvaluationError as exc:
        raise Refusal(422, exc.message, exc.values) from None
    with conn.transaction():
        audit(conn, user.username, "export.occupancy", sites[0] if len(sites) == 1 else None,
              None, prepared.audit_detail())
    pool: ConnectionPool = request.app.state.pool
    return StreamingResponse(
        _stream(pool, prepared, secret), media_type=format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{prepared.filename}"',
                 "Cache-Control": "no-store"})


def _stream(pool: ConnectionPool, prepared: PreparedExport, secret_key: str) -> Iterator[bytes]:
    with pool.connection() as conn:
        yield from export_bytes(conn, prepared, secret_key)



@router.get("/alerts", responses=responses(400, 401, 403, 404, 422, 503),
            response_class=StreamingResponse)
def alerts(
    request: Request, user: CurrentEvaluator, conn: ConnDep, secret: SecretDep,
    site: Annotated[list[str], Query(description="site id; repeat or comma-separate")],
    from_: Annotated[date, Query(alias="from", description="first day of a month")],
    to: Annotated[date, Query(description="last day of a month, inclusive")],
    reason: Annotated[str | None, Query(
        max_length=500, description="why alert-level data is needed (required; written to "
                                    "the audit log)")] = None,
    format: Annotated[ExportFormat, Query(description="csv, csv-da, parquet or xlsx")] =
        ExportFormat.CSV,
    k: Annotated[int, Query(ge=1, le=1000, description="leave out alerts of quarter hours "
                                                       "with fewer contributing rooms")] =
        DEFAULT_K,
) -> StreamingResponse:
    """One row per alert, anonymous: local hour, room pseudonym of the month, room kind,
    rule, outcome, minutes to acknowledge and resolve; CSV comes as a ZIP with its manifest,
    which says how many alerts were left out (k-suppression)."""
    sites = _sites(site)
    for site_id in sites:
        if not SITE_PATTERN_RE.match(site_id):
            raise HTTPException(422, f"{site_id!r} is not a site id")
    if k < DEFAULT_K and user.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"only an admin may lower the suppression threshold below "
                            f"{DEFAULT_K}; ask for k >= {DEFAULT_K}")
    try:
        prepared = prepare_alert_export(conn, AlertRequest(sites, Period(from_, to), k, reason),
                                        format)
    except UnknownSite as exc:
        raise Refusal(status.HTTP_404_NOT_FOUND, exc.message, exc.values) from None
    except EvaluationError as exc:
        raise Refusal(422, exc.message, exc.values) from None
    with conn.transaction():
        audit(conn, user.username, "export.alerts", sites[0] if len(sites) == 1 else None,
              None, prepared.audit_detail())
    pool: ConnectionPool = request.app.state.pool
    return StreamingResponse(
        _stream_alerts(pool, prepared, secret), media_type=format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{prepared.filename}"',
                 "Cache-Control": "no-store"})


def _stream_alerts(pool: ConnectionPool, prepared: AlertExport,
                   secret_key: str) -> Iterator[bytes]:
    with pool.connection() as conn:
        yield from alert_export_bytes(conn, prepared, secret_key)
