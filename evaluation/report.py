"""The benefit-evaluation report of one site: a self-contained HTML page and the same as PDF.

The HTML has no external assets (inline CSS, inline SVG plots) and carries its figures as
JSON in ``<script type="application/json" id="nattero-figures">`` for anyone who wants
to check them. The PDF has the pages listed in ``PDF_PAGES``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import psycopg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from core.alerts import STAFF_OUTCOMES, Outcome
from evaluation import plots
from evaluation.benefit import Ranking, SiteFigures, compare, site_figures
from evaluation.period import Period
from evaluation.staff_time import Assumptions

PDF_PAGES = ("summary", "activity heatmap", "response times", "alerts per night",
             "pilot comparison")


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


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f} min"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    cells = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:right}th{background:#eef}td:first-child,th:first-child{
text-align:left}.note{color:#555;font-size:.9em}svg{max-width:100%;height:auto}
form label{display:inline-block;margin-right:1em}"""


def summary_rows(f: SiteFigures) -> list[list[Any]]:
    st = f.staff_time
    return [
        ["Nights", len(f.nights)], ["Flats", f.flats], ["Alerts", f.alerts],
        ["Alerts per night", f"{f.alerts / len(f.nights):.2f}" if f.nights else "–"],
        ["Time to acknowledge, median / p90",
         f"{_minutes(f.acknowledge.median_s)} / {_minutes(f.acknowledge.p90_s)}"],
        ["Time to resolve, median / p90",
         f"{_minutes(f.resolve.median_s)} / {_minutes(f.resolve.p90_s)}"],
        ["Flat-nights with complete rest", _share(f.rest_share)],
        ["Staff hours freed per night", st.freed_hours_per_night],
        ["Staff hours freed per year", st.freed_hours_per_year],
        ["Checks no longer waking a sleeping resident, per night",
         st.waking_checks_avoided_per_night]]


def staff_rows(f: SiteFigures) -> list[list[Any]]:
    st, a = f.staff_time, f.staff_time.assumptions
    return [
        ["Routine rounds per night (assumed)", a.rounds_per_night],
        ["Minutes per check of one flat (assumed)", a.minutes_per_check],
        ["Flats", st.flats],
        ["Routine rounds, minutes per night", st.routine_minutes_per_night],
        ["Alert visits per night (measured)", st.visits_per_night],
        ["Handling minutes per visit (" + ("measured" if st.handling_measured
                                            else "assumed") + ")", st.handling_minutes],
        ["Alert visits, minutes per night", st.alert_minutes_per_night],
        ["Hours freed per night / per year",
         f"{st.freed_hours_per_night} / {st.freed_hours_per_year}"],
        ["Share of checks that wake a sleeping resident (assumed)", a.wake_share],
        ["Checks no longer waking a sleeping resident, per night / year",
         f"{st.waking_checks_avoided_per_night} / {st.waking_checks_avoided_per_year}"]]


def comparison_rows(ranking: Ranking) -> list[list[Any]]:
    return [[r["rank"], r["site"], r["nights"], r["alerts_per_night"],
             _share(r["help_given_share"]), _share(r["false_alarm_share"]),
             _minutes(r["median_ack_s"]), _share(r["rest_share"]),
             r["freed_hours_per_night"], r["mean_rank"]] for r in ranking.rows]


COMPARISON_HEAD = ["Rank", "Site", "Nights", "Alerts/night", "Help given", "False alarms",
                   "Ack. median", "Complete rest", "Hours freed/night", "Mean rank"]


def render_html(report: BenefitReport) -> str:
    f = report.figures
    a = f.staff_time.assumptions
    outcomes = [*STAFF_OUTCOMES, Outcome.CLEARED, "unresolved"]
    by_rule = [[rule, *[counts.get(o, 0) for o in outcomes], sum(counts.values())]
               for rule, counts in f.alerts_by_rule.items()]
    per_night = [[n.night.isoformat(), n.alerts, *[n.by_outcome.get(o, 0) for o in outcomes[:3]],
                  f"{n.flats_at_rest}/{n.flats_reporting}", _share(n.rest_share)]
                 for n in f.nights]
    figures_json = json.dumps(report.as_dict()).replace("</", "<\\/")
    fields = "".join(
        f'<label>{escape(name.replace("_", " "))} <input name="{name}" '
        f'value="{"" if value is None else value}" size="5"></label>'
        for name, value in a.as_dict().items())
    charts = [plots.activity_heatmap(f), plots.response_times(f), plots.alerts_per_night(f),
              plots.site_comparison(report.ranking)]
    svgs = [plots.svg(chart) for chart in charts]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Benefit evaluation – {escape(f.name)} – {f.period.label()}</title>
<style>{STYLE}</style></head><body>
<h1>Benefit evaluation: {escape(f.name)}</h1>
<p>Nights {f.period.first} to {f.period.last} (evening dates). Generated
{report.generated_at:%Y-%m-%d %H:%M} UTC. Anonymous: rooms and devices are not named.</p>
<h2>Summary</h2>{_table(["Figure", "Value"], summary_rows(f))}
<h2>Alerts by type and outcome</h2>
{_table(["Rule", *[o.replace("_", " ") for o in outcomes], "Total"], by_rule)}
<h2>Staff time</h2>
<p class="note">Routine rounds before the pilot (rounds × flats × minutes per check) against
alert-driven visits now (visits × handling time). Assumed values can be changed:</p>
<form method="get"><input type="hidden" name="site" value="{escape(f.site)}">
<input type="hidden" name="from" value="{f.period.first}">
<input type="hidden" name="to" value="{f.period.last}">{fields}
<button>Recalculate</button></form>
{_table(["Figure", "Value"], staff_rows(f))}
<h2>Night-time activity</h2>{svgs[0]}
<h2>Response times</h2>{svgs[1]}
<h2>Alerts per night</h2>{svgs[2]}
<h2>Per night</h2>
{_table(["Night", "Alerts", "Help given", "No action needed", "False alarm", "Flats at rest",
         "Complete rest"], per_night)}
<h2>Pilots side by side</h2>
<p class="note">Ranked by mean rank over: hours freed per night, share of complete rest
(higher is better), median time to acknowledge and share of false alarms (lower).</p>
{_table(COMPARISON_HEAD, comparison_rows(report.ranking))}{svgs[3]}
<h2>Definitions</h2><p class="note">A night is the night window beginning on the evening of
its date. A flat had complete night rest when it reported during the window with no door
opening, bed exit, motion or presence, and no resident alert. Staff visits are alerts
resolved by staff with an outcome; time to acknowledge and resolve count from the moment
the alert was raised.</p>
<script type="application/json" id="nattero-figures">{figures_json}</script>
</body></html>
"""


def _text_page(title: str, lines: list[tuple[str, list[list[Any]]]]) -> Figure:
    fig = Figure(figsize=plots.A4_LANDSCAPE)
    fig.text(0.05, 0.94, title, fontsize=18, weight="bold")
    y = 0.88
    for heading, rows in lines:
        fig.text(0.05, y, heading, fontsize=12, weight="bold")
        y -= 0.035
        for label, value in rows:
            fig.text(0.07, y, str(label), fontsize=9)
            fig.text(0.62, y, str(value), fontsize=9)
            y -= 0.027
        y -= 0.02
    return fig


def render_pdf(report: BenefitReport) -> bytes:
    """The report as PDF, one page per entry of ``PDF_PAGES``."""
    f = report.figures
    summary = _text_page(
        f"Benefit evaluation: {f.name}  ({f.period.first} – {f.period.last})",
        [("Summary", summary_rows(f)), ("Staff time", staff_rows(f))])
    size = plots.A4_LANDSCAPE
    pages = [summary, plots.activity_heatmap(f, size), plots.response_times(f, size),
             plots.alerts_per_night(f, size), plots.site_comparison(report.ranking, size)]
    assert len(pages) == len(PDF_PAGES)
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": f"Nattero benefit evaluation {f.site}",
                                    "Creator": "Nattero"}) as pdf:
        for page in pages:
            pdf.savefig(page)
    return buffer.getvalue()
