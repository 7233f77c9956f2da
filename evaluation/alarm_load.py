"""A site's alarm load: how many alerts its rooms and rules raised, night by night, and what
the night staff found when they went (issue 14 §3, and the handover's weekly summary §4).

For admins (the page and ``GET /api/v1/sites/{site}/alarm-load``) and the site's staff
(the weekly summary in the morning handover). Rooms, never people: room ids and labels.

What it counts: every alert whose situation *began* (``first_ts``) in the period's nights,
device alerts (sensor offline, low battery) included, each counted under the noon-to-noon
local day it began in (``SiteInfo.night_of``), by rule, room and local hour. An alert is a
*call* if it ever asked staff to go (``called_at``). Its outcome is what staff recorded;
an alert not resolved, or resolved without an outcome, counts as "not handled".

Rule changes are read from the audit log (``rules.set``: the admin page, the back-test's
"apply", ``nattero site apply``); each carries the alerts per night in the up to seven
nights before the first night it applied to and in the up to seven from it, within the
period: the trend a manager asks about, not a proof of cause.

Never writes anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from core.alerts import Outcome, RuleName
from core.events import RoomKind
from core.i18n import Localizer
from evaluation.period import SiteInfo, load_sites
from ingest.alarm_load import LoadAlert, bed_events, load_alerts
from ingest.audit import read_audit
from ingest.rule_layouts import read_layouts
from ingest.sites import room_labels
from rules import RuleBook, SiteLayout
from rules.routines import LEARN_NIGHTS, FlatRoutine, learn_routines
from rules.runtime import layouts_from_store

__all__ = ["DEFAULT_NIGHTS", "MAX_NIGHTS", "NOISIEST", "OUTCOME_KEYS", "AlarmLoad",
           "NoisyRoom", "RuleChangeMark", "build_alarm_load"]

DEFAULT_NIGHTS = 30
MAX_NIGHTS = 92
NOISIEST = 10
TREND_NIGHTS = 7
#: The outcome shares, in the order the page shows them; "unresolved": nobody recorded one.
OUTCOME_KEYS = (Outcome.HELP_GIVEN.value, Outcome.NO_ACTION_NEEDED.value,
                Outcome.FALSE_ALARM.value, Outcome.CLEARED.value, "unresolved")
# The limits a room's kind is governed by (the rules that can raise in it).
_LIMITS: dict[RoomKind, tuple[RuleName, ...]] = {
    RoomKind.FLAT: (RuleName.LEFT_FLAT, RuleName.BED_EXIT_NOT_BACK),
    RoomKind.COMMON: (RuleName.COMMON_MOTION,),
    RoomKind.EXIT: (RuleName.BUILDING_EXIT,),
}


@dataclass(frozen=True, slots=True)
class RuleChangeMark:
    """One audited rule change, placed on the period's time axis."""

    at: datetime
    first_night: date  # the first night it applied to (a change at 03:00 to the rest of it)
    actor: str
    rule: str
    room: str | None
    enabled: bool | None
    minutes: int | None
    severity: str | None
    reason: str | None
    before_per_night: float | None
    after_per_night: float | None


@dataclass(frozen=True, slots=True)
class NoisyRoom:
    room: str
    label: str
    kind: str
    alerts: int
    calls: int
    by_rule: dict[str, int]
    limits: dict[str, dict[str, Any]]  # rule -> its effective enabled/minutes in the room
    routine: FlatRoutine | None  # flats with a bed sensor only


@dataclass(frozen=True, slots=True)
class AlarmLoad:
    site: SiteInfo
    first_night: date
    last_night: date
    alerts: list[LoadAlert]
    labels: dict[str, str]
    noisiest: list[NoisyRoom]
    changes: list[RuleChangeMark]

    @property
    def nights(self) -> list[date]:
        return [self.first_night + timedelta(days=n)
                for n in range((self.last_night - self.first_night).days + 1)]

    @property
    def calls(self) -> int:
        return sum(a.called_at is not None for a in self.alerts)

    def night_of(self, alert: LoadAlert) -> date:
        return self.site.night_of(alert.first_ts)

    def per_night(self) -> dict[date, Counter[str]]:
        """Alerts by rule, for every night of the period (nights without any too)."""
        nights: dict[date, Counter[str]] = {n: Counter() for n in self.nights}
        for alert in self.alerts:
            nights[self.night_of(alert)][alert.rule] += 1
        return nights

    def by_hour(self) -> list[int]:
        """Alerts by the local hour (0-23) their situation began in."""
        hours = [0] * 24
        for alert in self.alerts:
            hours[alert.first_ts.astimezone(self.site.tz).hour] += 1
        return hours

    def outcomes(self) -> Counter[str]:
        return Counter(outcome_key(a) for a in self.alerts)

    def rules(self) -> list[str]:
        """The rules that raised anything, in the order of ``RuleName``."""
        present = {a.rule for a in self.alerts}
        return [r.value for r in RuleName if r.value in present]

    def label(self, room: str) -> str:
        return self.labels.get(room) or room

    def as_dict(self, t: Localizer) -> dict[str, Any]:
        """The figures as JSON (``t``: the routines' explanations, in the page's language)."""
        nights = len(self.nights)
        total = len(self.alerts)
        rooms: Counter[str] = Counter(a.room for a in self.alerts)
        room_calls: Counter[str] = Counter(a.room for a in self.alerts if a.called_at)
        rules: Counter[str] = Counter(a.rule for a in self.alerts)
        rule_calls: Counter[str] = Counter(a.rule for a in self.alerts if a.called_at)
        outcomes = self.outcomes()
        return {
            "site": self.site.id, "name": self.site.name,
            "from": self.first_night.isoformat(), "to": self.last_night.isoformat(),
            "nights": nights, "alerts": total, "calls": self.calls,
            "alerts_per_night": round(total / nights, 2),
            "per_night": [{"night": night.isoformat(), "alerts": sum(by_rule.values()),
                           "by_rule": dict(sorted(by_rule.items()))}
                          for night, by_rule in self.per_night().items()],
            "by_rule": [{"rule": rule, "alerts": rules[rule], "calls": rule_calls[rule],
                         "per_night": round(rules[rule] / nights, 2)} for rule in self.rules()],
            "by_room": [{"room": room, "label": self.label(room), "alerts": n,
                         "calls": room_calls[room], "per_night": round(n / nights, 2)}
                        for room, n in sorted(rooms.items(), key=lambda i: (-i[1], i[0]))],
            "by_hour": [{"hour": hour, "alerts": n} for hour, n in enumerate(self.by_hour())],
            "outcomes": [{"outcome": key, "alerts": outcomes[key],
                          "share": round(outcomes[key] / total, 4) if total else None}
                         for key in OUTCOME_KEYS],
            "noisiest": [_noisy(r, nights, t) for r in self.noisiest],
            "changes": [{"at": c.at.isoformat(), "first_night": c.first_night.isoformat(),
                         "actor": c.actor, "rule": c.rule, "room": c.room,
                         "enabled": c.enabled, "minutes": c.minutes, "severity": c.severity,
                         "reason": c.reason, "before_per_night": c.before_per_night,
                         "after_per_night": c.after_per_night} for c in self.changes],
        }


def outcome_key(alert: LoadAlert) -> str:
    """What staff found, or "unresolved" (open, acknowledged, or resolved without one)."""
    return alert.outcome if alert.status == "resolved" and alert.outcome else "unresolved"


def _noisy(r: NoisyRoom, nights: int, t: Localizer) -> dict[str, Any]:
    routine: dict[str, Any] | None = None
    if r.routine is not None:
        limit = timedelta(minutes=int(r.limits.get(RuleName.BED_EXIT_NOT_BACK.value, {})
                                      .get("minutes") or 10))
        spell = r.routine.usual_spell
        routine = {
            "nights": r.routine.nights,
            "usual_out_of_bed_min": None if spell is None
            else round(spell.value.total_seconds() / 60, 1),
            "allowed_out_of_bed_min": round(
                r.routine.allowed_out_of_bed(limit).total_seconds() / 60, 1),
            "rises_from": None if r.routine.rises_from is None
            else r.routine.rises_from.strftime("%H:%M"),
            "explanation": [t.gettext(message, **values)
                            for message, values in r.routine.explain(limit)],
        }
    return {"room": r.room, "label": r.label, "kind": r.kind, "alerts": r.alerts,
            "calls": r.calls, "per_night": round(r.alerts / nights, 2),
            "by_rule": r.by_rule, "limits": r.limits, "routine": routine}


def period_bounds(site: SiteInfo, first: date, last: date) -> tuple[datetime, datetime]:
    """Local noon before the first night to local noon after the last (each night with its
    evening and morning, as ``SiteInfo.night_of`` counts them)."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=site.tz) + timedelta(hours=12)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(),
                           tzinfo=site.tz) + timedelta(hours=12)
    return start.astimezone(UTC), end.astimezone(UTC)


def _limits(book: RuleBook, room: str, kind: RoomKind) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rule in _LIMITS.get(kind, ()):
        setting = book.setting(rule, room)
        out[rule.value] = {"enabled": setting.enabled, "minutes": setting.minutes}
    return out


def _first_night(site: SiteInfo, at: datetime) -> date:
    night = site.night_of(at)
    return night if at < site.night_window(night)[1] else night + timedelta(days=1)


def _changes(conn: psycopg.Connection, load: AlarmLoad, start: datetime,
             end: datetime) -> list[RuleChangeMark]:
    per_night = {n: sum(c.values()) for n, c in load.per_night().items()}

    def mean(nights: list[date]) -> float | None:
        counted = [per_night[n] for n in nights if n in per_night]
        return round(sum(counted) / len(counted), 2) if counted else None

    marks: list[RuleChangeMark] = []
    for entry in read_audit(conn, since=start, until=end, action="rules.set",
                            site=load.site.id, limit=500):
        first = _first_night(load.site, entry.at)
        d = entry.detail
        marks.append(RuleChangeMark(
            entry.at, first, entry.actor, str(d.get("rule", "")), d.get("room"),
            d.get("enabled"), d.get("minutes"), d.get("severity"), d.get("reason"),
            mean([first - timedelta(days=n) for n in range(1, TREND_NIGHTS + 1)]),
            mean([first + timedelta(days=n) for n in range(TREND_NIGHTS)])))
    return marks


def _noisiest(conn: psycopg.Connection, load: AlarmLoad, layout: SiteLayout, book: RuleBook,
              end: datetime) -> list[NoisyRoom]:
    rooms: Counter[str] = Counter(a.room for a in load.alerts)
    top = sorted(rooms.items(), key=lambda i: (-i[1], i[0]))[:NOISIEST]
    routines: dict[str, FlatRoutine] = {}
    if any(room in layout.rooms and layout.rooms[room].kind is RoomKind.FLAT
           for room, _ in top):
        # The routine as the rules engine would have learned it at the period's end.
        history = bed_events(conn, load.site.id, end - timedelta(days=LEARN_NIGHTS + 1), end)
        routines = learn_routines(layout, history, end)
    noisy: list[NoisyRoom] = []
    for room, n in top:
        info = layout.rooms.get(room)
        kind = info.kind if info is not None else None
        alerts = [a for a in load.alerts if a.room == room]
        noisy.append(NoisyRoom(
            room, load.label(room), kind.value if kind is not None else "?", n,
            sum(a.called_at is not None for a in alerts),
            dict(Counter(a.rule for a in alerts).most_common()),
            _limits(book, room, kind) if kind is not None else {},
            routines.get(room)))
    return noisy


def build_alarm_load(conn: psycopg.Connection, site_id: str, last: date,
                     nights: int = DEFAULT_NIGHTS, *, noisiest: bool = True) -> AlarmLoad:
    """The alarm load of the ``nights`` nights of ``site_id`` ending with ``last``
    (inclusive). ``noisiest=False`` skips the rooms' routines and limits (the handover's
    summary names the rooms only). Raises ``UnknownSite``."""
    site = load_sites(conn, [site_id])[0]
    first = last - timedelta(days=max(1, min(nights, MAX_NIGHTS)) - 1)
    start, end = period_bounds(site, first, last)
    load = AlarmLoad(site, first, last, load_alerts(conn, site.id, start, end),
                     room_labels(conn, site.id), [], [])
    load.changes.extend(_changes(conn, load, start, end))
    if noisiest:
        layouts, books = layouts_from_store(read_layouts(conn))
        if site.id in layouts:
            load.noisiest.extend(_noisiest(conn, load, layouts[site.id], books[site.id], end))
    return load
