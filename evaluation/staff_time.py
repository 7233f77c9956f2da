"""The staff-time estimate: routine rounds before the pilot against rounds and alert-driven
visits now.

Every number that is assumed rather than measured is an ``Assumptions`` field, printed in
the report beside the result and editable (report options, query parameters). The rounds
are *measured* when staff logged them on the board (``MeasuredRounds``: flat-checks per
night in the site's baseline period, and in the pilot's nights); without a logged baseline
the rounds before the pilot are the assumed ``rounds_per_night`` for every flat, and
without rounds logged in the pilot none are assumed walked. ``StaffTime.basis`` says which
inputs were measured and which assumed. Every resident alert counts as a visit, resolved
or not (``benefit.tally_alerts``): the result goes negative when the rounds still walked
and the alerts cost more than the rounds before did, and it must.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Assumptions:
    rounds_per_night: float = 3.0       # routine rounds the site walked before the pilot
    minutes_per_check: float = 2.0      # one look into one flat on a round
    handling_minutes: float | None = None  # None: measured (acknowledge to resolve)
    wake_share: float = 0.3             # share of checks on a sleeping resident that wake them
    nights_per_year: int = 365
    default_handling_minutes: float = 8.0  # used only when nothing was measured

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RoundCount:
    """Rounds logged over some nights: ``flat_checks`` sums the flats each round covered."""

    nights: int = 0
    rounds: int = 0
    flat_checks: int = 0

    @property
    def logged(self) -> bool:
        return self.rounds > 0

    def per_night(self, value: int) -> float:
        return value / self.nights if self.nights else 0.0


@dataclass(frozen=True, slots=True)
class MeasuredRounds:
    """The rounds staff logged: in the site's baseline period (before the sensors went
    live) and in the pilot's nights of the report."""

    baseline: RoundCount = RoundCount()
    pilot: RoundCount = RoundCount()


@dataclass(frozen=True, slots=True)
class StaffTime:
    assumptions: Assumptions
    flats: int
    visits_per_night: float
    handling_minutes: float
    handling_measured: bool
    routine_minutes_per_night: float
    alert_minutes_per_night: float
    freed_hours_per_night: float
    freed_hours_per_year: float
    waking_checks_avoided_per_night: float
    waking_checks_avoided_per_year: float
    unhandled_per_night: float = 0.0   # visits nobody resolved: a cost, never a saving
    baseline_measured: bool = False    # rounds before: logged in the baseline period
    baseline_rounds_per_night: float = 0.0
    baseline_checks_per_night: float = 0.0   # flat-checks a night before the pilot
    pilot_measured: bool = False       # rounds still walked: logged in the pilot's nights
    pilot_rounds_per_night: float = 0.0
    pilot_checks_per_night: float = 0.0
    pilot_round_minutes_per_night: float = 0.0

    @property
    def basis(self) -> dict[str, str]:
        """Per figure: ``measured``, ``assumed``, or ``estimate`` (computed from at least
        one assumption)."""
        baseline = "measured" if self.baseline_measured else "assumed"
        pilot = "measured" if self.pilot_measured else "assumed"
        return {"rounds_per_night": baseline, "minutes_per_check": "assumed",
                "baseline_rounds_per_night": baseline, "baseline_checks_per_night": baseline,
                "pilot_rounds_per_night": pilot, "pilot_checks_per_night": pilot,
                "pilot_round_minutes_per_night": "estimate",
                "visits_per_night": "measured", "unhandled_per_night": "measured",
                "handling_minutes": "measured" if self.handling_measured else "assumed",
                "routine_minutes_per_night": "estimate",
                "alert_minutes_per_night": "measured" if self.handling_measured
                else "estimate",
                "freed_hours_per_night": "estimate", "freed_hours_per_year": "estimate",
                "waking_checks_avoided_per_night": "estimate",
                "waking_checks_avoided_per_year": "estimate"}

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["assumptions"] = self.assumptions.as_dict()
        data["basis"] = self.basis
        return data


def estimate(assumptions: Assumptions, flats: int, nights: int, visits: int,
             measured_handling_minutes: float | None, rest_share: float,
             unhandled: int = 0, rounds: MeasuredRounds | None = None) -> StaffTime:
    """``visits``: resident alerts over ``nights`` (each called staff, whatever its outcome),
    ``unhandled`` of them never resolved; ``rest_share``: flat-nights at rest; ``rounds``:
    the rounds staff logged (None or none logged: the assumptions stand in)."""
    rounds = rounds or MeasuredRounds()
    base, pilot = rounds.baseline, rounds.pilot
    if base.logged:
        before_rounds = base.per_night(base.rounds)
        before_checks = base.per_night(base.flat_checks)
    else:
        before_rounds = assumptions.rounds_per_night
        before_checks = assumptions.rounds_per_night * flats
    # Not a single round logged in the pilot: we cannot tell "none walked" from "none
    # logged", so the assumption (alerts replaced the rounds) is shown as one.
    now_rounds = pilot.per_night(pilot.rounds) if pilot.logged else 0.0
    now_checks = pilot.per_night(pilot.flat_checks) if pilot.logged else 0.0
    handling = assumptions.handling_minutes
    measured = handling is None and measured_handling_minutes is not None
    if handling is None:
        handling = (measured_handling_minutes if measured_handling_minutes is not None
                    else assumptions.default_handling_minutes)
    per_night = visits / nights if nights else 0.0
    routine = before_checks * assumptions.minutes_per_check
    still_walked = now_checks * assumptions.minutes_per_check
    alert = per_night * handling
    freed = (routine - still_walked - alert) / 60
    waking = max(0.0, before_checks - now_checks) * rest_share * assumptions.wake_share
    return StaffTime(
        assumptions=assumptions, flats=flats, visits_per_night=round(per_night, 2),
        handling_minutes=round(handling, 2), handling_measured=measured,
        routine_minutes_per_night=round(routine, 1), alert_minutes_per_night=round(alert, 1),
        freed_hours_per_night=round(freed, 2),
        freed_hours_per_year=round(freed * assumptions.nights_per_year, 1),
        waking_checks_avoided_per_night=round(waking, 1),
        waking_checks_avoided_per_year=round(waking * assumptions.nights_per_year),
        unhandled_per_night=round(unhandled / nights, 2) if nights else 0.0,
        baseline_measured=base.logged, baseline_rounds_per_night=round(before_rounds, 2),
        baseline_checks_per_night=round(before_checks, 2), pilot_measured=pilot.logged,
        pilot_rounds_per_night=round(now_rounds, 2), pilot_checks_per_night=round(now_checks, 2),
        pilot_round_minutes_per_night=round(still_walked, 1))
