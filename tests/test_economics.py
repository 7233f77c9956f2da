"""The economics of a pilot from a cost table checked by hand: net effect per year, payback
on service efficiency and on total economy, hours per citizen-year; and the settings file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaluation.economics import (
    EconomicsSettings,
    SettingsError,
    economics,
    load_settings,
    payback,
)

pytestmark = pytest.mark.pure

DECISION: dict[str, Any] = {"target": 3, "required": [],
                            "criteria": {"payback_years": {"max": 4.0}}}


def settings(**changes: Any) -> EconomicsSettings:
    data: dict[str, Any] = {
        "years": [2027, 2028, 2029], "price_level": "2027 p/l",
        "wage": {"kr_per_hour": 400.0, "basis": "known"},
        "residents": {"per_flat": 1.0, "basis": "known"},
        "kl_cases": [{"name": "Vejle", "hours_per_citizen_year": 113.5}],
        "areas": {"project_management": "service", "training_evaluation": "service",
                  "licences_operation": "service", "devices": "anlaeg",
                  "installation": "anlaeg"},
        "costs": {"default": {"basis": "known", "project_management": [100, 50, 0],
                              "training_evaluation": [20, 10, 0],
                              "licences_operation": [10, 10, 10], "devices": [60, 0, 0],
                              "installation": [20, 0, 0]}},
        "decision": DECISION}
    data.update(changes)
    return EconomicsSettings.model_validate(data)


def test_cost_table_checked_by_hand_gives_net_effect_and_both_paybacks() -> None:
    # 250 hours a year at 400 kr. = 100 (1.000 kr.) a year.
    # Service lines: 130, 70, 10; all lines: 210, 70, 10.
    # Service: owes 130 -> 30 after year 1; year 2 owes 30 + 70 = 100 = its gain: 2.0 years.
    # Total: owes 210 -> 110; 110 + 70 = 180 -> 80; 80 + 10 = 90 of 100 in year 3: 2.9 years.
    econ = economics(settings(), "solsikken", flats=10, freed_hours_per_year=250.0,
                     hours_basis="measured")
    assert econ.total_costs == [210, 70, 10]
    assert econ.gain == [100, 100, 100]
    assert econ.net == [110, -30, -90]
    assert econ.payback_service_years == 2.0
    assert econ.payback_total_years == 2.9
    assert econ.hours_per_citizen_year == 25.0
    assert not econ.assumed


def test_payback_past_the_table_carries_the_last_year_on() -> None:
    # Owed 160, 180, 140 after three years; each later year 10 cost and 50 gain:
    # year 4 owes 150 -> 100, year 5 110 -> 60, year 6 70 -> 20, year 7 owes 30: 6 + 30/50.
    assert payback([210, 70, 10], [50, 50, 50]) == pytest.approx(6.6)


def test_a_pilot_whose_time_does_not_cover_its_running_costs_never_pays_back() -> None:
    assert payback([210, 70, 10], [5, 5, 5]) is None
    econ = economics(settings(), "havnely", flats=8, freed_hours_per_year=-7263.5)
    assert econ.payback_total_years is None and econ.payback_service_years is None
    assert econ.gain[0] == pytest.approx(-2905.4)  # time it costs is a cost, not a saving
    assert econ.net[0] > econ.total_costs[0]


def test_a_figure_resting_on_an_assumption_says_so() -> None:
    assumed_wage = settings(wage={"kr_per_hour": 400.0, "basis": "assumed"})
    assert economics(assumed_wage, "s", 10, 250.0, "measured").assumed
    assert economics(settings(), "s", 10, 250.0, "estimate").assumed
    assert economics(settings(), "s", 10, 250.0, "measured").as_dict()[
        "rests_on_assumptions"] is False


def test_a_site_of_its_own_replaces_the_default_costs() -> None:
    own = {"basis": "known", "project_management": [0, 0, 0],
           "training_evaluation": [0, 0, 0], "licences_operation": [1, 1, 1],
           "devices": [9, 0, 0], "installation": [0, 0, 0]}
    base = settings()
    changed = settings(costs={**{k: v.model_dump() for k, v in base.costs.items()},
                              "lindely": own})
    assert economics(changed, "lindely", 4, 100.0).total_costs == [10, 1, 1]
    assert economics(changed, "other", 4, 100.0).total_costs == [210, 70, 10]


def test_packaged_defaults_come_from_the_business_case_and_are_marked_assumed() -> None:
    defaults = load_settings()
    costs = defaults.costs["default"]
    # Table 2 of the business case, split over its five tests.
    assert costs.project_management[:2] == [120, 120]
    assert costs.training_evaluation[:2] == [14, 10]
    assert costs.devices[:2] == [100, 44]
    assert costs.basis == "assumed" and defaults.wage.basis == "assumed"
    assert [c.hours_per_citizen_year for c in defaults.kl_cases] == [113.5, 27.0]
    assert defaults.decision.target == 3


def test_a_settings_file_with_a_wrong_table_says_what_to_fix(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "evaluation" / "economics.toml").read_text()
    bad = tmp_path / "economics.toml"
    bad.write_text(text.replace("devices = [100, 44, 0, 0]", "devices = [100, 44]"))
    with pytest.raises(SettingsError, match=r"costs\.default\.devices has 2 values; give one "
                                            r"per year"):
        load_settings(bad)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
