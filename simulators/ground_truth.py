"""What really happened in a simulated night, and how well a rule set's alerts matched it.

Every episode the simulator plays (a toilet visit, a fall, a flapping door contact) is
recorded with whether it truly needed staff and which alerts the default rules should
raise for it. ``score`` compares that log with the alerts a rules engine raised:
recall of the episodes that needed help, and alerts that answered no real need.
Needed-help episodes are only ever generated where the default rules can see them
(monitored flats, working sensors, inside the night window), so recall can reach 100 %.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.alerts import DEVICE_RULES, RuleName

__all__ = [
    "MATCH_TOLERANCE",
    "AlertRecord",
    "Episode",
    "EpisodeKind",
    "ExpectedAlert",
    "GroundTruth",
    "NeedKind",
    "Score",
    "SiteScore",
    "answers",
    "call_time",
    "relates",
    "score",
]


class EpisodeKind(StrEnum):
    TOILET_VISIT = "toilet_visit"
    WANDERING = "wandering"              # up in the own flat, out of bed for a while
    EARLY_RISE = "early_rise"            # up for the day before the night window ends
    LEFT_FLAT_SHORT = "left_flat_short"  # kitchen or lounge, back within 15 min
    LEFT_FLAT_LONG = "left_flat_long"    # out of the flat, disoriented: needs staff
    SMOKE_BREAK = "smoke_break"          # out of the building briefly, comes back
    LEFT_BUILDING = "left_building"      # out of the building at night: needs staff
    LATE_RETURN = "late_return"          # comes home after the night began
    FALL = "fall"                        # out of bed and on the floor: needs staff
    COMMON_ACTIVITY = "common_activity"  # people up in a common room
    STAFF_ROUND = "staff_round"          # night staff walking the corridors and common rooms
    SENSOR_OFFLINE = "sensor_offline"
    FLAPPING = "flapping"                # a door contact bouncing open/closed
    LOW_BATTERY = "low_battery"


class NeedKind(StrEnum):
    """Why an episode needed staff, and so which detection delay it is scored under."""

    BUILDING_EXIT = "building_exit"       # out through a building exit at night
    OUTING = "outing"                     # out of the flat and lost, inside the building
    FALL_BED_SENSOR = "fall_bed_sensor"   # on the floor; only a bed sensor saw it begin


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    rule: RuleName
    room: str


@dataclass(frozen=True, slots=True)
class Episode:
    """One thing that happened. ``resident`` is an anonymous code, never a name."""

    site: str
    night: date
    kind: EpisodeKind
    room: str
    start: datetime
    end: datetime
    needed_help: bool
    expected: tuple[ExpectedAlert, ...] = ()
    resident: str | None = None
    device: str | None = None
    monitored: bool = True
    # When help became needed (the fall, the exit door, getting lost) and why; set for
    # every needed-help episode, None for the others. Detection delay counts from here.
    need_onset: datetime | None = None
    need: NeedKind | None = None

    @property
    def expected_rules(self) -> tuple[RuleName, ...]:
        return tuple(dict.fromkeys(alert.rule for alert in self.expected))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "episode", "site": self.site, "night": self.night.isoformat(),
            "kind": str(self.kind), "room": self.room, "resident": self.resident,
            "device": self.device, "start": _iso(self.start), "end": _iso(self.end),
            "needed_help": self.needed_help, "monitored": self.monitored,
            "expected_rules": [str(rule) for rule in self.expected_rules],
            "expected": [{"rule": str(a.rule), "room": a.room} for a in self.expected],
            "need_onset": None if self.need_onset is None else _iso(self.need_onset),
            "need": None if self.need is None else str(self.need),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Episode:
        return cls(
            site=raw["site"], night=date.fromisoformat(raw["night"]),
            kind=EpisodeKind(raw["kind"]), room=raw["room"],
            start=datetime.fromisoformat(raw["start"]), end=datetime.fromisoformat(raw["end"]),
            needed_help=bool(raw["needed_help"]),
            expected=tuple(ExpectedAlert(RuleName(a["rule"]), a["room"])
                           for a in raw["expected"]),
            resident=raw.get("resident"), device=raw.get("device"),
            monitored=bool(raw.get("monitored", True)),
            need_onset=None if raw.get("need_onset") is None
            else datetime.fromisoformat(raw["need_onset"]),
            need=None if raw.get("need") is None else NeedKind(raw["need"]))


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as the rules engine raised it; ``ts`` is its first trigger (event time),
    ``called_at`` when it became a call to go (None: it stayed a quiet situation); ``id``
    and ``severity`` as stored (None where no store was involved)."""

    site: str
    room: str
    rule: str
    ts: datetime
    called_at: datetime | None = None
    id: int | None = None
    severity: str | None = None


@dataclass
class GroundTruth:
    """The episodes of one or more simulated nights, and which nights were simulated."""

    episodes: list[Episode] = field(default_factory=list)
    nights: dict[str, list[date]] = field(default_factory=dict)

    def add_night(self, site: str, night: date, episodes: Iterable[Episode]) -> None:
        self.nights.setdefault(site, []).append(night)
        self.episodes.extend(episodes)

    def needing_help(self) -> list[Episode]:
        return [episode for episode in self.episodes if episode.needed_help]

    def write_jsonl(self, path: Path) -> None:
        """One JSON object per line: ``{"type": "night", ...}`` then ``{"type": "episode"}``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for site, nights in sorted(self.nights.items()):
                for night in nights:
                    out.write(json.dumps({"type": "night", "site": site,
                                          "night": night.isoformat()}) + "\n")
            for episode in sorted(self.episodes, key=lambda e: (e.start, e.site, e.room)):
                out.write(json.dumps(episode.to_json(), ensure_ascii=False) + "\n")

    @classmethod
    def read_jsonl(cls, path: Path) -> GroundTruth:
        truth = cls()
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            if raw["type"] == "night":
                truth.nights.setdefault(raw["site"], []).append(date.fromisoformat(raw["night"]))
            else:
                truth.episodes.append(Episode.from_json(raw))
        return truth


@dataclass(frozen=True, slots=True)
class SiteScore:
    site: str
    nights: int
    needed: int                 # episodes that truly needed staff
    caught: int                 # of those, matched by an alert of an expected rule
    resident_alerts: int        # alerts of the resident rules (all but sensor/battery)
    needless: int               # resident calls that answered no needed-help episode
    device_alerts: int          # sensor_offline and low_battery, counted apart
    missed: tuple[Episode, ...] = ()
    calls: int = 0              # resident alerts that became calls to go
    quiet: int = 0              # resident alerts that stayed quiet situations

    @property
    def recall(self) -> float | None:
        return self.caught / self.needed if self.needed else None

    @property
    def needless_per_night(self) -> float | None:
        return self.needless / self.nights if self.nights else None


@dataclass(frozen=True, slots=True)
class Score:
    sites: dict[str, SiteScore]

    @property
    def needed(self) -> int:
        return sum(s.needed for s in self.sites.values())

    @property
    def caught(self) -> int:
        return sum(s.caught for s in self.sites.values())

    @property
    def recall(self) -> float | None:
        return self.caught / self.needed if self.needed else None

    @property
    def needless(self) -> int:
        return sum(s.needless for s in self.sites.values())

    @property
    def device_alerts(self) -> int:
        return sum(s.device_alerts for s in self.sites.values())


# Clock skew and delayed deliveries put an alert a little outside its episode's span.
MATCH_TOLERANCE = timedelta(minutes=2)


def score(truth: GroundTruth, alerts: Sequence[AlertRecord], *,
          tolerance: timedelta = MATCH_TOLERANCE) -> Score:
    """Match alerts to needed-help episodes of the same site and room.

    An alert matches an episode when its rule and room are among the episode's expected
    alerts and its first trigger lies within the episode's span widened by ``tolerance``
    (clock skew and delayed deliveries). One alert may answer several episodes (two
    residents through the same exit); an episode is caught by any one matching alert
    that became a *call* no later than the episode's end plus ``tolerance``: a quiet
    alert is not a catch. ``needless`` counts resident alerts that became calls and
    answered no needed-help episode; quiet ones are counted apart (``quiet``).
    """
    needed_by_site: dict[str, list[Episode]] = defaultdict(list)
    for episode in truth.needing_help():
        needed_by_site[episode.site].append(episode)
    alerts_by_site: dict[str, list[AlertRecord]] = defaultdict(list)
    for alert in alerts:
        alerts_by_site[alert.site].append(alert)

    sites: dict[str, SiteScore] = {}
    for site in sorted(set(truth.nights) | set(needed_by_site) | set(alerts_by_site)):
        episodes = needed_by_site.get(site, [])
        caught: set[int] = set()
        resident_alerts = needless = device_alerts = calls = 0
        for alert in alerts_by_site.get(site, []):
            if alert.rule in DEVICE_RULES:
                device_alerts += 1
                continue
            resident_alerts += 1
            if call_time(alert) is None:
                continue
            calls += 1
            caught.update(i for i, episode in enumerate(episodes)
                          if answers(alert, episode, tolerance))
            if not any(relates(alert, episode, tolerance) for episode in episodes):
                needless += 1
        sites[site] = SiteScore(
            site=site, nights=len(truth.nights.get(site, [])), needed=len(episodes),
            caught=len(caught), resident_alerts=resident_alerts, needless=needless,
            device_alerts=device_alerts,
            missed=tuple(e for i, e in enumerate(episodes) if i not in caught),
            calls=calls, quiet=resident_alerts - calls)
    return Score(sites=sites)


def call_time(alert: AlertRecord) -> datetime | None:
    """When an alert asked staff to go (event time), None for a quiet alert: the one place
    scoring reads an alert's call. Detection delay counts to it, recall needs it."""
    return alert.called_at


def relates(alert: AlertRecord, episode: Episode,
            tolerance: timedelta = MATCH_TOLERANCE) -> bool:
    """True when ``alert`` is about ``episode``: an expected rule and room, and its situation
    began (first trigger) within the episode's span widened by ``tolerance``."""
    try:
        rule = RuleName(alert.rule)
    except ValueError:
        return False  # a rule this scorer does not know answers no episode
    if ExpectedAlert(rule, alert.room) not in episode.expected:
        return False
    return episode.start - tolerance <= alert.ts <= episode.end + tolerance


def answers(alert: AlertRecord, episode: Episode,
            tolerance: timedelta = MATCH_TOLERANCE) -> bool:
    """True when ``alert`` caught ``episode``: it is about it and it called staff no later
    than the episode's end plus ``tolerance`` (a quiet alert catches nothing)."""
    call = call_time(alert)
    return (call is not None and call <= episode.end + tolerance
            and relates(alert, episode, tolerance))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
