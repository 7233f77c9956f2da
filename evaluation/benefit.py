"""The figures of the benefit evaluation of one site over a run of nights.

Definitions (the report prints them too):

- A night is the night window beginning on the evening of its date; alerts belong to the
  noon-to-noon day they were first triggered in.
- *Alert visits*: every resident alert that called staff is a visit, whatever became of
  it (help given, no action needed, false alarm, cleared by itself, or never resolved).
  Calls nobody resolved are also counted as *unhandled*: they cost a visit and are never
  counted as time saved. A *quiet situation* (an outing back within its time: shown on
  the board, never a call) sent nobody and is counted apart, as are device alerts (sensor
  offline, low battery), which are not night visits to a flat.
- A night of the period without a single event or alert (the system was not running, or
  the period runs past the simulated or recorded nights) is listed as a night *without
  data* and not counted: it would otherwise dilute every per-night figure.
- Time to acknowledge: ``acknowledged_at`` less the call (``called_at``; the raise for an
  alert that never called); time to resolve: ``resolved_at`` less the same, of staff
  visits. Percentiles interpolate linearly, like PostgreSQL's ``percentile_cont``.
- A flat had *complete night rest* when it reported during the night window and had no
  ``door.open``, ``bed.exit``, ``motion`` or ``presence.on`` in it, and no resident alert.
- Night-time activity: those same event kinds, in all rooms, per local clock hour.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from core.alerts import DEVICE_RULES, NEEDLESS_OUTCOMES, STAFF_OUTCOMES, Outcome
from evaluation.baseline import RoundsByNight, rounds_by_night
from evaluation.experience import Experience, experience
from evaluation.occupancy import DISTURBANCES
from evaluation.period import Period, SiteInfo, load_sites
from evaluation.staff_time import Assumptions, StaffTime, estimate
from ingest import evaluation as stored
from ingest.sites import count_flats


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL ``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> Durations:
        median, p90 = percentile(seconds, 0.5), percentile(seconds, 0.9)
        return cls(len(seconds), None if median is None else round(median, 1),
                   None if p90 is None else round(p90, 1))


@dataclass(slots=True)
class NightFigures:
    night: date
    alerts: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    flats_reporting: int = 0
    flats_at_rest: int = 0

    @property
    def rest_share(self) -> float | None:
        return self.flats_at_rest / self.flats_reporting if self.flats_reporting else None


@dataclass(slots=True)
class AlertTally:
    """The alerts of a period, counted night by night (see the module's definitions)."""

    by_rule: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    ack_seconds: list[float] = field(default_factory=list)
    resolve_seconds: list[float] = field(default_factory=list)
    handling_minutes: list[float] = field(default_factory=list)
    visits: int = 0
    unhandled: int = 0
    needless_calls: int = 0     # visits whose outcome says nobody was needed
    quiet: int = 0              # resident situations that never called staff
    alerted: set[tuple[str, date]] = field(default_factory=set)


def tally_alerts(site: SiteInfo, nights: dict[date, NightFigures],
                 rows: Iterable[stored.PeriodAlert]) -> AlertTally:
    """Count ``rows`` into ``nights`` and return the period's totals; alerts outside the
    nights are skipped."""
    tally = AlertTally()
    for room, rule, outcome, first_ts, raised, acked, resolved, called in rows:
        night = nights.get(site.night_of(first_ts))
        if night is None:
            continue
        label = outcome or "unresolved"
        night.alerts += 1
        night.by_outcome[label] = night.by_outcome.get(label, 0) + 1
        tally.by_rule[rule][label] += 1
        if rule not in DEVICE_RULES:
            tally.alerted.add((room, night.night))
            if not called:
                tally.quiet += 1    # on the board quietly; nobody was sent
            else:
                # Staff went (or should have gone) to every call: a visit whatever its
                # outcome. Counting only resolved ones made an unattended site look best.
                tally.visits += 1
                if outcome is None:
                    tally.unhandled += 1
                elif outcome in NEEDLESS_OUTCOMES:
                    tally.needless_calls += 1
        if acked is not None:
            tally.ack_seconds.append((acked - raised).total_seconds())
        if resolved is not None and outcome in STAFF_OUTCOMES:
            tally.resolve_seconds.append((resolved - raised).total_seconds())
            if acked is not None:
                tally.handling_minutes.append((resolved - acked).total_seconds() / 60)
    return tally


@dataclass(slots=True)
class SiteFigures:
    site: str
    name: str
    period: Period
    night_hours: list[int]
    flats: int
    nights: list[NightFigures]
    empty_nights: list[date]
    alerts_by_rule: dict[str, dict[str, int]]
    acknowledge: Durations
    resolve: Durations
    ack_seconds: list[float]
    resolve_seconds: list[float]
    activity: dict[date, dict[int, int]]
    staff_time: StaffTime
    rounds: RoundsByNight = field(default_factory=lambda: RoundsByNight(None))
    experience: Experience | None = None
    quiet_situations: int = 0   # resident situations that never called staff
    calls: int = 0              # resident alerts that called staff (visits)
    unhandled_calls: int = 0    # of them, never resolved
    needless_calls: int = 0     # of them, an outcome that says nobody was needed

    @property
    def alerts(self) -> int:
        return sum(n.alerts for n in self.nights)

    @property
    def rest_share(self) -> float | None:
        reporting = sum(n.flats_reporting for n in self.nights)
        return sum(n.flats_at_rest for n in self.nights) / reporting if reporting else None

    def outcomes(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for outcomes in self.alerts_by_rule.values():
            total.update(outcomes)
        return dict(total)

    def as_dict(self) -> dict[str, Any]:
        """Everything the report shows, as JSON-able values (embedded in the HTML)."""
        rest = self.rest_share
        return {
            "site": self.site, "name": self.name,
            "from": self.period.first.isoformat(), "to": self.period.last.isoformat(),
            "nights": len(self.nights),
            "nights_without_data": [n.isoformat() for n in self.empty_nights],
            "flats": self.flats, "alerts": self.alerts,
            "alerts_by_rule": self.alerts_by_rule, "outcomes": self.outcomes(),
            "acknowledge": {"count": self.acknowledge.count,
                            "median_s": self.acknowledge.median_s,
                            "p90_s": self.acknowledge.p90_s},
            "resolve": {"count": self.resolve.count, "median_s": self.resolve.median_s,
                        "p90_s": self.resolve.p90_s},
            "rest_share": None if rest is None else round(rest, 4),
            "per_night": [{"night": n.night.isoformat(), "alerts": n.alerts,
                           "by_outcome": n.by_outcome, "flats_reporting": n.flats_reporting,
                           "flats_at_rest": n.flats_at_rest,
                           "rest_share": None if n.rest_share is None
                           else round(n.rest_share, 4)} for n in self.nights],
            "activity_by_hour": {
                "hours": self.night_hours,
                "nights": {night.isoformat(): [hours.get(h, 0) for h in self.night_hours]
                           for night, hours in sorted(self.activity.items())}},
            "staff_time": self.staff_time.as_dict(),
            "rounds": self.rounds.as_dict(),
            "quiet_situations": self.quiet_situations, "calls": self.calls,
            "unhandled_calls": self.unhandled_calls, "needless_calls": self.needless_calls,
            "experience": None if self.experience is None else self.experience.as_dict(),
        }


def _noon(site: SiteInfo, day: date) -> datetime:
    return datetime.combine(day, time(12), site.tz)


def site_figures(conn: psycopg.Connection, site_id: str, period: Period,
                 assumptions: Assumptions | None = None,
                 now: datetime | None = None) -> SiteFigures:
    """``now``: when the report is made (the baseline's nights begun by then count)."""
    site = load_sites(conn, [site_id])[0]
    nights = {night: NightFigures(night) for night in period.nights()}
    start, end = _noon(site, period.first), _noon(site, period.last + timedelta(days=1))
    tally = tally_alerts(site, nights, stored.period_alerts(conn, site.id, start, end))

    window = stored.NightWindowQuery(
        site.id, site.tz.key, site.night_window(period.first)[0],
        site.night_window(period.last)[1], site.night_start, site.night_end)
    for night_date, room, disturbed in stored.flat_nights(conn, window, DISTURBANCES):
        night = nights.get(night_date)
        if night is None:
            continue
        night.flats_reporting += 1
        if not disturbed and (room, night_date) not in tally.alerted:
            night.flats_at_rest += 1

    activity: dict[date, dict[int, int]] = {night: {} for night in nights}
    for night_date, hour, count in stored.activity_by_hour(conn, window, DISTURBANCES):
        if night_date in activity:
            activity[night_date][hour] = count

    flats = count_flats(conn, site.id)
    observed = [n for n in nights.values() if has_data(n, activity[n.night])]
    handling = tally.handling_minutes
    figures = SiteFigures(
        site=site.id, name=site.name, period=period, night_hours=site.night_hours(),
        flats=flats, nights=observed,
        empty_nights=[n for n in nights if nights[n] not in observed],
        alerts_by_rule={rule: dict(c) for rule, c in sorted(tally.by_rule.items())},
        acknowledge=Durations.of(tally.ack_seconds),
        resolve=Durations.of(tally.resolve_seconds),
        ack_seconds=tally.ack_seconds, resolve_seconds=tally.resolve_seconds,
        activity={n.night: activity[n.night] for n in observed},
        staff_time=estimate(Assumptions(), 0, 0, 0, None, 0.0),
        rounds=rounds_by_night(conn, site, [n.night for n in observed], now or datetime.now(UTC)),
        quiet_situations=tally.quiet, calls=tally.visits, unhandled_calls=tally.unhandled,
        needless_calls=tally.needless_calls)
    baseline = figures.rounds.baseline_period
    figures.experience = experience(conn, site.id, period.first, period.last,
                                    notes_from=min(period.first, baseline.first)
                                    if baseline else None)
    figures.staff_time = estimate(
        assumptions or Assumptions(), flats, len(observed), tally.visits,
        sum(handling) / len(handling) if handling else None, figures.rest_share or 0.0,
        unhandled=tally.unhandled, rounds=figures.rounds.measured)
    return figures


def has_data(night: NightFigures, activity: dict[int, int]) -> bool:
    """Whether anything at all was recorded for the night (a flat reported, an alert, or
    activity): a night without is left out rather than counted as a quiet one."""
    return bool(night.flats_reporting or night.alerts or any(activity.values()))


@dataclass(frozen=True, slots=True)
class Ranking:
    """Sites side by side, ranked by their mean rank over ``CRITERIA``."""

    rows: list[dict[str, Any]]

    CRITERIA = (("freed_hours_per_night", True), ("rest_share", True),
                ("median_ack_s", False), ("false_alarm_share", False))


def compare(figures: list[SiteFigures]) -> Ranking:
    rows: list[dict[str, Any]] = []
    for f in figures:
        outcomes = f.outcomes()
        visits = sum(outcomes.get(o, 0) for o in STAFF_OUTCOMES)
        rows.append({
            "site": f.site, "name": f.name, "nights": len(f.nights), "flats": f.flats,
            "alerts_per_night": round(f.alerts / len(f.nights), 2) if f.nights else 0.0,
            "help_given_share": round(outcomes.get(Outcome.HELP_GIVEN, 0) / visits, 3) if visits
            else None,
            "false_alarm_share": round(outcomes.get(Outcome.FALSE_ALARM, 0) / visits, 3) if visits
            else None,
            "median_ack_s": f.acknowledge.median_s, "p90_ack_s": f.acknowledge.p90_s,
            "rest_share": None if f.rest_share is None else round(f.rest_share, 4),
            "freed_hours_per_night": f.staff_time.freed_hours_per_night,
            "freed_hours_per_year": f.staff_time.freed_hours_per_year})
    for key, higher_better in Ranking.CRITERIA:
        known = [r for r in rows if r[key] is not None]
        known.sort(key=lambda r: r[key], reverse=higher_better)
        for place, r in enumerate(known, 1):
            r[f"rank_{key}"] = place
        for r in rows:
            r.setdefault(f"rank_{key}", len(rows))
    for r in rows:
        r["mean_rank"] = round(sum(r[f"rank_{k}"] for k, _ in Ranking.CRITERIA)
                               / len(Ranking.CRITERIA), 2)
    rows.sort(key=lambda r: (r["mean_rank"], r["site"]))
    for place, r in enumerate(rows, 1):
        r["rank"] = place
    return Ranking(rows)
