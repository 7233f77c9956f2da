"""The report's plots as matplotlib figures (object API, no pyplot: safe in worker threads).

Each function returns a ``Figure``; the HTML embeds it as inline SVG, the PDF as a page.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display, ever

from matplotlib.figure import Figure

from core.alerts import Outcome
from evaluation.benefit import Ranking, SiteFigures

OUTCOME_COLOURS = {Outcome.HELP_GIVEN: "#2f7d4f", Outcome.NO_ACTION_NEEDED: "#8aa6c1",
                   Outcome.FALSE_ALARM: "#d08a3c", Outcome.CLEARED: "#bbbbbb",
                   "unresolved": "#7a2a2a"}
A4_LANDSCAPE = (11.69, 8.27)


def activity_heatmap(f: SiteFigures, size: tuple[float, float] = (9, 5)) -> Figure:
    nights = sorted(f.activity)
    matrix = [[f.activity[n].get(h, 0) for h in f.night_hours] for n in nights]
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    image = ax.imshow(matrix or [[0]], aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(len(f.night_hours)), [f"{h:02d}" for h in f.night_hours])
    step = max(1, len(nights) // 15)
    ax.set_yticks(range(0, len(nights), step), [n.isoformat() for n in nights[::step]])
    ax.set_xlabel("local hour")
    ax.set_ylabel("night (evening date)")
    ax.set_title(f"Night-time activity, {f.name}: events per hour")
    fig.colorbar(image, ax=ax, label="door open, bed exit, motion")
    fig.tight_layout()
    return fig


def response_times(f: SiteFigures, size: tuple[float, float] = (9, 4.5)) -> Figure:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ack = [s / 60 for s in f.ack_seconds]
    res = [s / 60 for s in f.resolve_seconds]
    top = max([*ack, *res, 1.0])
    bins = [top * i / 30 for i in range(31)]
    ax.hist(ack, bins=bins, alpha=0.7, label=f"to acknowledge (n={len(ack)})", color="#3c6e9f")
    ax.hist(res, bins=bins, alpha=0.6, label=f"to resolve (n={len(res)})", color="#d08a3c")
    for value, colour in ((f.acknowledge.median_s, "#3c6e9f"), (f.resolve.median_s, "#d08a3c")):
        if value is not None:
            ax.axvline(value / 60, color=colour, linestyle="--", linewidth=1)
    ax.set_xlabel("minutes after the alert was raised (dashed: median)")
    ax.set_ylabel("alerts")
    ax.set_title("Response times")
    ax.legend()
    fig.tight_layout()
    return fig


def alerts_per_night(f: SiteFigures, size: tuple[float, float] = (9, 4.5)) -> Figure:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    labels = [n.night.strftime("%d/%m") for n in f.nights]
    bottom = [0] * len(f.nights)
    outcomes = sorted({o for n in f.nights for o in n.by_outcome},
                      key=lambda o: list(OUTCOME_COLOURS).index(o)
                      if o in OUTCOME_COLOURS else 99)
    for outcome in outcomes:
        values = [n.by_outcome.get(outcome, 0) for n in f.nights]
        ax.bar(range(len(values)), values, bottom=bottom, label=outcome.replace("_", " "),
               color=OUTCOME_COLOURS.get(outcome, "#555555"))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(labels) // 15)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45)
    ax.set_ylabel("alerts")
    ax.set_title("Alerts per night, by outcome")
    if outcomes:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def site_comparison(ranking: Ranking, size: tuple[float, float] = (9, 4.5)) -> Figure:
    fig = Figure(figsize=size)
    left, right = fig.subplots(1, 2)
    names = [r["site"] for r in ranking.rows]
    left.barh(names, [r["freed_hours_per_night"] for r in ranking.rows], color="#2f7d4f")
    left.set_xlabel("staff hours freed per night")
    left.invert_yaxis()
    right.barh(names, [100 * (r["rest_share"] or 0) for r in ranking.rows], color="#3c6e9f")
    right.set_xlabel("flat-nights with complete rest, %")
    right.invert_yaxis()
    right.set_yticks(range(len(names)), [""] * len(names))
    fig.suptitle("Pilots side by side (best ranked on top)")
    fig.tight_layout()
    return fig


def svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (fonts as paths: no external assets)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]
