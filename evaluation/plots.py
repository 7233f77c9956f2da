"""The report's plots as matplotlib figures (object API, no pyplot: safe in worker threads).

Each function returns a ``Figure``; the HTML embeds it as inline SVG, the PDF as a page.
Titles and axis labels come from the message catalogue in the report's language; a plot
with nothing to show returns ``None`` so the page can say so instead of drawing an empty
axis.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, ever

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from core.alerts import Outcome
from core.i18n import Localizer
from evaluation.benefit import Ranking, SiteFigures
from evaluation.vocabulary import OUTCOMES, name

OUTCOME_COLOURS = {Outcome.HELP_GIVEN: "#2f7d4f", Outcome.NO_ACTION_NEEDED: "#8aa6c1",
                   Outcome.FALSE_ALARM: "#d08a3c", Outcome.CLEARED: "#bbbbbb",
                   "unresolved": "#7a2a2a"}
A4_LANDSCAPE = (11.69, 8.27)


def activity_heatmap(f: SiteFigures, t: Localizer,
                     size: tuple[float, float] = (9, 5)) -> Figure:
    nights = sorted(f.activity)
    matrix = [[f.activity[n].get(h, 0) for h in f.night_hours] for n in nights]
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    image = ax.imshow(matrix or [[0]], aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(len(f.night_hours)), [f"{h:02d}" for h in f.night_hours])
    step = max(1, len(nights) // 15)
    ax.set_yticks(range(0, len(nights), step),
                  [t.date(n, "medium") for n in nights[::step]])
    ax.set_xlabel(t.gettext("local hour"))
    ax.set_ylabel(t.gettext("night (evening date)"))
    ax.set_title(t.gettext("Night-time activity, {name}: events per hour", name=f.name))
    fig.colorbar(image, ax=ax, label=t.gettext("door opened, out of bed, motion"))
    fig.tight_layout()
    return fig


def response_times(f: SiteFigures, t: Localizer,
                   size: tuple[float, float] = (9, 4.5)) -> Figure | None:
    """None when no alert was acknowledged in the period (an empty axis says nothing)."""
    ack = [s / 60 for s in f.ack_seconds]
    res = [s / 60 for s in f.resolve_seconds]
    if not ack:
        return None
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    top = max([*ack, *res, 1.0])
    bins = [top * i / 30 for i in range(31)]
    ax.hist(ack, bins=bins, alpha=0.7, color="#3c6e9f",
            label=t.gettext("to acknowledge (n = {n})", n=t.number(len(ack))))
    ax.hist(res, bins=bins, alpha=0.6, color="#d08a3c",
            label=t.gettext("to resolve (n = {n})", n=t.number(len(res))))
    for value, colour in ((f.acknowledge.median_s, "#3c6e9f"), (f.resolve.median_s, "#d08a3c")):
        if value is not None:
            ax.axvline(value / 60, color=colour, linestyle="--", linewidth=1)
    _localise(ax, t)
    ax.set_xlabel(t.gettext("minutes after the alert was raised (dashed: median)"))
    ax.set_ylabel(t.gettext("alerts"))
    ax.set_title(t.gettext("Response times"))
    ax.legend()
    fig.tight_layout()
    return fig


def _localise(ax: Any, t: Localizer) -> None:
    """Whole alerts on the y axis, and the x axis's decimals in the page's language."""
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda value, _: t.number(value, 0 if float(value).is_integer() else 1)))


def notice(title: str, text: str, size: tuple[float, float] = (9, 4.5)) -> Figure:
    """A page that says in words why there is no plot (the PDF's empty state)."""
    fig = Figure(figsize=size)
    fig.text(0.05, 0.9, title, fontsize=16, weight="bold")
    fig.text(0.5, 0.5, text, fontsize=14, ha="center", style="italic", color="#444444")
    return fig


def alerts_per_night(f: SiteFigures, t: Localizer,
                     size: tuple[float, float] = (9, 4.5)) -> Figure:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    labels = [t.date(n.night, "d/M") for n in f.nights]
    bottom = [0] * len(f.nights)
    outcomes = sorted({o for n in f.nights for o in n.by_outcome},
                      key=lambda o: list(OUTCOME_COLOURS).index(o)
                      if o in OUTCOME_COLOURS else 99)
    for outcome in outcomes:
        values = [n.by_outcome.get(outcome, 0) for n in f.nights]
        ax.bar(range(len(values)), values, bottom=bottom, label=name(t, OUTCOMES, outcome),
               color=OUTCOME_COLOURS.get(outcome, "#555555"))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(labels) // 15)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t.gettext("alerts"))
    ax.set_title(t.gettext("Alerts per night, by outcome"))
    if outcomes:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def site_comparison(ranking: Ranking, t: Localizer,
                    size: tuple[float, float] = (9, 4.5)) -> Figure:
    fig = Figure(figsize=size)
    left, right = fig.subplots(1, 2)
    names = [r["site"] for r in ranking.rows]
    left.barh(names, [r["freed_hours_per_night"] for r in ranking.rows], color="#2f7d4f")
    left.axvline(0, color="#333333", linewidth=0.8)
    left.xaxis.set_major_formatter(FuncFormatter(
        lambda value, _: t.number(value, 0 if float(value).is_integer() else 1)))
    left.set_xlabel(t.gettext("staff hours freed per night (estimate)"))
    left.invert_yaxis()
    right.barh(names, [100 * (r["rest_share"] or 0) for r in ranking.rows], color="#3c6e9f")
    right.set_xlabel(t.gettext("flat-nights with complete rest, %"))
    right.invert_yaxis()
    right.set_yticks(range(len(names)), [""] * len(names))
    fig.suptitle(t.gettext("Pilots side by side (best ranked on top)"))
    fig.tight_layout()
    return fig


def svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (fonts as paths: no external assets)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]
