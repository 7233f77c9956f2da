"""Report pages: the benefit evaluation for evaluators, the morning handover for staff.

``/reports/benefit`` is anonymous (no room labels, no device ids) and open to evaluators
and admins; ``/reports/handover`` shows room labels and is for the site's staff and admins.
Both are audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import HTMLResponse

from api.deps import ConnDep, CurrentEvaluator, CurrentStaff, SettingsDep, visible_site
from api.errors import Refusal, responses
from api.language import LanguageDep
from api.models import SITE_PATTERN
from evaluation.economics import load_settings
from evaluation.errors import EvaluationError, UnknownSite
from evaluation.handover import build_handover, render_handover
from evaluation.period import Period
from evaluation.report import build_report, render_html, render_pdf
from evaluation.staff_time import Assumptions
from ingest.audit import audit

router = APIRouter(prefix="/reports", tags=["reports"])

SiteQuery = Annotated[str, Query(pattern=SITE_PATTERN, description="site id")]


def _evaluation_error(exc: EvaluationError) -> Refusal:
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, UnknownSite) else \
        status.HTTP_422_UNPROCESSABLE_CONTENT
    return Refusal(code, exc.message, exc.values)


# Errors are JSON like everywhere else; only the success body is a document. So the
# route keeps the default (JSON) response class and documents 200 as HTML or PDF.
_HTML_OR_PDF: dict[int | str, dict[str, Any]] = {200: {"description": "The report", "content": {
    "text/html": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}
_HTML: dict[int | str, dict[str, Any]] = {200: {"description": "The handover page", "content": {
    "text/html": {"schema": {"type": "string"}}}}}


@router.get("/benefit", response_model=None,
            responses={**_HTML_OR_PDF, **responses(401, 403, 404, 422, 503)})
def benefit(
    user: CurrentEvaluator, conn: ConnDep, site: SiteQuery, language: LanguageDep,
    config: SettingsDep,
    from_: Annotated[date, Query(alias="from", description="first night (evening date)")],
    to: Annotated[date, Query(description="last night, inclusive")],
    compare: Annotated[list[str] | None, Query(
        description="other pilots to rank against (repeat or comma-separate)")] = None,
    format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html",
    rounds_per_night: Annotated[float, Query(ge=0, le=48)] = 3.0,
    minutes_per_check: Annotated[float, Query(ge=0, le=60)] = 2.0,
    handling_minutes: Annotated[float | None, Query(ge=0, le=240)] = None,
    wake_share: Annotated[float, Query(ge=0, le=1)] = 0.3,
    nights_per_year: Annotated[int, Query(ge=1, le=366)] = 365,
    default_handling_minutes: Annotated[float, Query(ge=0, le=240)] = 8.0,
) -> Response:
    """The benefit-evaluation report of a site and period, as self-contained HTML or PDF;
    Danish unless ``lang=en`` or the browser asks for English."""
    others = [s.strip() for v in compare or [] for s in v.split(",") if s.strip()]
    assumptions = Assumptions(rounds_per_night, minutes_per_check, handling_minutes,
                              wake_share, nights_per_year, default_handling_minutes)
    try:
        report = build_report(conn, site, Period(from_, to), assumptions, others,
                              load_settings(config.economics_file))
    except EvaluationError as exc:
        raise _evaluation_error(exc) from None
    audit(conn, user.username, "report.benefit", site, None,
          {"from": from_.isoformat(), "to": to.isoformat(), "compare": others,
           "format": format, "assumptions": assumptions.as_dict()})
    if format == "pdf":
        return Response(render_pdf(report, language), media_type="application/pdf", headers={
            "Content-Disposition":
                f'attachment; filename="benefit-{site}-{from_:%Y%m%d}-{to:%Y%m%d}.pdf"',
            "Content-Language": language})
    return HTMLResponse(render_html(report, language), headers={"Content-Language": language})


@router.get("/handover", response_model=None,
            responses={**_HTML, **responses(401, 403, 404, 422, 503)})
def handover(user: CurrentStaff, conn: ConnDep, site: SiteQuery, language: LanguageDep,
             night: Annotated[date | None, Query(description="default: the last night")] =
             None) -> HTMLResponse:
    """The morning handover of a site's night, one tablet screen, for the day shift;
    Danish unless ``lang=en`` or the browser asks for English."""
    visible_site(user, site)
    try:
        page = build_handover(conn, site, night)
    except EvaluationError as exc:
        raise _evaluation_error(exc) from None
    audit(conn, user.username, "report.handover", site, page.night.isoformat(), {})
    return HTMLResponse(render_handover(page, language), headers={"Content-Language": language})
