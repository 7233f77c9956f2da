"""The economics of a pilot: its costs by year in 1.000 kr., the staff time it frees in
kroner, net effect per year, payback time, and hours per citizen-year beside the KL cases.

The evaluator's settings file (``economics.toml``, packaged with the defaults it
documents) holds the cost model per site, the wage rate and the go/no-go criteria of
``evaluation.decision``; every value in it carries a basis ("assumed" or "known"), and
every figure computed here says whether it rests on an assumption (``Economics.assumed``).

Sign convention of the business case (document 003): costs positive, savings negative;
``net`` per year is costs minus the value of the staff time freed. Payback:

- *on service efficiency*: the cost lines of the service area (project management, staff
  released for training and evaluation, licences and operation) against the staff time
  freed;
- *on total economy*: every cost line, the capital ones (devices, installation) too.

The payback time is when the cumulative gains first cover the cumulative costs: a year's
costs fall at its start and its gain accrues evenly over the year; past the last year of
the table that year's cost and gain carry on, and it is ``None`` when it never pays back.
Never reads the store: it computes from the site's figures and the settings.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evaluation.errors import EvaluationError

__all__ = ["COST_LINES", "Area", "Basis", "Criterion", "DecisionSettings", "Economics",
           "EconomicsSettings", "SettingsError", "economics", "load_settings", "payback"]

Basis = Literal["assumed", "known"]
Area = Literal["service", "anlaeg"]
CostLine = Literal["project_management", "training_evaluation", "licences_operation",
                   "devices", "installation"]
COST_LINES: tuple[CostLine, ...] = ("project_management", "training_evaluation",
                                    "licences_operation", "devices", "installation")


class SettingsError(EvaluationError):
    """The economics settings file cannot be read or does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Wage(_Strict):
    kr_per_hour: float = Field(gt=0)
    basis: Basis = "assumed"


class Residents(_Strict):
    per_flat: float = Field(gt=0)
    basis: Basis = "assumed"


class KLCase(_Strict):
    name: str
    hours_per_citizen_year: float


class SiteCosts(_Strict):
    basis: Basis = "assumed"
    project_management: list[float]
    training_evaluation: list[float]
    licences_operation: list[float]
    devices: list[float]
    installation: list[float]

    def line(self, name: CostLine) -> list[float]:
        values: list[float] = getattr(self, name)
        return values


class Known(_Strict):
    """Figures of a site known from a ground truth (a simulation, a logged trial)."""

    recall: float | None = Field(default=None, ge=0, le=1)
    needless_per_night: float | None = Field(default=None, ge=0)


class Criterion(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Criterion:
        if (self.min is None) == (self.max is None):
            raise ValueError("give a criterion exactly one of min or max")
        return self

    def passes(self, value: float) -> bool:
        return value >= self.min if self.min is not None else value <= (self.max or 0.0)


CriterionName = Literal["recall", "needless_per_night", "hours_freed_per_night", "rest_share",
                        "staff_experience", "payback_years"]


class DecisionSettings(_Strict):
    target: int = Field(default=3, ge=0)
    required: list[CriterionName] = []
    criteria: dict[CriterionName, Criterion]


class EconomicsSettings(_Strict):
    years: list[int] = Field(min_length=1)
    price_level: str = ""
    wage: Wage
    residents: Residents
    kl_cases: list[KLCase] = []
    areas: dict[CostLine, Area]
    costs: dict[str, SiteCosts]
    known: dict[str, Known] = {}
    decision: DecisionSettings

    @model_validator(mode="after")
    def _tables_fit(self) -> EconomicsSettings:
        if "default" not in self.costs:
            raise ValueError("the costs need a [costs.default] block")
        for site, costs in self.costs.items():
            for name in COST_LINES:
                if len(costs.line(name)) != len(self.years):
                    raise ValueError(f"costs.{site}.{name} has {len(costs.line(name))} "
                                     f"values; give one per year of years "
                                     f"({len(self.years)})")
        missing = set(COST_LINES) - set(self.areas)
        if missing:
            raise ValueError(f"areas lacks {sorted(missing)}")
        return self

    def costs_of(self, site: str) -> SiteCosts:
        return self.costs.get(site, self.costs["default"])


def load_settings(path: Path | None = None) -> EconomicsSettings:
    """The settings in ``path``, or the packaged defaults (``evaluation/economics.toml``)."""
    try:
        if path is None:
            text = files("evaluation").joinpath("economics.toml").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        return EconomicsSettings.model_validate(tomllib.loads(text))
    except OSError as exc:
        raise SettingsError(f"cannot read the economics settings {path}: {exc.strerror}; "
                            "give an existing file (a copy of evaluation/economics.toml)"
                            ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"the economics settings {path} are not valid TOML: {exc}; "
                            "compare with evaluation/economics.toml") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise SettingsError(f"the economics settings {path or 'evaluation/economics.toml'} "
                            f"do not fit: {problems}") from None


def payback(costs: Sequence[float], gains: Sequence[float], limit: int = 50) -> float | None:
    """Years from the start of the first year until the cumulative gains cover the cumulative
    costs (both per year, positive). A year's costs fall at its start and its gain accrues
    evenly over it, so the payback within a year is interpolated; past the table the last
    year's cost and gain carry on (up to ``limit`` years); ``None``: it never pays back."""
    owed = 0.0
    years = list(zip(costs, gains, strict=True))
    last = years[-1]
    for year in range(limit):
        cost, gain = years[year] if year < len(years) else last
        owed += cost
        if owed <= 0:
            return float(year)
        if gain > 0 and gain >= owed:
            return year + owed / gain
        owed -= gain
        if year >= len(years) and gain <= cost:
            return None  # past the table nothing changes any more: it never pays back
    return None


@dataclass(frozen=True, slots=True)
class Economics:
    """One site's economics, 1.000 kr. per year of ``years`` (costs positive)."""

    site: str
    years: list[int]
    costs: dict[CostLine, list[float]]
    areas: dict[CostLine, Area]
    gain: list[float]                   # value of the staff time freed (negative: a cost)
    freed_hours_per_year: float
    hours_per_citizen_year: float | None
    payback_service_years: float | None
    payback_total_years: float | None
    costs_basis: Basis
    wage_basis: Basis
    hours_basis: str                    # the staff-time figure's basis ("estimate", ...)

    @property
    def total_costs(self) -> list[float]:
        return [sum(values[i] for values in self.costs.values()) for i in range(len(self.years))]

    @property
    def net(self) -> list[float]:
        """Costs minus the gain per year (negative: a saving), as the business case signs."""
        return [c - g for c, g in zip(self.total_costs, self.gain, strict=True)]

    @property
    def assumed(self) -> bool:
        """Whether the kroner figures rest on at least one assumption."""
        return "assumed" in (self.costs_basis, self.wage_basis) or self.hours_basis != "measured"

    def as_dict(self) -> dict[str, object]:
        return {"site": self.site, "years": self.years, "costs": self.costs,
                "areas": self.areas, "total_costs": self.total_costs, "gain": self.gain,
                "net": self.net, "freed_hours_per_year": self.freed_hours_per_year,
                "hours_per_citizen_year": self.hours_per_citizen_year,
                "payback_service_years": self.payback_service_years,
                "payback_total_years": self.payback_total_years,
                "basis": {"costs": self.costs_basis, "wage": self.wage_basis,
                          "hours": self.hours_basis},
                "rests_on_assumptions": self.assumed}


def economics(settings: EconomicsSettings, site: str, flats: int, freed_hours_per_year: float,
              hours_basis: str = "estimate") -> Economics:
    """``site``'s economics from its staff time freed per year (negative: time it costs)."""
    costs = settings.costs_of(site)
    lines = {name: [float(v) for v in costs.line(name)] for name in COST_LINES}
    value = round(freed_hours_per_year * settings.wage.kr_per_hour / 1000, 1)
    gain = [value for _ in settings.years]
    service = [sum(lines[n][i] for n in COST_LINES if settings.areas[n] == "service")
               for i in range(len(settings.years))]
    total = [sum(lines[n][i] for n in COST_LINES) for i in range(len(settings.years))]
    citizens = flats * settings.residents.per_flat
    return Economics(
        site=site, years=list(settings.years), costs=lines, areas=dict(settings.areas),
        gain=gain, freed_hours_per_year=freed_hours_per_year,
        hours_per_citizen_year=round(freed_hours_per_year / citizens, 1) if citizens else None,
        payback_service_years=_rounded(payback(service, gain)),
        payback_total_years=_rounded(payback(total, gain)),
        costs_basis=costs.basis, wage_basis=settings.wage.basis, hours_basis=hours_basis)


def _rounded(years: float | None) -> float | None:
    return None if years is None else round(years, 2)
