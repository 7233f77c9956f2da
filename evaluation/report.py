"""The benefit-evaluation report of one site: a self-contained HTML page and the same as PDF.

Danish by default, English as the alternative (``language``); the words come from the
message catalogue (``core.i18n``) and the page from ``templates/report.html``. The HTML
has no external assets (inline CSS, inline SVG plots) and carries its figures as JSON in
``<script type="application/json" id="nattero-figures">`` for anyone who wants to check
them. The PDF has the pages listed in ``PDF_PAGES``. Every staff-time figure says whether
it was measured, assumed, or estimated from assumptions.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from markupsafe import Markup
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from core.alerts import DEVICE_RULES, STAFF_OUTCOMES, Outcome
from core.i18n import DEFAULT_LANGUAGE, Language, Localizer, localizer, mark
from evaluation import plots
from evaluation.benefit import Ranking, SiteFigures, compare, site_figures
from evaluation.pages import render
from evaluation.period import Period
from evaluation.staff_time import Assumptions
from evaluation.vocabulary import BASIS, OUTCOMES, RULES, name

PDF_PAGES = ("summary", "activity heatmap", "response times", "alerts per night",
             "pilot comparison")

ASSUMPTION_LABELS = {
    "rounds_per_night": mark("Routine rounds per night"),
    "minutes_per_check": mark("Minutes per check of one flat"),
    "handling_minutes": mark("Minutes per alert visit (empty: measured)"),
    "wake_share": mark("Share of checks that wake a sleeping resident"),
    "nights_per_year": mark("Nights per year"),
    "default_handling_minutes": mark("Minutes per visit when nothing was measured"),
}


@dataclass(slots=True)
class BenefitReport:
    figures: SiteFigures
    ranking: Ranking
    generated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {**self.figures.as_dict(), "comparison": self.ranking.rows,
                "generated_at": self.generated_at.isoformat(timespec="seconds")}


def build_report(conn: psycopg.Connection, site: str, period: Period,
                 assumptions: Assumptions | None = None,
                 compare_with: list[str] | None = None) -> BenefitReport:
    """The site's figures, and the comparison with ``compare_with`` over the same period."""
    figures = site_figures(conn, site, period, assumptions)
    others = [site_figures(conn, other, period, assumptions)
              for other in dict.fromkeys(compare_with or []) if other != site]
    return BenefitReport(figures, compare([figures, *others]), datetime.now(UTC))


Row = tuple[str, str, str]  # label, value, basis ("" when it needs none)


def _minutes(t: Localizer, seconds: float | None) -> str:
    return "–" if seconds is None else f"{t.number(seconds / 60)} min"


def _basis(t: Localizer, key: str) -> str:
    return t.gettext(BASIS[key])


def summary_rows(t: Localizer, f: SiteFigures) -> list[Row]:
    st = f.staff_time
    basis = st.basis
    nights = len(f.nights)
    return [
        (t.gettext("Nights with data"), t.number(nights), ""),
        (t.gettext("Flats"), t.number(f.flats), ""),
        (t.gettext("Alerts"), t.number(f.alerts), ""),
        (t.gettext("Alerts per night"), t.number(f.alerts / nights, 2) if nights else "–", ""),
        (t.gettext("Time to acknowledge, median / p90"),
         f"{_minutes(t, f.acknowledge.median_s)} / {_minutes(t, f.acknowledge.p90_s)}",
         _basis(t, "measured")),
        (t.gettext("Time to resolve, median / p90"),
         f"{_minutes(t, f.resolve.median_s)} / {_minutes(t, f.resolve.p90_s)}",
         _basis(t, "measured")),
        (t.gettext("Flat-nights with complete rest"), t.percent(f.rest_share),
         _basis(t, "measured")),
        (t.gettext("Alert visits per night (every resident alert)"),
         t.number(st.visits_per_night, 2), _basis(t, basis["visits_per_night"])),
        (t.gettext("Alerts nobody handled, per night"), t.number(st.unhandled_per_night, 2),
         _basis(t, basis["unhandled_per_night"])),
        (t.gettext("Staff hours freed per night (negative: more time than the rounds)"),
         t.number(st.freed_hours_per_night, 2), _basis(t, basis["freed_hours_per_night"])),
        (t.gettext("Staff hours freed per year"), t.number(st.freed_hours_per_year),
         _basis(t, basis["freed_hours_per_year"])),
        (t.gettext("Checks no longer waking a sleeping resident, per night"),
         t.number(st.waking_checks_avoided_per_night),
         _basis(t, basis["waking_checks_avoided_per_night"]))]


def staff_rows(t: Localizer, f: SiteFigures) -> list[Row]:
    st, a = f.staff_time, f.staff_time.assumptions
    basis = st.basis
    return [
        (t.gettext("Routine rounds per night before the pilot"), t.number(a.rounds_per_night),
         _basis(t, "assumed")),
        (t.gettext("Minutes per check of one flat"), t.number(a.minutes_per_check),
         _basis(t, "assumed")),
        (t.gettext("Flats"), t.number(st.flats), ""),
        (t.gettext("Routine rounds, minutes per night"), t.number(st.routine_minutes_per_night),
         _basis(t, basis["routine_minutes_per_night"])),
        (t.gettext("Alert visits per night (every resident alert, handled or not)"),
         t.number(st.visits_per_night, 2), _basis(t, basis["visits_per_night"])),
        (t.gettext("Of these never handled"), t.number(st.unhandled_per_night, 2),
         _basis(t, basis["unhandled_per_night"])),
        (t.gettext("Minutes per alert visit"), t.number(st.handling_minutes),
         _basis(t, basis["handling_minutes"])),
        (t.gettext("Alert visits, minutes per night"), t.number(st.alert_minutes_per_night),
         _basis(t, basis["alert_minutes_per_night"])),
        (t.gettext("Hours freed per night / per year"),
         f"{t.number(st.freed_hours_per_night, 2)} / {t.number(st.freed_hours_per_year)}",
         _basis(t, basis["freed_hours_per_night"])),
        (t.gettext("Share of checks that wake a sleeping resident"), t.percent(a.wake_share),
         _basis(t, "assumed")),
        (t.gettext("Checks no longer waking a sleeping resident, per night / year"),
         f"{t.number(st.waking_checks_avoided_per_night)} / "
         f"{t.number(st.waking_checks_avoided_per_year)}",
         _basis(t, basis["waking_checks_avoided_per_night"]))]


def comparison_head(t: Localizer) -> list[str]:
    return [t.gettext("Rank"), t.gettext("Site"), t.gettext("Nights"),
            t.gettext("Alerts/night"), t.gettext("Help given"), t.gettext("False alarms"),
            t.gettext("Ack. median"), t.gettext("Complete rest"),
            t.gettext("Hours freed/night (estimate)"), t.gettext("Mean rank")]


def comparison_rows(t: Localizer, ranking: Ranking) -> list[list[str]]:
    return [[str(r["rank"]), r["name"], t.number(r["nights"]), t.number(r["alerts_per_night"], 2),
             t.percent(r["help_given_share"]), t.percent(r["false_alarm_share"]),
             _minutes(t, r["median_ack_s"]), t.percent(r["rest_share"]),
             t.number(r["freed_hours_per_night"], 2), t.number(r["mean_rank"], 2)]
            for r in ranking.rows]


OUTCOME_COLUMNS: list[str] = [*STAFF_OUTCOMES, Outcome.CLEARED, "unresolved"]


def render_html(report: BenefitReport, language: Language = DEFAULT_LANGUAGE) -> str:
    t = localizer(language)
    f = report.figures
    by_rule = [[name(t, RULES, rule), *[t.number(counts.get(o, 0)) for o in OUTCOME_COLUMNS],
                t.number(sum(counts.values()))] for rule, counts in f.alerts_by_rule.items()]
    per_night = [[t.date(n.night, "medium"), t.number(n.alerts),
                  *[t.number(n.by_outcome.get(o, 0)) for o in OUTCOME_COLUMNS[:3]],
                  f"{n.flats_at_rest}/{n.flats_reporting}", t.percent(n.rest_share)]
                 for n in f.nights]
    figures_json = Markup(json.dumps(report.as_dict()).replace("</", "<\\/"))
    fields = [(key, t.gettext(ASSUMPTION_LABELS[key]), "" if value is None else value)
              for key, value in f.staff_time.assumptions.as_dict().items()]
    response = plots.response_times(f, t)
    charts = {"activity": plots.activity_heatmap(f, t),
              "response": response,
              "per_night": plots.alerts_per_night(f, t),
              "comparison": plots.site_comparison(report.ranking, t)}
    svgs = {key: None if chart is None else Markup(plots.svg(chart))
            for key, chart in charts.items()}
    return render(
        "report.html", t, f=f, report=report, summary=summary_rows(t, f),
        staff=staff_rows(t, f), fields=fields,
        outcome_head=[name(t, OUTCOMES, o) for o in OUTCOME_COLUMNS], by_rule=by_rule,
        per_night=per_night, comparison_head=comparison_head(t),
        comparison=comparison_rows(t, report.ranking), svgs=svgs,
        unhandled=_unhandled(f),
        empty_nights=[t.date(n, "medium") for n in f.empty_nights],
        generated=t.moment(report.generated_at, UTC), figures_json=figures_json)


def _unhandled(f: SiteFigures) -> int:
    return sum(c.get("unresolved", 0) for rule, c in f.alerts_by_rule.items()
               if rule not in DEVICE_RULES)


def _text_page(title: str, sections: list[tuple[str, list[Row]]],
               notes: list[str]) -> Figure:
    fig = Figure(figsize=plots.A4_LANDSCAPE)
    fig.text(0.05, 0.94, title, fontsize=16, weight="bold")
    y = 0.905
    for note in notes:
        fig.text(0.05, y, note, fontsize=9, color="#8a1c16")
        y -= 0.025
    y -= 0.01
    for heading, rows in sections:
        fig.text(0.05, y, heading, fontsize=12, weight="bold")
        y -= 0.035
        for label, value, basis in rows:
            fig.text(0.07, y, label, fontsize=8.5)
            fig.text(0.60, y, value, fontsize=8.5)
            fig.text(0.76, y, basis, fontsize=8.5, color="#555555")
            y -= 0.025
        y -= 0.02
    return fig


def render_pdf(report: BenefitReport, language: Language = DEFAULT_LANGUAGE) -> bytes:
    """The report as PDF, one page per entry of ``PDF_PAGES``."""
    t = localizer(language)
    f = report.figures
    title = t.gettext("Benefit evaluation: {name} ({first} – {last})", name=f.name,
                      first=t.date(f.period.first, "medium"), last=t.date(f.period.last, "medium"))
    notes = []
    if f.empty_nights:
        notes.append(t.ngettext(
            "{n} night of the period has no data from any sensor and is not counted: "
            "{nights}.", "{n} nights of the period have no data from any sensor and are not "
            "counted: {nights}.", len(f.empty_nights),
            nights=", ".join(t.date(n, "medium") for n in f.empty_nights)))
    unhandled = _unhandled(f)
    if unhandled:
        notes.append(t.ngettext(
            "{n} alert was never handled. It is counted as a visit, never as time saved.",
            "{n} alerts were never handled. They are counted as visits, never as time saved.",
            unhandled))
    summary = _text_page(title, [(t.gettext("Summary"), summary_rows(t, f)),
                                 (t.gettext("Staff time"), staff_rows(t, f))], notes)
    size = plots.A4_LANDSCAPE
    response = plots.response_times(f, t, size) or plots.notice(
        t.gettext("Response times"), t.gettext("no acknowledgements in the period"), size)
    pages = [summary, plots.activity_heatmap(f, t, size), response,
             plots.alerts_per_night(f, t, size), plots.site_comparison(report.ranking, t, size)]
    assert len(pages) == len(PDF_PAGES)
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={
            "Title": t.gettext("Nattero benefit evaluation {site}", site=f.site),
            "Creator": "Nattero"}) as pdf:
        for page in pages:
            pdf.savefig(page)
    return buffer.getvalue()
