"""The staff-time estimate: routine rounds before the pilot against alert-driven visits now.

Every number that is assumed rather than measured is an ``Assumptions`` field, printed in
the report beside the result and editable (report options, query parameters).
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

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["assumptions"] = self.assumptions.as_dict()
        return data


def estimate(assumptions: Assumptions, flats: int, nights: int, visits: int,
             measured_handling_minutes: float | None, rest_share: float) -> StaffTime:
    """``visits``: alerts staff went to over ``nights``; ``rest_share``: flat-nights at rest."""
    handling = assumptions.handling_minutes
    measured = handling is None and measured_handling_minutes is not None
    if handling is None:
        handling = (measured_handling_minutes if measured_handling_minutes is not None
                    else assumptions.default_handling_minutes)
    per_night = visits / nights if nights else 0.0
    routine = assumptions.rounds_per_night * flats * assumptions.minutes_per_check
    alert = per_night * handling
    freed = (routine - alert) / 60
    waking = assumptions.rounds_per_night * flats * rest_share * assumptions.wake_share
    return StaffTime(
        assumptions=assumptions, flats=flats, visits_per_night=round(per_night, 2),
        handling_minutes=round(handling, 2), handling_measured=measured,
        routine_minutes_per_night=round(routine, 1), alert_minutes_per_night=round(alert, 1),
        freed_hours_per_night=round(freed, 2),
        freed_hours_per_year=round(freed * assumptions.nights_per_year, 1),
        waking_checks_avoided_per_night=round(waking, 1),
        waking_checks_avoided_per_year=round(waking * assumptions.nights_per_year))
