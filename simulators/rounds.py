"""The flat-check rounds simulated staff log, and the baseline period they measure.

A real site measures its baseline by logging its rounds for a while before the sensors go
live, then goes on logging the rounds it still walks; the report counts both
(``evaluation.baseline``). ``plan_rounds`` places a profile's rounds
(``StaffRounds.checks_before`` in the baseline nights, ``checks_during`` in the pilot's) at
their clock times with the profile's spread, the same for the same seed; ``rounds_csv``
writes them as the file ``nattero site rounds`` reads, as a coordinator would type in the
paper rounds (the simulator is a client of Nattero, see ``simulators.provisioner``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from simulators.profile import SiteProfile, minutes_after_noon
from simulators.seeding import stream

__all__ = ["PlannedRound", "plan_rounds", "rounds_csv"]


@dataclass(frozen=True, slots=True)
class PlannedRound:
    night: date
    walked_at: datetime     # aware
    baseline: bool


def plan_rounds(profile: SiteProfile, nights: Sequence[date], seed: int, *,
                baseline: bool) -> list[PlannedRound]:
    """The whole-site flat-check rounds of ``nights``: the baseline's clocks or the pilot's,
    each within its night (a round the spread pushes out of the night is not walked)."""
    clocks = profile.staff.checks_before if baseline else profile.staff.checks_during
    planned: list[PlannedRound] = []
    for night in nights:
        rng = stream(seed, profile.site, night, "rounds", baseline)
        start, end = profile.night_window(night)
        for clock in clocks:
            at = profile.local_time(night, rng.gauss(minutes_after_noon(clock),
                                                     profile.staff.sd_min))
            if start <= at < end:
                planned.append(PlannedRound(night, at.replace(microsecond=0), baseline))
    return planned


def rounds_csv(rounds: Sequence[PlannedRound]) -> str:
    """The rounds as ``nattero site rounds`` reads them (whole-site rounds, UTC times)."""
    return "tidspunkt;omfang\n" + "".join(
        f"{r.walked_at.isoformat()};hele stedet\n" for r in rounds)
