"""A back-test: the period's stored events replayed with the current settings and with the
proposed ones (``backtest.sandbox``), compared night by night, rule by rule, room by room,
and against what the night staff recorded (the alerts' outcomes).

- Help given. Each recorded alert with outcome "help given" is looked up in both replays
  (the same episode, else the replay's situation of the same room that overlaps it): a
  proposal whose replay has no such alert, or no call where the current settings call, has
  *missed* it; one that calls later has *delayed* it (by how long). Either makes the
  proposal *risky*.
- Needless. Each recorded alert that needed no one (no action needed, false alarm, returned
  by itself) that the proposal's replay no longer raises has *gone*; one it no longer calls
  has gone *quiet*.

Both replays run the same engine on the same events, so their difference is the change's
alone (not staff resolving an alert before it escalated, which the recorded alerts hold).

Device rules (sensor offline, low battery) depend on nothing but a device's own inputs and
their settings: unless the proposal changes one of them, their alerts are taken from the
record on both sides, and the replays run the resident rules alone (``device_rules=False``
in ``backtest.sandbox``: of the heartbeats only how far they moved the clock is read). A
proposal that changes a device rule replays every event, heartbeats included (slower).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import psycopg

from backtest.errors import BacktestError, PeriodTooLong
from backtest.proposal import RuleChange, apply_changes
from backtest.sandbox import Arrival, SandboxAlert, replay
from core.alerts import DEVICE_RULES, NEEDLESS_OUTCOMES, Outcome, RuleName
from core.night_window import NightWindow
from ingest.backtest import (
    HeartbeatRun,
    RecordedAlert,
    period_events,
    period_events_compact,
    recorded_alerts,
)
from ingest.rule_layouts import read_layouts
from rules import RuleBook, SiteLayout
from rules.runtime import FUTURE_SKEW, layouts_from_store

__all__ = ["MAX_NIGHTS", "Backtest", "HelpFinding", "NeedlessFinding", "run_backtest"]

MAX_NIGHTS = 92
NEEDLESS = NEEDLESS_OUTCOMES
# A replayed situation answers a recorded alert of the same room if it overlaps it, give
# or take this much (a stricter setting may start the situation a little earlier).
_SLACK = timedelta(minutes=5)
_NOON = timedelta(hours=12)
_EARLIEST, _LATEST = date(2000, 1, 1), date(2099, 12, 31)


@dataclass(frozen=True, slots=True)
class HelpFinding:
    alert_id: int
    room: str
    rule: RuleName
    first_ts: datetime
    verdict: Literal["kept", "delayed", "missed", "not_reproduced"]
    current_call: datetime | None
    proposed_call: datetime | None
    delay_s: float | None = None


@dataclass(frozen=True, slots=True)
class NeedlessFinding:
    alert_id: int
    room: str
    rule: RuleName
    outcome: Outcome
    first_ts: datetime
    verdict: Literal["gone", "quiet"]


@dataclass
class Backtest:
    site: str
    first_night: date
    last_night: date
    changes: list[RuleChange]
    events: int
    seconds: float
    night: NightWindow
    current: list[SandboxAlert]
    proposed: list[SandboxAlert]
    recorded: list[RecordedAlert]
    help_given: list[HelpFinding] = field(default_factory=list)
    needless: list[NeedlessFinding] = field(default_factory=list)
    read_s: float = 0.0  # of ``seconds``: reading the events and alerts

    @property
    def risky(self) -> bool:
        """True if the proposal would have missed or delayed an alert that led to help."""
        return any(f.verdict in ("missed", "delayed") for f in self.help_given)

    @property
    def nights(self) -> list[date]:
        return [self.first_night + timedelta(days=n)
                for n in range((self.last_night - self.first_night).days + 1)]

    def night_of(self, ts: datetime) -> date:
        """The night an alert counts for: the local noon-to-noon day it lies in."""
        return (ts.astimezone(self.night.tz) - _NOON).date()

    def counts(self, alerts: Sequence[SandboxAlert], calls: bool = False
               ) -> Counter[tuple[date, RuleName, str]]:
        return Counter((self.night_of(a.first_ts), a.rule, a.room) for a in alerts
                       if not calls or a.called_at is not None)

    def to_json(self) -> dict[str, Any]:
        nights = len(self.nights)
        cur, prop = self.counts(self.current), self.counts(self.proposed)
        cur_calls, prop_calls = (self.counts(self.current, calls=True),
                                 self.counts(self.proposed, calls=True))

        def totals(key: int) -> list[dict[str, Any]]:
            before: Counter[str] = Counter()
            after: Counter[str] = Counter()
            for cell, n in cur.items():
                before[str(cell[key])] += n
            for cell, n in prop.items():
                after[str(cell[key])] += n
            return [{"name": name, "current": before[name], "proposed": after[name],
                     "current_per_night": round(before[name] / nights, 2),
                     "proposed_per_night": round(after[name] / nights, 2)}
                    for name in sorted(set(before) | set(after))]

        cells = sorted(set(cur) | set(prop))
        return {
            "site": self.site, "from": self.first_night.isoformat(),
            "to": self.last_night.isoformat(), "nights": nights, "events": self.events,
            "seconds": round(self.seconds, 3), "read_s": round(self.read_s, 3),
            "changes": [change.to_json() for change in self.changes],
            "risky": self.risky,
            "current": {"alerts": len(self.current), "calls": sum(cur_calls.values()),
                        "alerts_per_night": round(len(self.current) / nights, 2)},
            "proposed": {"alerts": len(self.proposed), "calls": sum(prop_calls.values()),
                         "alerts_per_night": round(len(self.proposed) / nights, 2)},
            "per_night": [{"night": n.isoformat(),
                           "current": sum(v for k, v in cur.items() if k[0] == n),
                           "proposed": sum(v for k, v in prop.items() if k[0] == n)}
                          for n in self.nights],
            "by_rule": totals(1), "by_room": totals(2),
            "alerts": [{"night": c[0].isoformat(), "rule": str(c[1]), "room": c[2],
                        "current": cur[c], "proposed": prop[c],
                        "current_calls": cur_calls[c], "proposed_calls": prop_calls[c]}
                       for c in cells],
            "help_given": {
                "recorded": len(self.help_given),
                "missed": [_finding(f) for f in self.help_given if f.verdict == "missed"],
                "delayed": [_finding(f) for f in self.help_given if f.verdict == "delayed"],
                "not_reproduced": [_finding(f) for f in self.help_given
                                   if f.verdict == "not_reproduced"],
            },
            "needless_gone": [{"alert_id": f.alert_id, "room": f.room, "rule": str(f.rule),
                               "outcome": str(f.outcome), "first_ts": f.first_ts.isoformat(),
                               "verdict": f.verdict} for f in self.needless],
        }


def _finding(f: HelpFinding) -> dict[str, Any]:
    return {"alert_id": f.alert_id, "room": f.room, "rule": str(f.rule),
            "first_ts": f.first_ts.isoformat(),
            "current_call": f.current_call.isoformat() if f.current_call else None,
            "proposed_call": f.proposed_call.isoformat() if f.proposed_call else None,
            "delay_s": f.delay_s}


def _match(recorded: RecordedAlert, run: Sequence[SandboxAlert]) -> SandboxAlert | None:
    """The replay's situation of the same room that overlaps a recorded alert (the
    earliest-calling one)."""
    end = max(recorded.last_ts, recorded.called_at or recorded.first_ts) + _SLACK
    overlapping = [a for a in run if a.room == recorded.room and a.rule not in DEVICE_RULES
                   and a.first_ts <= end and a.last_ts >= recorded.first_ts - _SLACK]
    if not overlapping:
        return None
    far = datetime.max.replace(tzinfo=UTC)
    return min(overlapping, key=lambda a: (a.called_at or far, a.first_ts))


def _compare(test: Backtest) -> None:
    def keyed(run: Sequence[SandboxAlert]) -> dict[str, SandboxAlert]:
        # Episode keys end with the situation's start; the recorded alert's first_ts is it.
        return {a.episode_key.rsplit("/", 1)[-1] + "|" + a.room: a for a in run}

    cur_keys, prop_keys = keyed(test.current), keyed(test.proposed)

    def match(r: RecordedAlert, run: list[SandboxAlert], keys: dict[str, SandboxAlert]
              ) -> SandboxAlert | None:
        exact = keys.get(r.first_ts.astimezone(UTC).isoformat() + "|" + r.room)
        if exact is not None and exact.rule is r.rule:
            return exact
        return _match(r, run)

    for r in test.recorded:
        if r.rule in DEVICE_RULES or r.outcome is None:
            continue
        cur, prop = match(r, test.current, cur_keys), match(r, test.proposed, prop_keys)
        if r.outcome is Outcome.HELP_GIVEN:
            test.help_given.append(_help(r, cur, prop))
        elif r.outcome in NEEDLESS and cur is not None:
            if prop is None:
                test.needless.append(NeedlessFinding(r.id, r.room, r.rule, r.outcome,
                                                     r.first_ts, "gone"))
            elif cur.called_at is not None and prop.called_at is None:
                test.needless.append(NeedlessFinding(r.id, r.room, r.rule, r.outcome,
                                                     r.first_ts, "quiet"))


def _help(r: RecordedAlert, cur: SandboxAlert | None, prop: SandboxAlert | None
          ) -> HelpFinding:
    cur_call = None if cur is None else cur.called_at
    prop_call = None if prop is None else prop.called_at
    finding = HelpFinding(r.id, r.room, r.rule, r.first_ts, "kept", cur_call, prop_call)
    if cur is None:
        return replace(finding, verdict="not_reproduced")
    if prop is None or (cur_call is not None and prop_call is None):
        return replace(finding, verdict="missed")
    # A call against a call; a quiet situation against when it was first shown.
    before = cur_call if cur_call is not None else cur.first_ts
    after = prop_call if cur_call is not None and prop_call is not None else prop.first_ts
    if after > before:
        return replace(finding, verdict="delayed", delay_s=(after - before).total_seconds())
    return finding


def _as_sandbox(r: RecordedAlert) -> SandboxAlert:
    cleared = r.resolved_at if r.outcome is Outcome.CLEARED else None
    return SandboxAlert(r.room, r.device or "", r.rule, r.episode_key, r.first_ts, r.last_ts,
                        r.called_at, cleared)


def period_bounds(night: NightWindow, first: date, last: date) -> tuple[datetime, datetime]:
    """The period of nights ``first``..``last``: local noon before the first to local noon
    after the last (each night with its evening and morning)."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=night.tz) + _NOON
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(),
                           tzinfo=night.tz) + _NOON
    return start.astimezone(UTC), end.astimezone(UTC)


def site_rules(conn: psycopg.Connection, site: str, changes: Sequence[RuleChange]
               ) -> tuple[SiteLayout, RuleBook, RuleBook]:
    """The site as the rules see it, with its current rule book and the proposed one."""
    stored = read_layouts(conn)
    if not any(s.id == site for s in stored.sites):
        raise BacktestError("site '{site}' does not exist", site=site)
    rooms = {r.id for r in stored.rooms if r.site == site}
    for change in changes:
        if change.room is not None and change.room not in rooms:
            raise BacktestError("room '{room}' does not exist on site '{site}'",
                                room=change.room, site=site)
    layouts, books = layouts_from_store(stored)
    proposed = replace(stored, rule_settings=apply_changes(stored.rule_settings, site, changes))
    _, proposed_books = layouts_from_store(proposed)
    return layouts[site], books[site], proposed_books[site]


def run_backtest(conn: psycopg.Connection, site: str, first: date, last: date,
                 changes: Sequence[RuleChange], now: datetime | None = None) -> Backtest:
    """Replay the nights ``first``..``last`` of ``site`` with the current settings and with
    ``changes``, and compare (see the module docstring). Reads only."""
    if last < first:
        raise PeriodTooLong("the last night ({last}) is before the first ({first})",
                            first=first, last=last)
    if first < _EARLIEST or last > _LATEST:
        raise PeriodTooLong("give nights between {earliest} and {latest}",
                            earliest=_EARLIEST, latest=_LATEST)
    if (last - first).days + 1 > MAX_NIGHTS:
        raise PeriodTooLong("a back-test replays at most {max} nights; give a shorter period",
                            max=MAX_NIGHTS)
    started = time.perf_counter()
    layout, current_book, proposed_book = site_rules(conn, site, changes)
    start, end = period_bounds(layout.night, first, last)
    read = 0.0
    clock = time.perf_counter()
    recorded = recorded_alerts(conn, site, start, end)
    read += time.perf_counter() - clock
    until = min(end, now or datetime.now(UTC))
    arrivals: list[Arrival]
    if any(change.rule in DEVICE_RULES for change in changes):
        clock = time.perf_counter()
        arrivals = list(period_events(conn, site, start, end))  # once, for both replays
        read += time.perf_counter() - clock
        current = replay(layout, current_book, arrivals, until)
        proposed = replay(layout, proposed_book, arrivals, until)
    else:
        # The device rules are not changed, and nothing else moves them (a device's
        # machine reads only its own inputs and settings): its alerts are the ones recorded,
        # on both sides, and the replays need the resident rules alone (and of the
        # heartbeats only how far they moved the clock).
        clock = time.perf_counter()
        arrivals = period_events_compact(conn, site, start, end, list(layout.devices),
                                         FUTURE_SKEW)
        read += time.perf_counter() - clock
        devices = [_as_sandbox(r) for r in recorded if r.rule in DEVICE_RULES]
        current = replay(layout, current_book, arrivals, until, device_rules=False) + devices
        proposed = replay(layout, proposed_book, arrivals, until, device_rules=False) + devices
    events = sum(a.beats if isinstance(a, HeartbeatRun) else 1 for a in arrivals)
    test = Backtest(site, first, last, list(changes), events, 0.0, layout.night,
                    current, proposed, recorded)
    _compare(test)
    test.seconds = time.perf_counter() - started
    test.read_s = read
    return test
