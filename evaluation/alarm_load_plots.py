"""The alarm-load page's plots, drawn on the server as SVG (matplotlib's object API, as
``evaluation.plots``): the page only shows them, so no plotting code runs in the browser.

Titles and labels come from the message catalogue in the page's language. Rule changes are
drawn on the per-night plot as dashed lines numbered 1, 2, ... in time order: the page's
table of changes uses the same numbers.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from core.i18n import Localizer
from evaluation.alarm_load import OUTCOME_KEYS, AlarmLoad
from evaluation.plots import OUTCOME_COLOURS, svg
from evaluation.vocabulary import OUTCOMES, RULES, name

__all__ = ["PLOTS", "plot_svg"]

RULE_COLOURS = {"left_flat": "#3c6e9f", "bed_exit_not_back": "#8a5fb0",
                "common_motion": "#d08a3c", "building_exit": "#b3261e",
                "sensor_offline": "#777777", "low_battery": "#b8a23a"}
_SIZE = (9.0, 3.6)


def per_night(load: AlarmLoad, t: Localizer) -> Figure:
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    nights = load.nights
    counts = load.per_night()
    bottom = [0] * len(nights)
    for rule in load.rules():
        values = [counts[n][rule] for n in nights]
        ax.bar(range(len(nights)), values, bottom=bottom, label=name(t, RULES, rule),
               color=RULE_COLOURS.get(rule, "#555555"))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    top = max([*bottom, 1])
    for number, change in enumerate(load.changes, start=1):
        # Between the last night before the change and the first it applied to.
        x = (change.first_night - load.first_night).days - 0.5
        if -0.5 <= x <= len(nights) - 0.5:
            ax.axvline(x, color="#222222", linestyle="--", linewidth=1)
            ax.text(x + 0.1, top * 0.97, str(number), fontsize=9, va="top")
    step = max(1, len(nights) // 15)
    ax.set_xticks(range(0, len(nights), step),
                  [t.date(n, "d/M") for n in nights[::step]], rotation=45)
    ax.set_xlim(-0.6, len(nights) - 0.4)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(t.gettext("alerts"))
    ax.set_title(t.gettext("Alerts per night, by rule (dashed: rule changes)"))
    if load.rules():
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def by_hour(load: AlarmLoad, t: Localizer) -> Figure:
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    hours = load.by_hour()
    # The night's hours in order: from noon to noon, as the nights are counted.
    order = [*range(12, 24), *range(12)]
    ax.bar(range(24), [hours[h] for h in order], color="#3c6e9f")
    ax.set_xticks(range(0, 24, 2), [f"{order[i]:02d}" for i in range(0, 24, 2)])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(t.gettext("local hour"))
    ax.set_ylabel(t.gettext("alerts"))
    ax.set_title(t.gettext("Alerts by the hour they began, all nights"))
    fig.tight_layout()
    return fig


def outcomes(load: AlarmLoad, t: Localizer) -> Figure:
    fig = Figure(figsize=(9.0, 2.6))
    ax = fig.add_subplot()
    counts = load.outcomes()
    total = max(1, len(load.alerts))
    shares = [100 * counts[key] / total for key in OUTCOME_KEYS]
    labels = [name(t, OUTCOMES, key) for key in OUTCOME_KEYS]
    ax.barh(range(len(labels)), shares,
            color=[OUTCOME_COLOURS.get(key, "#555555") for key in OUTCOME_KEYS])
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(t.gettext("share of the alerts, %"))
    ax.set_title(t.gettext("What staff found"))
    fig.tight_layout()
    return fig


PLOTS = {"per-night": per_night, "by-hour": by_hour, "outcomes": outcomes}


def plot_svg(load: AlarmLoad, plot: str, t: Localizer) -> str:
    """One of ``PLOTS`` as an ``<svg>`` document."""
    return svg(PLOTS[plot](load, t))
