"""Site profiles: a pilot home described as data (``profiles/*.yaml``), validated into models.

A profile says how big a home is, which rooms and devices it has, which flats have a
monitoring basis, and how its residents and devices tend to behave at night. It never
holds a resident's name: rooms carry labels ("Lejlighed 12"), residents are anonymous.
A new site is a new YAML file; nothing here knows a particular site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.alerts import RuleName, Severity
from core.events import DeviceKind, RoomKind
from core.night_window import DEFAULT_NIGHT, DEFAULT_TIME_ZONE
from simulators.errors import ProfileError

__all__ = [
    "Basis",
    "Behaviour",
    "DeviceSpec",
    "RoomSpec",
    "SiteProfile",
    "all_profiles",
    "load_profile",
    "profile_names",
]

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

_SLUG = r"^[a-z0-9][a-z0-9-]{0,39}$"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

Slug = Annotated[str, Field(pattern=_SLUG)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0, le=20.0)]


def _range(lo: float, hi: float) -> tuple[float, float]:
    return (lo, hi)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_range(value: tuple[float, float]) -> tuple[float, float]:
    lo, hi = value
    if lo < 0 or hi < lo:
        raise ValueError(f"expected [low, high] with 0 <= low <= high, got [{lo}, {hi}]")
    return value


def minutes_after_noon(clock: str) -> int:
    """``"23:30"`` → 690, ``"02:00"`` → 840: a night's clock times, counted from noon."""
    match = _CLOCK.match(clock)
    if match is None:
        raise ValueError(f"expected a clock time HH:MM, got {clock!r}")
    minutes = int(match[1]) * 60 + int(match[2]) - 12 * 60
    return minutes if minutes >= 0 else minutes + 24 * 60


class ClockSpread(_Strict):
    """A time of night that varies: normal around ``mean`` with ``sd_min`` minutes spread."""

    mean: str
    sd_min: float = Field(default=30.0, ge=0, le=240)

    @field_validator("mean")
    @classmethod
    def _clock(cls, value: str) -> str:
        minutes_after_noon(value)
        return value

    @property
    def mean_minutes(self) -> int:
        return minutes_after_noon(self.mean)


class EpisodeRates(_Strict):
    """Expected episodes per resident per night (Poisson means)."""

    toilet_visit: Rate = 1.0
    wandering: Rate = 0.1          # up and about in the own flat, out of bed > 10 min
    left_flat_short: Rate = 0.1    # kitchen or lounge, back within 15 min
    left_flat_long: Rate = 0.0     # out of the flat > 15 min, disoriented: needs staff
    smoke_break: Rate = 0.0        # out of the building for a few minutes, comes back
    left_building: Rate = 0.0      # out of the building at night, not back: needs staff
    fall: Rate = 0.0               # out of bed and on the floor: needs staff


class EpisodeMinutes(_Strict):
    """How long each episode kind lasts, ``[low, high]`` minutes (uniform)."""

    toilet_visit: tuple[float, float] = _range(2, 8)
    wandering: tuple[float, float] = _range(12, 60)
    left_flat_short: tuple[float, float] = _range(3, 12)
    left_flat_long: tuple[float, float] = _range(20, 60)
    smoke_break: tuple[float, float] = _range(4, 10)
    left_building: tuple[float, float] = _range(25, 90)
    fall: tuple[float, float] = _range(20, 45)

    @field_validator("*")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _check_range(value)


class Behaviour(_Strict):
    """How residents of a group of flats tend to spend the night."""

    bedtime: ClockSpread = ClockSpread(mean="22:30", sd_min=40)
    wake: ClockSpread = ClockSpread(mean="07:15", sd_min=25)
    out_at_night_start: Fraction = 0.0     # chance of still being out when the night begins
    late_return: ClockSpread = ClockSpread(mean="00:30", sd_min=60)
    per_night: EpisodeRates = EpisodeRates()
    minutes: EpisodeMinutes = EpisodeMinutes()
    # log-normal sigma on a resident's own rates
    individual_spread: float = Field(default=0.4, ge=0, le=2)
    # Share of harmless toilet visits and short trips out that run long, to between the
    # range's high and 2.5x it: a slow night on the toilet, a chat in the kitchen. They
    # cross the default rule minutes (10 and 15) while nothing is wrong, as in a real home.
    overrun: Fraction = 0.1


class Basis(_Strict):
    """Why a flat may be monitored: the resident's consent, or a municipal decision."""

    consent: bool = False
    decision_ref: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None

    @model_validator(mode="after")
    def _one_ground(self) -> Basis:
        if self.consent == (self.decision_ref is not None):
            raise ValueError("a basis is either `consent: true` or a `decision_ref`, not both")
        if self.decision_ref is not None and self.valid_from is None:
            raise ValueError(f"decision {self.decision_ref!r} needs `valid_from`")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self

    def valid_on(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return not (self.valid_to is not None and day > self.valid_to)


class FlatGroup(_Strict):
    """Flats alike in devices, basis and behaviour, numbered ``numbers`` (e.g. ``"1-6,8"``)."""

    numbers: str
    id: str = "f{n:02d}"
    label: str = "Lejlighed {n}"
    devices: list[Literal["door", "bed"]] = ["door", "bed"]
    basis: Basis | None = None
    behaviour: str = "default"
    route: list[Slug] = []  # common rooms a resident passes on the way out, nearest first

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, value: str) -> str:
        _expand_numbers(value)
        return value

    def expanded(self) -> list[int]:
        return _expand_numbers(self.numbers)


class ActivityRate(_Strict):
    """People in a common room at night who are not tracked as an episode of one flat."""

    per_night: Rate = 0.0
    minutes: tuple[float, float] = _range(5, 30)
    earliest: str = "22:00"
    latest: str = "02:00"

    @field_validator("minutes")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _check_range(value)


class SiteRule(_Strict):
    """A site's own setting of one rule, as its manager would apply it (``rules.settings``);
    a field left out keeps the default."""

    enabled: bool | None = None
    minutes: int | None = Field(default=None, ge=0, le=720)
    severity: Severity | None = None


class StaffResponse(_Strict):
    """How night staff answer a call (``nattero simulate --respond``): seconds until they
    take it on the board, by severity; seconds to walk there; minutes in the room, by what
    they found. Uniform ranges; the simulator's assumption, not a measurement."""

    take_s_high: tuple[float, float] = _range(20, 120)
    take_s_normal: tuple[float, float] = _range(45, 300)
    walk_s: tuple[float, float] = _range(30, 150)
    help_minutes: tuple[float, float] = _range(5, 25)
    check_minutes: tuple[float, float] = _range(1, 5)

    @field_validator("*")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _check_range(value)


class StaffRounds(_Strict):
    """Night staff walking through the common rooms and corridors at about these times.

    ``checks_before`` and ``checks_during`` are the rounds that look in on every flat
    ("tilsynsrunder"), which staff log on the board ("Runde gået"): before the sensors went
    live (the baseline period) and in the pilot. They are the simulator's assumption about
    a site's practice, played only when a simulation asks for a baseline
    (``nattero simulate --baseline-nights``); the report then counts them as logged.
    """

    at: list[str] = ["23:30", "02:00", "04:30"]
    sd_min: float = Field(default=20.0, ge=0, le=120)
    rooms: list[Slug] | None = None        # walked in this order; default every common room
    dwell_s: tuple[float, float] = _range(20, 90)
    checks_before: list[str] = ["23:00", "01:00", "03:00", "05:00"]
    checks_during: list[str] = ["02:00"]   # the safety round many sites keep
    response: StaffResponse = StaffResponse()

    @field_validator("at", "checks_before", "checks_during")
    @classmethod
    def _clocks(cls, value: list[str]) -> list[str]:
        for clock in value:
            minutes_after_noon(clock)
        return value

    @field_validator("dwell_s")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _check_range(value)


class CommonRoom(_Strict):
    id: Slug
    label: str
    motion_sensors: int = Field(default=1, ge=1, le=4)
    activity: ActivityRate = ActivityRate()


class ExitRoom(_Strict):
    id: Slug
    label: str


class DeviceBehaviour(_Strict):
    """How the site's devices misbehave: batteries, outages, flapping, the network, clocks."""

    heartbeat_s: int = Field(default=300, ge=10, le=3600)
    heartbeat_jitter: Fraction = 0.02          # ± fraction of the interval
    battery_start: tuple[float, float] = _range(40, 100)
    battery_drain_per_night: tuple[float, float] = _range(0.2, 1.5)
    offline_per_night: Fraction = 0.05         # chance one device of the site drops out
    offline_announced: Fraction = 0.5          # of those, share that publish `offline`
    offline_minutes: tuple[float, float] = _range(25, 180)
    flapping_per_night: Fraction = 0.05        # chance one door contact bounces
    # Unlucky delivery (override for a whole run: `nattero simulate --lost/--duplicated/--late`)
    lost_fraction: Fraction = 0.002            # events the radio or a hub never delivers
    delayed_fraction: Fraction = 0.01          # late: published after later events (reordered)
    delay_s: tuple[float, float] = _range(5, 120)
    duplicate_fraction: Fraction = 0.005       # resent after a missed PUBACK
    clock_skew_s: float = Field(default=3.0, ge=0, le=30)
    latency_s: tuple[float, float] = _range(0.02, 0.4)

    @field_validator(
        "battery_start", "battery_drain_per_night", "offline_minutes", "delay_s", "latency_s")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _check_range(value)


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """One room of a site, expanded from the profile."""

    id: str
    kind: RoomKind
    label: str
    basis: Basis | None = None
    behaviour: str | None = None
    route: tuple[str, ...] = ()

    def monitored_on(self, night: date) -> bool:
        """True when a flat has a basis valid on ``night`` (the evening's date)."""
        return self.basis is not None and self.basis.valid_on(night)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    id: str
    room: str
    kind: DeviceKind
    heartbeat_s: int


class SiteProfile(_Strict):
    """A whole pilot site. ``rooms`` and ``devices`` give the expanded, provisioned view."""

    site: Slug
    name: str
    target_group: str
    tz: str = DEFAULT_TIME_ZONE
    night: str = DEFAULT_NIGHT
    devices: DeviceBehaviour = DeviceBehaviour()
    behaviours: dict[str, Behaviour]
    flats: list[FlatGroup]
    common: list[CommonRoom] = []
    exits: list[ExitRoom] = []
    staff: StaffRounds = StaffRounds()
    rules: dict[RuleName, SiteRule] = {}

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("night")
    @classmethod
    def _night(cls, value: str) -> str:
        parts = value.split("-")
        if len(parts) != 2 or not all(_CLOCK.match(p) for p in parts) or parts[0] == parts[1]:
            raise ValueError(f"expected a night window HH:MM-HH:MM, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SiteProfile:
        common_ids = {room.id for room in self.common}
        for group in self.flats:
            if group.behaviour not in self.behaviours:
                raise ValueError(
                    f"flats {group.numbers!r} use behaviour {group.behaviour!r}, which is not "
                    f"defined; defined: {sorted(self.behaviours)}")
            unknown = [room for room in group.route if room not in common_ids]
            if unknown:
                raise ValueError(
                    f"flats {group.numbers!r} route through {unknown}, which are not common "
                    f"rooms of the site; common rooms: {sorted(common_ids)}")
        if self.staff.rooms is not None:
            unknown = [room for room in self.staff.rooms if room not in common_ids]
            if unknown:
                raise ValueError(
                    f"staff rounds walk through {unknown}, which are not common rooms of "
                    f"the site; common rooms: {sorted(common_ids)}")
        seen: set[str] = set()
        for room in self.rooms:
            if not re.match(_SLUG, room.id):
                raise ValueError(f"room id {room.id!r} is not a slug (a-z, 0-9, '-')")
            if room.id in seen:
                raise ValueError(f"room id {room.id!r} appears twice")
            seen.add(room.id)
        return self

    @property
    def rooms(self) -> list[RoomSpec]:
        rooms: list[RoomSpec] = []
        for group in self.flats:
            for n in group.expanded():
                rooms.append(RoomSpec(
                    id=group.id.format(n=n), kind=RoomKind.FLAT, label=group.label.format(n=n),
                    basis=group.basis, behaviour=group.behaviour, route=tuple(group.route)))
        rooms += [RoomSpec(id=r.id, kind=RoomKind.COMMON, label=r.label) for r in self.common]
        rooms += [RoomSpec(id=r.id, kind=RoomKind.EXIT, label=r.label) for r in self.exits]
        return rooms

    @property
    def device_specs(self) -> list[DeviceSpec]:
        heartbeat = self.devices.heartbeat_s
        specs: list[DeviceSpec] = []
        for group in self.flats:
            for n in group.expanded():
                room = group.id.format(n=n)
                specs += [DeviceSpec(f"{room}-{kind}", room, DeviceKind(kind), heartbeat)
                          for kind in group.devices]
        for common in self.common:
            for i in range(common.motion_sensors):
                suffix = "" if i == 0 else f"-{i + 1}"
                specs.append(
                    DeviceSpec(f"{common.id}-motion{suffix}", common.id, DeviceKind.MOTION,
                               heartbeat))
        specs += [DeviceSpec(f"{r.id}-exit", r.id, DeviceKind.EXIT, heartbeat)
                  for r in self.exits]
        return specs

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def night_window(self, night: date) -> tuple[datetime, datetime]:
        """The night beginning on the evening of ``night``, as aware UTC datetimes."""
        start_text, end_text = self.night.split("-")
        start_clock, end_clock = time.fromisoformat(start_text), time.fromisoformat(end_text)
        end_day = night + timedelta(days=1) if end_clock <= start_clock else night
        start = datetime.combine(night, start_clock, self.zone)
        end = datetime.combine(end_day, end_clock, self.zone)
        return _utc(start), _utc(end)

    def local_time(self, night: date, minutes_after_noon: float) -> datetime:
        """A clock time of ``night`` given as minutes after its noon, as aware UTC."""
        noon = datetime.combine(night, time(12, 0))
        return _utc((noon + timedelta(minutes=minutes_after_noon)).replace(tzinfo=self.zone))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _expand_numbers(text: str) -> list[int]:
    numbers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise ValueError(f"expected flat numbers like '1-6,8', got {text!r}")
        low = int(match[1])
        high = int(match[2]) if match[2] else low
        if high < low:
            raise ValueError(f"range {part!r} runs backwards")
        numbers += range(low, high + 1)
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"flat numbers {text!r} repeat")
    return numbers


def profile_names() -> list[str]:
    """The bundled profiles, by site id."""
    return sorted(path.stem for path in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> SiteProfile:
    """A bundled profile by site id (``"solsikken"``) or any profile file by path.

    Raises ProfileError naming the file and every field that is wrong.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ProfileError(
            f"no site profile {str(name_or_path)!r}; bundled profiles: "
            f"{', '.join(profile_names())} (or give a path to a .yaml file)")
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return SiteProfile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors())
        raise ProfileError(f"{path}: invalid site profile: {problems}") from exc


def all_profiles() -> list[SiteProfile]:
    return [load_profile(name) for name in profile_names()]
