"""The rounds staff logged, counted night by night: in the site's baseline period (before
the sensors went live) and in the pilot's nights of a report.

A round belongs to the noon-to-noon day it was logged in (``SiteInfo.night_of``), like an
alert. A baseline night counts once it has begun, with zero rounds when none was logged
(not left out: leaving it out would make the baseline look busier than it was). Pilot
nights are the report's nights with data that are not baseline nights.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import psycopg

from evaluation.period import Period, SiteInfo
from evaluation.staff_time import MeasuredRounds, RoundCount
from ingest import rounds as stored

__all__ = ["RoundsByNight", "rounds_by_night"]


@dataclass(frozen=True, slots=True)
class RoundsByNight:
    """Rounds and flat-checks per night, for the baseline and the pilot."""

    baseline_period: Period | None
    baseline: dict[date, tuple[int, int]] = field(default_factory=dict)
    pilot: dict[date, tuple[int, int]] = field(default_factory=dict)

    @property
    def measured(self) -> MeasuredRounds:
        return MeasuredRounds(_count(self.baseline), _count(self.pilot))

    def as_dict(self) -> dict[str, object]:
        period = self.baseline_period
        return {
            "baseline_period": None if period is None else {
                "from": period.first.isoformat(), "to": period.last.isoformat()},
            "baseline": _nights_dict(self.baseline), "pilot": _nights_dict(self.pilot)}


def _count(nights: dict[date, tuple[int, int]]) -> RoundCount:
    return RoundCount(len(nights), sum(r for r, _ in nights.values()),
                      sum(c for _, c in nights.values()))


def _nights_dict(nights: dict[date, tuple[int, int]]) -> dict[str, object]:
    count = _count(nights)
    return {"nights": count.nights, "rounds": count.rounds, "flat_checks": count.flat_checks,
            "per_night": [{"night": n.isoformat(), "rounds": r, "flat_checks": c}
                          for n, (r, c) in sorted(nights.items())]}


def _tally(conn: psycopg.Connection, site: SiteInfo,
           nights: list[date]) -> dict[date, tuple[int, int]]:
    if not nights:
        return {}
    start = datetime.combine(min(nights), time(12), site.tz)
    end = datetime.combine(max(nights) + timedelta(days=1), time(12), site.tz)
    rounds: Counter[date] = Counter()
    checks: Counter[date] = Counter()
    for logged in stored.rounds_between(conn, site.id, start, end):
        night = site.night_of(logged.walked_at)
        rounds[night] += 1
        checks[night] += logged.flats
    return {night: (rounds[night], checks[night]) for night in nights}


def rounds_by_night(conn: psycopg.Connection, site: SiteInfo, pilot_nights: list[date],
                    now: datetime) -> RoundsByNight:
    """The logged rounds of the site's baseline period (its nights begun by ``now``) and
    of ``pilot_nights`` (less any baseline night)."""
    stored_period = stored.baseline_period(conn, site.id)
    if stored_period is None:
        return RoundsByNight(None, {}, _tally(conn, site, pilot_nights))
    period = Period(stored_period.first, stored_period.last)
    begun = site.night_of(now)
    baseline = [n for n in period.nights() if n <= begun]
    pilot = [n for n in pilot_nights if not period.first <= n <= period.last]
    return RoundsByNight(period, _tally(conn, site, baseline), _tally(conn, site, pilot))
