"""The go/no-go of each pilot test: explicit criteria, a decision per site with its reasons.

The business case asks that at least 3 of the 5 tests go on to investment proposals; this
is the table that decision is made from. Each criterion of the settings
(``evaluation.economics.DecisionSettings``) is a bound on one figure of a site:

- ``recall``: share of the situations that needed a person and got an alert; known only
  from a ground truth (simulation, logged trial), given in the settings (``[known.<site>]``);
- ``needless_per_night``: resident calls per night that needed nobody (false alarm, no
  action needed, cleared by itself, as staff recorded them; a quiet situation that never
  called staff is no call; with calls nobody handled, an estimate from the handled ones,
  not known when none was), or the figure of a ground truth given in the settings
  (``[known.<site>] needless_per_night``);
- ``hours_freed_per_night``: the rounds against every alert visit (an estimate while the
  rounds are assumed);
- ``rest_share``: flat-nights with complete night rest;
- ``staff_experience``: the night staff's own answers at the end of their shifts (the
  board's questionnaire: calm, manageable workload, trust in the alerts, residents' rest;
  1-5, 5 best), the mean over every answer; not known with fewer than ``k`` answers in the
  period (``evaluation.experience``), so a handful of shifts cannot decide a test;
- ``payback_years``: payback on total economy (``None``: never pays back, which fails).

A site goes when every criterion passes; a criterion whose figure is unknown blocks the go
only when it is ``required``. No averaging and no ranking: a noisy site fails its own
bounds however it ranks elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evaluation.benefit import SiteFigures
from evaluation.economics import CriterionName, DecisionSettings, Economics, EconomicsSettings
from evaluation.experience import Experience

__all__ = ["Check", "Decision", "SiteDecision", "decide", "pilot_values",
           "staff_experience"]

#: Outcomes of a resident alert that needed nobody.

ORDER: tuple[CriterionName, ...] = ("recall", "needless_per_night", "hours_freed_per_night",
                                    "rest_share", "staff_experience", "payback_years")


@dataclass(frozen=True, slots=True)
class Check:
    criterion: CriterionName
    value: float | None          # None: not known (or, for payback, never)
    bound: float
    is_min: bool
    required: bool
    passed: bool | None          # None: unknown and not required
    assumed: bool                # the figure rests on an assumption

    @property
    def blocks(self) -> bool:
        return self.passed is False


@dataclass(frozen=True, slots=True)
class SiteDecision:
    site: str
    name: str
    checks: list[Check]

    @property
    def go(self) -> bool:
        return not any(c.blocks for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.blocks]


@dataclass(frozen=True, slots=True)
class Decision:
    sites: list[SiteDecision]
    target: int
    settings: DecisionSettings = field(repr=False)

    @property
    def going(self) -> int:
        return sum(1 for s in self.sites if s.go)

    @property
    def target_met(self) -> bool:
        return self.going >= min(self.target, len(self.sites))

    def as_dict(self) -> dict[str, object]:
        return {"target": self.target, "going": self.going, "target_met": self.target_met,
                "criteria": {k: v.model_dump() for k, v in self.settings.criteria.items()},
                "required": list(self.settings.required),
                "sites": [{"site": s.site, "name": s.name, "go": s.go,
                           "checks": [{"criterion": c.criterion, "value": c.value,
                                       "bound": c.bound, "is_min": c.is_min,
                                       "required": c.required, "passed": c.passed,
                                       "assumed": c.assumed} for c in s.checks]}
                          for s in self.sites]}


def staff_experience(answers: Experience | None) -> float | None:
    """The staff's mean answer (1-5) over every question, None with fewer than ``k``
    answers in the period (too few shifts to speak for the staff, and fewer could single
    out who answered)."""
    if answers is None or answers.answers < answers.k:
        return None
    scored = [(mean, answers.question_answers[q])
              for q, mean in answers.question_means.items() if mean is not None]
    count = sum(n for _, n in scored)
    return round(sum(mean * n for mean, n in scored) / count, 2) if count else None


def needless_per_night(figures: SiteFigures) -> tuple[float | None, bool]:
    """Needless calls per night, from the outcomes staff recorded; with whether it is an
    estimate. A call nobody handled says nothing about need: with some of them the share
    needless among the handled calls stands for all (an estimate); with none handled it is
    not known. Counting only recorded outcomes made an unattended site look quiet."""
    nights, calls = len(figures.nights), figures.calls
    handled = calls - figures.unhandled_calls
    if not nights or (calls and not handled):
        return None, False
    if not figures.unhandled_calls:
        return round(figures.needless_calls / nights, 2), False
    return round(figures.needless_calls / handled * calls / nights, 2), True


def pilot_values(figures: SiteFigures, econ: Economics, recall: float | None,
                 needless_known: float | None = None
                 ) -> dict[CriterionName, tuple[float | None, bool]]:
    """The figures the criteria bound, with whether each rests on an assumption;
    ``needless_known`` (from a ground truth) replaces the count from the outcomes staff
    recorded."""
    nights = len(figures.nights)
    staff = figures.staff_time
    hours_assumed = staff.basis["freed_hours_per_night"] != "measured"
    return {
        "recall": (recall, False),
        "needless_per_night": ((needless_known, False) if needless_known is not None
                               else needless_per_night(figures)),
        "hours_freed_per_night": (staff.freed_hours_per_night if nights else None,
                                  hours_assumed),
        "rest_share": (figures.rest_share, False),
        "staff_experience": (staff_experience(figures.experience), False),
        "payback_years": (econ.payback_total_years, econ.assumed),
    }


def decide(settings: EconomicsSettings,
           pilots: list[tuple[SiteFigures, Economics]]) -> Decision:
    """The go/no-go of every pilot in ``pilots`` against the settings' criteria."""
    rules = settings.decision
    sites: list[SiteDecision] = []
    for figures, econ in pilots:
        known = settings.known.get(figures.site)
        values = pilot_values(figures, econ, known.recall if known else None,
                              known.needless_per_night if known else None)
        checks: list[Check] = []
        for name in ORDER:
            criterion = rules.criteria.get(name)
            if criterion is None:
                continue
            value, assumed = values[name]
            required = name in rules.required
            is_min = criterion.min is not None
            bound = criterion.min if criterion.min is not None else criterion.max
            assert bound is not None
            if value is None and name == "payback_years" and figures.nights:
                passed: bool | None = False  # known: it never pays back
            elif value is None:
                passed = False if required else None
            else:
                passed = criterion.passes(value)
            checks.append(Check(name, value, bound, is_min, required, passed, assumed))
        sites.append(SiteDecision(figures.site, figures.name, checks))
    return Decision(sites, rules.target, rules)
