"""The morning handover: one tablet screen on how the night went at one site, for the day shift.

For staff of the site (room labels are shown; there are no names anywhere in Nattero).
Danish by default, English as the alternative. The night's alerts are grouped by flat and
situation (rule) with the times they *happened* (the triggering event's time, not when the
server processed it, which for a replayed night is hours later); the exceptions (alerts
nobody handled, help given, sensors offline) come first, and long lists fold away behind
"12 more ..." so the page fits a tablet without scrolling past what matters.

The handover of the first night of the week opens with the week's alarm load
(``WeeklySummary``, issue 14 §4). The first night of the week is the night that begins on
Sunday evening and ends on Monday morning: its handover is the first of the working week,
read by the Monday day shift. The summary covers the seven nights that end with it (the
evenings Monday to Sunday) against the seven before.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from core.alerts import DEVICE_RULES, Outcome, RuleName
from core.i18n import DEFAULT_LANGUAGE, Language, localizer
from evaluation.alarm_load import OUTCOME_KEYS, build_alarm_load
from evaluation.occupancy import DISTURBANCES
from evaluation.pages import render
from evaluation.period import SiteInfo, load_sites
from evaluation.vocabulary import OUTCOMES, PROBLEMS, RULES, SENSORS, name
from ingest import evaluation as stored
from ingest.sites import device_kinds, room_labels

# How many rows each list shows before folding the rest away; with the header this keeps
# the page within one landscape tablet screen (1024 x 768) for a typical night.
SHOWN_SITUATIONS = 8
SHOWN_SENSORS = 4
SHOWN_RESTED = 24

# Outcomes that make a situation an exception the day shift must read first.
_EXCEPTIONAL = {"unresolved", "open", "acknowledged", Outcome.HELP_GIVEN.value}
WEEK = 7
SHOWN_NOISIEST = 3


def first_night_of_week(night: date) -> bool:
    """The night beginning on Sunday evening (ending Monday morning) opens the week."""
    return night.weekday() == 6


@dataclass(frozen=True, slots=True)
class WeeklySummary:
    """The week's alarm load, ending with the handover's night."""

    first_night: date
    last_night: date
    alerts: int
    calls: int
    alerts_before: int  # the seven nights before
    outcomes: dict[str, int]  # OUTCOME_KEYS -> alerts
    noisiest: list[tuple[str, int]]  # (room label, alerts), the noisiest first
    rule_changes: int


def weekly_summary(conn: psycopg.Connection, site_id: str, night: date) -> WeeklySummary:
    """The alarm load of the week ending with ``night`` (see the module docstring)."""
    week = build_alarm_load(conn, site_id, night, WEEK, noisiest=False)
    before = build_alarm_load(conn, site_id, night - timedelta(days=WEEK), WEEK,
                              noisiest=False)
    outcomes = week.outcomes()
    rooms = Counter(week.label(a.room) for a in week.alerts)
    return WeeklySummary(week.first_night, week.last_night, len(week.alerts), week.calls,
                         len(before.alerts), {key: outcomes[key] for key in OUTCOME_KEYS},
                         sorted(rooms.items(), key=lambda i: (-i[1], _natural(i[0])))
                         [:SHOWN_NOISIEST], len(week.changes))


@dataclass(frozen=True, slots=True)
class HandoverAlert:
    room: str
    rule: str
    count: int
    happened: datetime  # the first triggering event's time, not the processing time
    outcome: str        # an Outcome, or the status ("open", "acknowledged") when unresolved
    minutes_to_acknowledge: float | None


@dataclass(slots=True)
class Situation:
    """One flat's alerts of one rule in the night: what the day shift reads as a line."""

    room: str
    rule: str
    alerts: list[HandoverAlert] = field(default_factory=list)

    @property
    def times(self) -> list[datetime]:
        return [a.happened for a in self.alerts]

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(a.outcome for a in self.alerts)

    @property
    def exceptional(self) -> bool:
        return any(a.outcome in _EXCEPTIONAL for a in self.alerts)


@dataclass(frozen=True, slots=True)
class SensorProblem:
    room: str
    device_kind: str
    problem: str  # "offline" (alert) or "silent" (no event in the night window)
    since: datetime | None
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Handover:
    site: SiteInfo
    night: date
    start: datetime
    end: datetime
    alerts: list[HandoverAlert]
    rested: list[str]
    flats_reporting: int
    sensors: list[SensorProblem]
    generated_at: datetime
    weekly: WeeklySummary | None = None  # on the first night of the week only
    # Times no board was connected, with how telling the night's people by e-mail went.
    board_gaps: list[stored.BoardGap] = field(default_factory=list)

    def situations(self) -> list[Situation]:
        """Grouped by flat and rule; exceptions first, then in the order they happened."""
        groups: dict[tuple[str, str], Situation] = {}
        for alert in self.alerts:
            groups.setdefault((alert.room, alert.rule),
                              Situation(alert.room, alert.rule)).alerts.append(alert)
        return sorted(groups.values(), key=lambda s: (not s.exceptional, min(s.times)))

    @property
    def unhandled(self) -> int:
        return sum(1 for a in self.alerts if a.outcome in ("unresolved", "open", "acknowledged"))

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site.id, "night": self.night.isoformat(),
                "alerts": len(self.alerts), "unhandled": self.unhandled,
                "rested": self.rested, "flats_reporting": self.flats_reporting,
                "situations": [{"room": s.room, "rule": s.rule,
                                "times": [m.isoformat() for m in s.times],
                                "outcomes": dict(s.outcomes), "exception": s.exceptional}
                               for s in self.situations()],
                "sensors": [{"room": s.room, "kind": s.device_kind, "problem": s.problem}
                            for s in self.sensors],
                "weekly": None if self.weekly is None else {
                    "from": self.weekly.first_night.isoformat(),
                    "to": self.weekly.last_night.isoformat(), "alerts": self.weekly.alerts,
                    "calls": self.weekly.calls, "alerts_before": self.weekly.alerts_before,
                    "outcomes": self.weekly.outcomes,
                    "noisiest": [list(r) for r in self.weekly.noisiest],
                    "rule_changes": self.weekly.rule_changes}}


def last_night(conn: psycopg.Connection, site: SiteInfo, now: datetime | None = None) -> date:
    """The latest night with events (the one just ended, in the morning)."""
    moment = now or datetime.now(UTC)
    latest = stored.latest_event_ts(conn, site.id, moment)
    return site.night_of(latest if latest is not None else moment)


def _label(labels: dict[str, str], room: str) -> str:
    return labels.get(room, room)


def build_handover(conn: psycopg.Connection, site_id: str, night: date | None = None) -> Handover:
    site = load_sites(conn, [site_id])[0]
    night = night or last_night(conn, site)
    start, end = site.night_window(night)
    noon = datetime.combine(night, time(12), site.tz)
    labels = room_labels(conn, site.id)
    rows = stored.handover_alerts(conn, site.id, noon, noon + timedelta(days=1))
    alerts: list[HandoverAlert] = []
    sensors: list[SensorProblem] = []
    alerted: set[str] = set()
    kinds = device_kinds(conn, site.id)
    for room, rule, count, raised, acked, outcome, status, device, first_ts, resolved in rows:
        if rule == RuleName.SENSOR_OFFLINE:
            sensors.append(SensorProblem(_label(labels, room), kinds.get(device or "", "?"),
                                         "offline", first_ts, resolved))
            continue
        if rule not in DEVICE_RULES:
            alerted.add(room)
        alerts.append(HandoverAlert(
            _label(labels, room), rule, count, first_ts,
            outcome or ("unresolved" if status == "resolved" else status),
            None if acked is None else round((acked - raised).total_seconds() / 60, 1)))
    flats = stored.flats_disturbed(conn, site.id, start, end, DISTURBANCES)
    rested = sorted((_label(labels, room) for room, disturbed in flats
                     if not disturbed and room not in alerted), key=_natural)
    silent = stored.silent_devices(conn, site.id, start, end)
    sensors += [SensorProblem(_label(labels, room), kind, "silent", None, None)
                for room, kind in silent]
    weekly = weekly_summary(conn, site.id, night) if first_night_of_week(night) else None
    return Handover(site, night, start, end, alerts, rested, len(flats), sensors,
                    datetime.now(UTC), weekly, stored.board_gaps(conn, site.id, start, end))


def _natural(label: str) -> tuple[str, int]:
    head = label.rstrip("0123456789")
    tail = label[len(head):]
    return head, int(tail) if tail else -1


def render_handover(h: Handover, language: Language = DEFAULT_LANGUAGE) -> str:
    t = localizer(language)
    tz = h.site.tz

    def outcome_summary(s: Situation) -> str:
        counts = s.outcomes
        return ", ".join(name(t, OUTCOMES, o) if n == 1 else f"{n} × {name(t, OUTCOMES, o)}"
                         for o, n in counts.most_common())

    situations = [{"room": s.room, "what": name(t, RULES, s.rule),
                   "times": ", ".join(t.clock(m, tz) for m in s.times),
                   "count": len(s.alerts), "outcome": outcome_summary(s),
                   "exception": s.exceptional,
                   "ack": t.number(max(a.minutes_to_acknowledge for a in s.alerts
                                       if a.minutes_to_acknowledge is not None))
                   if any(a.minutes_to_acknowledge is not None for a in s.alerts) else "–"}
                  for s in h.situations()]
    sensors = [{"room": s.room, "kind": name(t, SENSORS, s.device_kind),
                "problem": name(t, PROBLEMS, s.problem),
                "when": "" if s.since is None else f"{t.clock(s.since, tz)}–{t.clock(s.until, tz)}"}
               for s in sorted(h.sensors, key=lambda s: (s.problem != "offline", s.room))]
    # Rooms, not flats: common rooms and exit doors raise alerts too.
    rooms_alerted = len({a.room for a in h.alerts if a.rule not in DEVICE_RULES})
    weekly = None
    if h.weekly is not None:
        w = h.weekly
        weekly = {"w": w, "first": t.date(w.first_night, t.gettext("d MMMM")),
                  "last": t.date(w.last_night), "per_night": t.number(w.alerts / WEEK),
                  "outcomes": [(name(t, OUTCOMES, key), t.number(n))
                               for key, n in w.outcomes.items() if n],
                  "noisiest": ", ".join(f"{label} ({t.number(n)})" for label, n in w.noisiest)}
    gaps = [{"since": t.clock(g.since, tz),
             "until": None if g.until is None else t.clock(g.until, tz),
             "sent": g.mails_sent, "failed": g.mails_failed} for g in h.board_gaps]
    return render(
        "handover.html", h=h, t=t, situations=situations, sensors=sensors, weekly=weekly,
        gaps=gaps,
        night=t.date(h.night), evening=t.date(h.night, t.gettext("d MMMM")),
        morning=t.date(h.night + timedelta(days=1)), start=t.clock(h.start, tz),
        end=t.clock(h.end, tz),
        rooms_alerted=rooms_alerted, generated=t.moment(h.generated_at, tz),
        shown_situations=SHOWN_SITUATIONS, shown_sensors=SHOWN_SENSORS,
        shown_rested=SHOWN_RESTED)
