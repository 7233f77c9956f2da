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
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from markupsafe import Markup
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from core.alerts import STAFF_OUTCOMES, Outcome
from core.i18n import DEFAULT_LANGUAGE, Language, Localizer, localizer, mark
from evaluation import investment, plots
from evaluation.benefit import Ranking, SiteFigures, compare, site_figures
from evaluation.decision import Decision, decide
from evaluation.economics import Economics, EconomicsSettings, economics, load_settings
from evaluation.pages import render
from evaluation.period import Period
from evaluation.staff_time import Assumptions
from evaluation.vocabulary import BASIS, OUTCOMES, QUESTIONS, RULES, name

PDF_PAGES = ("summary", "economics and decision", "rounds and experience", "activity heatmap",
             "response times", "alerts per night", "pilot comparison")

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
    settings: EconomicsSettings = field(default_factory=load_settings)
    economics: Economics | None = None     # the site's; None: computed from the settings
    decision: Decision | None = None       # every pilot of the report; None: this site only

    def __post_init__(self) -> None:
        if self.economics is None:
            self.economics = site_economics(self.settings, self.figures)
        if self.decision is None:
            self.decision = decide(self.settings, [(self.figures, self.economics)])

    def as_dict(self) -> dict[str, Any]:
        assert self.economics is not None and self.decision is not None
        return {**self.figures.as_dict(), "comparison": self.ranking.rows,
                "economics": self.economics.as_dict(), "decision": self.decision.as_dict(),
                "generated_at": self.generated_at.isoformat(timespec="seconds")}


def site_economics(settings: EconomicsSettings, f: SiteFigures) -> Economics:
    st = f.staff_time
    return economics(settings, f.site, f.flats, st.freed_hours_per_year,
                     st.basis["freed_hours_per_year"])


def build_report(conn: psycopg.Connection, site: str, period: Period,
                 assumptions: Assumptions | None = None,
                 compare_with: list[str] | None = None,
                 settings: EconomicsSettings | None = None) -> BenefitReport:
    """The site's figures, economics and go/no-go, and the comparison and decision with
    ``compare_with`` over the same period; ``settings``: the packaged defaults if None."""
    settings = settings or load_settings()
    figures = site_figures(conn, site, period, assumptions)
    others = [site_figures(conn, other, period, assumptions)
              for other in dict.fromkeys(compare_with or []) if other != site]
    pilots = [(f, site_economics(settings, f)) for f in [figures, *others]]
    return BenefitReport(figures, compare([figures, *others]), datetime.now(UTC), settings,
                         pilots[0][1], decide(settings, pilots))


Row = tuple[str, str, str]  # label, value, basis ("" when it needs none)

_NO_BASELINE = mark("No rounds were logged in a baseline period: the rounds before the pilot "
                    "are assumed, and so is every figure of time freed that rests on them.")
_EXPERIENCE_NOTE = mark("The end-of-shift questionnaire is optional and anonymous (1 = disagree, "
                        "5 = agree); the resident-outcome notes are the coordinator's, per flat "
                        "(1 = poor, 5 = good). No name or room is shown.")


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
        (t.gettext("Alert visits per night (every resident call)"),
         t.number(st.visits_per_night, 2), _basis(t, basis["visits_per_night"])),
        (t.gettext("Quiet situations per night (shown on the board, no call)"),
         t.number(f.quiet_situations / nights, 2) if nights else "–", _basis(t, "measured")),
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
        (t.gettext("Routine rounds per night before the pilot"),
         t.number(st.baseline_rounds_per_night, 2), _basis(t, basis["baseline_rounds_per_night"])),
        (t.gettext("Flat-checks per night before the pilot"),
         t.number(st.baseline_checks_per_night, 2), _basis(t, basis["baseline_checks_per_night"])),
        (t.gettext("Rounds per night in the pilot"), t.number(st.pilot_rounds_per_night, 2),
         _basis(t, basis["pilot_rounds_per_night"])),
        (t.gettext("Flat-checks per night in the pilot"), t.number(st.pilot_checks_per_night, 2),
         _basis(t, basis["pilot_checks_per_night"])),
        (t.gettext("Minutes per check of one flat"), t.number(a.minutes_per_check),
         _basis(t, "assumed")),
        (t.gettext("Flats"), t.number(st.flats), ""),
        (t.gettext("Routine rounds, minutes per night"), t.number(st.routine_minutes_per_night),
         _basis(t, basis["routine_minutes_per_night"])),
        (t.gettext("Rounds still walked in the pilot, minutes per night"),
         t.number(st.pilot_round_minutes_per_night),
         _basis(t, basis["pilot_round_minutes_per_night"])),
        (t.gettext("Alert visits per night (every resident call, handled or not)"),
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


def rounds_head(t: Localizer) -> list[str]:
    return [t.gettext("Period"), t.gettext("Nights"), t.gettext("Rounds"),
            t.gettext("Flat-checks"), t.gettext("Rounds per night"),
            t.gettext("Flat-checks per night"), t.gettext("Basis")]


def rounds_rows(t: Localizer, f: SiteFigures) -> list[list[str]]:
    """The rounds of the baseline beside those of the pilot, as measured (logged on the
    board) or, where none were logged, as the assumption the staff time rests on."""
    st, measured = f.staff_time, f.rounds.measured
    rows = []
    for label, count, per_round, per_check, key in (
            (t.gettext("Baseline (before the sensors)"), measured.baseline,
             st.baseline_rounds_per_night, st.baseline_checks_per_night, "baseline"),
            (t.gettext("Pilot"), measured.pilot, st.pilot_rounds_per_night,
             st.pilot_checks_per_night, "pilot")):
        basis = st.basis[f"{key}_rounds_per_night"]
        logged = basis == "measured"
        rows.append([label, t.number(count.nights) if logged else "–",
                     t.number(count.rounds) if logged else "–",
                     t.number(count.flat_checks) if logged else "–",
                     t.number(per_round, 2), t.number(per_check, 2), _basis(t, basis)])
    return rows


def experience_rows(t: Localizer, f: SiteFigures) -> list[Row]:
    """Counts and means of the questionnaire and the outcome notes (never a room)."""
    e = f.experience
    if e is None:
        return []
    rows: list[Row] = [(t.gettext("End-of-shift answers"), t.number(e.answers), "")]
    for question in QUESTIONS:
        mean = e.question_means[question]
        rows.append((t.gettext(QUESTIONS[question]),
                     "–" if mean is None else t.gettext(
                         "{mean} of 5 ({n} answers)", mean=t.number(mean, 2),
                         n=t.number(e.question_answers[question])), ""))
    followed = t.ngettext("{n} flat with two notes or more", "{n} flats with two notes or more",
                          e.flats_followed)
    rows += [
        (t.gettext("Resident-outcome notes (flats)"),
         f"{t.number(e.outcome_notes)} ({t.number(e.outcome_flats)})", ""),
        (t.gettext("Self-reliance, mean (1-5)"), _scale(t, e.self_reliance_mean), ""),
        (t.gettext("Quality of life, mean (1-5)"), _scale(t, e.quality_of_life_mean), ""),
        (t.gettext("Change in self-reliance, first to latest note"),
         _scale(t, e.self_reliance_change, signed=True),
         followed),
        (t.gettext("Change in quality of life, first to latest note"),
         _scale(t, e.quality_of_life_change, signed=True),
         followed)]
    return rows


def _scale(t: Localizer, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return ("+" if signed and value > 0 else "") + t.number(value, 2)


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
    assert report.economics is not None and report.decision is not None
    econ, decision = report.economics, report.decision
    return render(
        "report.html", t, f=f, report=report, summary=summary_rows(t, f),
        econ=econ, cost_table=investment.economics_table(t, econ),
        payback=investment.payback_rows(t, econ, report.settings),
        kl=investment.kl_rows(t, econ, f.name, report.settings),
        decision_summary=investment.decision_summary(t, decision),
        decision_criteria=investment.criteria_text(t, decision),
        decision_head=investment.decision_head(t, decision),
        decision=investment.decision_rows(t, decision),
        price_level=report.settings.price_level,
        staff=staff_rows(t, f), fields=fields,
        rounds_head=rounds_head(t), rounds=rounds_rows(t, f),
        baseline_measured=f.staff_time.baseline_measured,
        experience=experience_rows(t, f), exp=f.experience,
        outcome_head=[name(t, OUTCOMES, o) for o in OUTCOME_COLUMNS], by_rule=by_rule,
        per_night=per_night, comparison_head=comparison_head(t),
        comparison=comparison_rows(t, report.ranking), svgs=svgs,
        unhandled=_unhandled(f),
        empty_nights=[t.date(n, "medium") for n in f.empty_nights],
        generated=t.moment(report.generated_at, UTC), figures_json=figures_json)


def _unhandled(f: SiteFigures) -> int:
    """Calls nobody resolved (a quiet situation still open at the end called nobody)."""
    return f.unhandled_calls


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


def _investment_page(t: Localizer, report: BenefitReport) -> Figure:
    """The cost table, payback and the go/no-go table on one A4 page."""
    assert report.economics is not None and report.decision is not None
    econ, decision = report.economics, report.decision
    fig = Figure(figsize=plots.A4_LANDSCAPE)
    fig.text(0.05, 0.95, t.gettext("Economics"), fontsize=14, weight="bold")
    fig.text(0.05, 0.925, t.gettext("1.000 kr. ({price_level}); savings negative.",
                                    price_level=report.settings.price_level), fontsize=8.5)
    y = 0.90
    if econ.assumed:
        fig.text(0.05, y, t.gettext("These kroner figures rest on assumptions (the cost lines, "
                                    "the wage rate or the rounds before the pilot); change "
                                    "them in the economics settings file."),
                 fontsize=8.5, color="#8a1c16")
        y -= 0.03
    head, rows = investment.economics_table(t, econ)
    columns = [0.05, 0.40, *[0.50 + 0.08 * i for i in range(len(head) - 2)]]
    for row in [head, *rows]:
        for x, cell in zip(columns, row, strict=True):
            fig.text(x, y, cell, fontsize=8, weight="bold" if row is head else "normal")
        y -= 0.022
    y -= 0.01
    for label, value, basis in investment.payback_rows(t, econ, report.settings):
        fig.text(0.05, y, label, fontsize=8)
        fig.text(0.40, y, value, fontsize=8)
        fig.text(0.80, y, basis, fontsize=8, color="#555555")
        y -= 0.022
    for label, value in investment.kl_rows(t, econ, report.figures.name, report.settings):
        fig.text(0.05, y, t.gettext("Hours per citizen-year") + ": " + label, fontsize=8)
        fig.text(0.40, y, value, fontsize=8)
        y -= 0.022
    y -= 0.015
    fig.text(0.05, y, t.gettext("Decision: which tests go on to investment"), fontsize=12,
             weight="bold")
    y -= 0.028
    fig.text(0.05, y, investment.decision_summary(t, decision), fontsize=9)
    y -= 0.028
    head = investment.decision_head(t, decision)[:-1]  # the reasons go under each row
    columns = [0.05, *[0.19 + 0.11 * i for i in range(len(head) - 2)], 0.19 + 0.11 * (
        len(head) - 2)]
    for x, cell in zip(columns, head, strict=True):
        fig.text(x, y, textwrap.fill(cell, 20), fontsize=7, weight="bold", va="top")
    y -= 0.045
    for row, site in zip(investment.decision_rows(t, decision), decision.sites, strict=True):
        name = row[0] if len(row[0]) <= 24 else row[0][:23] + "…"
        for x, cell in zip(columns, [name, *row[1:-1]], strict=True):
            fig.text(x, y, cell, fontsize=7.5, weight="bold" if x == columns[-1] else "normal")
        y -= 0.018
        for line in textwrap.wrap(investment.reasons(t, site), 170):
            fig.text(0.07, y, line, fontsize=6.5, color="#555555")
            y -= 0.016
        y -= 0.008
    return fig


def _rounds_and_experience_page(t: Localizer, f: SiteFigures) -> Figure:
    """The measured rounds beside the baseline's, and the questionnaire and outcome notes:
    the HTML report's two tables on one A4 page, with its notes."""
    fig = Figure(figsize=plots.A4_LANDSCAPE)
    fig.text(0.05, 0.94, t.gettext("Rounds: baseline and pilot"), fontsize=14, weight="bold")
    y = 0.905
    if not f.staff_time.baseline_measured:
        fig.text(0.05, y, t.gettext(_NO_BASELINE), fontsize=8.5, color="#8a1c16")
        y -= 0.03
    columns = [0.05, 0.30, 0.38, 0.46, 0.56, 0.68, 0.82]
    for x, cell in zip(columns, rounds_head(t), strict=True):
        fig.text(x, y, textwrap.fill(cell, 14), fontsize=8, va="top", weight="bold")
    y -= 0.05
    for row in rounds_rows(t, f):
        for x, cell in zip(columns, row, strict=True):
            fig.text(x, y, textwrap.fill(cell, 30), fontsize=8, va="top")
        y -= 0.035
    y -= 0.03
    fig.text(0.05, y, t.gettext("Staff and resident experience"), fontsize=14, weight="bold")
    y -= 0.03
    for line in textwrap.wrap(t.gettext(_EXPERIENCE_NOTE), 160):
        fig.text(0.05, y, line, fontsize=8, color="#555555")
        y -= 0.02
    y -= 0.01
    for label, value, basis in experience_rows(t, f):
        fig.text(0.07, y, label, fontsize=8.5)
        fig.text(0.55, y, value, fontsize=8.5)
        fig.text(0.72, y, basis, fontsize=8.5, color="#555555")
        y -= 0.025
    e = f.experience
    if e is not None and e.comments:
        y -= 0.01
        fig.text(0.05, y, t.gettext("Comments"), fontsize=11, weight="bold")
        y -= 0.028
        for comment in e.comments:
            for line in textwrap.wrap("– " + comment, 150)[:3]:
                if y < 0.04:
                    break
                fig.text(0.07, y, line, fontsize=8)
                y -= 0.02
    elif e is not None and e.comments_withheld:
        fig.text(0.05, y - 0.01, t.ngettext(
            "{n} comment is withheld: fewer than {k} answers in the period could tell who "
            "wrote it.", "{n} comments are withheld: fewer than {k} answers in the period "
            "could tell who wrote them.", e.comments_withheld, k=e.k), fontsize=8.5)
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
    if not f.staff_time.baseline_measured:
        notes.append(t.gettext(_NO_BASELINE))
    summary = _text_page(title, [(t.gettext("Summary"), summary_rows(t, f)),
                                 (t.gettext("Staff time"), staff_rows(t, f))], notes)
    size = plots.A4_LANDSCAPE
    response = plots.response_times(f, t, size) or plots.notice(
        t.gettext("Response times"), t.gettext("no acknowledgements in the period"), size)
    pages = [summary, _investment_page(t, report), _rounds_and_experience_page(t, f),
             plots.activity_heatmap(f, t, size), response,
             plots.alerts_per_night(f, t, size), plots.site_comparison(report.ranking, t, size)]
    assert len(pages) == len(PDF_PAGES)
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={
            "Title": t.gettext("Nattero benefit evaluation {site}", site=f.site),
            "Creator": "Nattero"}) as pdf:
        for page in pages:
            pdf.savefig(page)
    return buffer.getvalue()
