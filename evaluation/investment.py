"""The investment pages of the report: the cost table in 1.000 kr., payback, hours per
citizen-year beside the KL cases, and the go/no-go table of the five tests with reasons.

Turns ``evaluation.economics`` and ``evaluation.decision`` into rows of text in the page's
language (``core.i18n``); the HTML template and the PDF page both show these rows. Every
figure that rests on an assumption says so in its own cell or row.
"""

from __future__ import annotations

from core.i18n import Localizer, mark
from evaluation.decision import Check, Decision, SiteDecision
from evaluation.economics import COST_LINES, EconomicsSettings
from evaluation.economics import Economics as SiteEconomics

__all__ = [
    "COSTS",
    "CRITERIA",
    "InvestmentPage",
    "decision_head",
    "decision_rows",
    "economics_table",
    "kl_rows",
    "payback_rows",
]

COSTS = {
    "project_management": mark("Project management"),
    "training_evaluation": mark("Staff released for training and evaluation"),
    "licences_operation": mark("Licences and operation"),
    "devices": mark("Devices"),
    "installation": mark("Installation"),
}

AREAS = {"service": mark("Service"), "anlaeg": mark("Capital")}

CRITERIA = {
    "recall": mark("Recall"),
    "needless_per_night": mark("Needless alerts per night"),
    "hours_freed_per_night": mark("Hours freed per night"),
    "rest_share": mark("Flat-nights at complete rest"),
    "staff_experience": mark("Staff experience (1-5)"),
    "payback_years": mark("Payback, total economy (years)"),
}

InvestmentPage = tuple[list[str], list[list[str]]]  # head, rows


def _thousands(t: Localizer, value: float) -> str:
    return "–" if value == 0 else t.number(round(value), 0) if value == round(value) \
        else t.number(value, 1)


def economics_table(t: Localizer, econ: SiteEconomics) -> InvestmentPage:
    """The business case's table for one site: cost lines by year, the value of the staff
    time freed (a saving is negative), and the net effect per year, in 1.000 kr."""
    head = [t.gettext("1.000 kr."), t.gettext("Area"), *[str(y) for y in econ.years],
            t.gettext("Total")]
    rows: list[list[str]] = []
    for line in COST_LINES:
        values = econ.costs[line]
        rows.append([t.gettext(COSTS[line]), t.gettext(AREAS[econ.areas[line]]),
                     *[_thousands(t, v) for v in values], _thousands(t, sum(values))])
    totals = econ.total_costs
    rows.append([t.gettext("Implementation and operating costs"), "",
                 *[_thousands(t, v) for v in totals], _thousands(t, sum(totals))])
    saving = [-g for g in econ.gain]
    rows.append([t.gettext("Staff time freed (estimate; savings negative)")
                 if econ.hours_basis != "measured"
                 else t.gettext("Staff time freed (savings negative)"), t.gettext("Service"),
                 *[_thousands(t, v) for v in saving], _thousands(t, sum(saving))])
    rows.append([t.gettext("Net effect"), "", *[_thousands(t, v) for v in econ.net],
                 _thousands(t, sum(econ.net))])
    return head, rows


def _years(t: Localizer, years: float | None, horizon: int) -> str:
    if years is None:
        return t.gettext("never: the staff time freed does not cover the running costs")
    text = t.gettext("{years} years", years=t.number(years, 1))
    if years > horizon:
        text += " " + t.gettext("(beyond the table: the last year's costs and gain carried on)")
    return text


def payback_rows(t: Localizer, econ: SiteEconomics,
                 settings: EconomicsSettings) -> list[tuple[str, str, str]]:
    """Label, value, basis: payback on service efficiency and total economy, the wage rate,
    and hours per citizen-year."""
    assumed = t.gettext("estimate (rests on assumptions)") if econ.assumed \
        else t.gettext("measured")
    horizon = len(econ.years)
    return [
        (t.gettext("Payback based on service efficiency"),
         _years(t, econ.payback_service_years, horizon), assumed),
        (t.gettext("Payback based on total economy"),
         _years(t, econ.payback_total_years, horizon), assumed),
        (t.gettext("Staff hours freed per year"), t.number(econ.freed_hours_per_year),
         t.gettext("estimate (rests on assumptions)") if econ.hours_basis != "measured"
         else t.gettext("measured")),
        (t.gettext("Cost of one staff hour"),
         f"{t.number(settings.wage.kr_per_hour, 0)} kr.",
         t.gettext("assumed") if settings.wage.basis == "assumed" else t.gettext("known")),
        (t.gettext("Cost lines"), "", t.gettext("assumed") if econ.costs_basis == "assumed"
         else t.gettext("known")),
    ]


def kl_rows(t: Localizer, econ: SiteEconomics, name: str,
            settings: EconomicsSettings) -> list[list[str]]:
    """Hours per citizen-year of this pilot beside the KL cases."""
    own = "–" if econ.hours_per_citizen_year is None else t.number(econ.hours_per_citizen_year)
    if econ.assumed:
        own += " " + t.gettext("(estimate)")
    rows = [[t.gettext("This pilot: {name}", name=name), own]]
    rows += [[case.name, t.number(case.hours_per_citizen_year)] for case in settings.kl_cases]
    return rows


def decision_head(t: Localizer, decision: Decision) -> list[str]:
    names = [c.criterion for c in decision.sites[0].checks] if decision.sites else []
    return [t.gettext("Test"), *[t.gettext(CRITERIA[n]) for n in names],
            t.gettext("Decision"), t.gettext("Reasons")]


def _value(t: Localizer, check: Check) -> str:
    if check.value is None:
        return t.gettext("never") if check.criterion == "payback_years" and check.passed is False \
            else t.gettext("not known")
    if check.criterion in ("recall", "rest_share"):
        return t.percent(check.value)
    return t.number(check.value, 2 if check.criterion.endswith("per_night") else 1)


def _bound(t: Localizer, check: Check) -> str:
    if check.criterion in ("recall", "rest_share"):
        return t.percent(check.bound)
    return t.number(check.bound, 2 if check.criterion.endswith("per_night") else 1)


def _cell(t: Localizer, check: Check) -> str:
    mark_ = {True: "✓", False: "✗", None: "?"}[check.passed]
    text = f"{mark_} {_value(t, check)}"
    return text + " " + t.gettext("(estimate)") if check.assumed else text


def _reason(t: Localizer, check: Check) -> str:
    label = t.gettext(CRITERIA[check.criterion])
    if check.value is None:
        if check.criterion == "payback_years":
            return t.gettext("{label}: never pays back", label=label)
        return t.gettext("{label} is not known and is required", label=label)
    if check.is_min:
        return t.gettext("{label} {value} is below the limit {bound}", label=label,
                         value=_value(t, check), bound=_bound(t, check))
    return t.gettext("{label} {value} is above the limit {bound}", label=label,
                     value=_value(t, check), bound=_bound(t, check))


def reasons(t: Localizer, site: SiteDecision) -> str:
    if site.go:
        unknown = [t.gettext(CRITERIA[c.criterion]) for c in site.checks if c.passed is None]
        text = t.gettext("every criterion met")
        if unknown:
            text += "; " + t.gettext("not known: {names}", names=", ".join(unknown))
        if any(c.assumed for c in site.checks):
            text += "; " + t.gettext("rests on assumptions")
        return text
    return "; ".join(_reason(t, c) for c in site.failed)


def decision_rows(t: Localizer, decision: Decision) -> list[list[str]]:
    return [[s.name, *[_cell(t, c) for c in s.checks],
             t.gettext("Go") if s.go else t.gettext("No go"), reasons(t, s)]
            for s in decision.sites]


def decision_summary(t: Localizer, decision: Decision) -> str:
    return t.ngettext(
        "{n} of {total} tests goes on to an investment proposal (goal: at least {target}).",
        "{n} of {total} tests go on to an investment proposal (goal: at least {target}).",
        decision.going, total=t.number(len(decision.sites)), target=t.number(decision.target))


def criteria_text(t: Localizer, decision: Decision) -> str:
    parts = []
    for name, criterion in decision.settings.criteria.items():
        label = t.gettext(CRITERIA[name])
        percent = name in ("recall", "rest_share")
        if criterion.min is not None:
            bound = t.percent(criterion.min) if percent else t.number(criterion.min, 2)
            parts.append(t.gettext("{label} at least {bound}", label=label, bound=bound))
        else:
            assert criterion.max is not None
            bound = t.percent(criterion.max) if percent else t.number(criterion.max, 2)
            parts.append(t.gettext("{label} at most {bound}", label=label, bound=bound))
    return "; ".join(parts)
