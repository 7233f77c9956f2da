"""The alarm load of a site, for admins: the figures of the alarm-load page as JSON, and its
plots as SVG drawn on the server (``evaluation.alarm_load``, ``evaluation.alarm_load_plots``).

``GET /sites/{site}/alarm-load`` answers the last ``nights`` nights (default 30) up to
``to`` (default: the site's last night that has begun). Staff get 403: which rooms make the
noise, and the rooms' routines, are a manager's tools. Reading the figures is audited.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from api.deps import ConnDep, CurrentAdmin, NowDep, existing_site
from api.errors import Refusal, responses
from api.language import LanguageDep
from api.models import SiteId
from core.i18n import localizer
from evaluation.alarm_load import DEFAULT_NIGHTS, MAX_NIGHTS, AlarmLoad, build_alarm_load
from evaluation.alarm_load_plots import plot_svg
from evaluation.errors import UnknownSite
from evaluation.period import load_sites
from ingest.audit import audit

router = APIRouter(tags=["admin"])

NightsQuery = Annotated[int, Query(ge=1, le=MAX_NIGHTS, description="how many nights")]
ToQuery = Annotated[date | None, Query(
    ge=date(2000, 1, 1), le=date(2099, 12, 31),
    description="the last night (evening date); default: the last night that has begun")]
_SVG: dict[int | str, dict[str, Any]] = {200: {"description": "The plot", "content": {
    "image/svg+xml": {"schema": {"type": "string"}}}}}


def _load(conn: ConnDep, site: str, to: date | None, nights: int, now: datetime,
          noisiest: bool) -> AlarmLoad:
    existing_site(conn, site)
    try:
        if to is None:
            info = load_sites(conn, [site])[0]
            to = info.night_of(now)
            if now < info.night_window(to)[0]:
                to -= timedelta(days=1)  # tonight has not begun: the last night is yesterday's
        return build_alarm_load(conn, site, to, nights, noisiest=noisiest)
    except UnknownSite as exc:
        raise Refusal(status.HTTP_404_NOT_FOUND, exc.message, exc.values) from None


@router.get("/sites/{site}/alarm-load", responses=responses(401, 403, 404, 422, 503))
def alarm_load(site: SiteId, admin: CurrentAdmin, conn: ConnDep, now: NowDep,
               language: LanguageDep, to: ToQuery = None,
               nights: NightsQuery = DEFAULT_NIGHTS) -> dict[str, Any]:
    """Alerts per night by rule, room and hour; outcome shares; the noisiest rooms with
    their routine and limits; the rule changes of the period (from the audit log)."""
    load = _load(conn, site, to, nights, now, noisiest=True)
    audit(conn, admin.username, "report.alarm_load", site, None,
          {"from": load.first_night.isoformat(), "to": load.last_night.isoformat()})
    return load.as_dict(localizer(language))


@router.get("/sites/{site}/alarm-load/plots/{plot}.svg", response_model=None,
            responses={**_SVG, **responses(401, 403, 404, 422, 503)})
def alarm_load_plot(site: SiteId, plot: Literal["per-night", "by-hour", "outcomes"],
                    admin: CurrentAdmin, conn: ConnDep, now: NowDep, language: LanguageDep,
                    to: ToQuery = None, nights: NightsQuery = DEFAULT_NIGHTS) -> Response:
    """One plot of the alarm-load page as SVG, in the page's language."""
    load = _load(conn, site, to, nights, now, noisiest=False)
    return Response(plot_svg(load, plot, localizer(language)), media_type="image/svg+xml",
                    headers={"Content-Language": language, "Cache-Control": "no-store"})
