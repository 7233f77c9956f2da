"""The staff-time estimate: routine rounds before the pilot against alert-driven visits now.

Every number that is assumed rather than measured is an ``Assumptions`` field, printed in
the report beside the result and editable (report options, query parameters). The rounds
before the pilot are not measured yet, so the freed time is always an *estimate* resting
on them, and ``StaffTime.basis`` says which inputs were measured and which assumed.
Every resident alert counts as a visit, resolved or not (``benefit.tally_alerts``): the
result goes negative when the alerts cost more than the rounds did, and it must.
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
    unhandled_per_night: float = 0.0   # visits nobody resolved: a cost, never a saving

    @property
    def basis(self) -> dict[str, str]:
        """Per figure: ``measured``, ``assumed``, or ``estimate`` (computed from at least
        one assumption)."""
        return {"rounds_per_night": "assumed", "minutes_per_check": "assumed",
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
             unhandled: int = 0) -> StaffTime:
    """``visits``: resident alerts over ``nights`` (each called staff, whatever its outcome),
    ``unhandled`` of them never resolved; ``rest_share``: flat-nights at rest."""
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
        waking_checks_avoided_per_year=round(waking * assumptions.nights_per_year),
        unhandled_per_night=round(unhandled / nights, 2) if nights else 0.0)
