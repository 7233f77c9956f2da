"""The night window of a site: which instants are "night", in the site's own time zone.

A night is named by the local date it starts on. Its bounds are wall-clock local times
(default 22:00 to 07:00 the next morning), converted to UTC per night, so a night
that contains a DST change is longer or shorter in real time: with Europe/Copenhagen the
night of 24 October 2026 lasts 10 real hours (clocks go back), that of 28 March 2026 only
8 (clocks go forward), every other night 9.

Local times that do not exist or exist twice follow PEP 495 with ``fold=0`` (the value
of the given ``time``; ``parse`` always gives ``fold=0``):

- a bound in the skipped hour (e.g. 02:30 on the last Sunday of March) is read with the
  offset before the change, i.e. it falls one hour later on the new clock (03:30 CEST);
- a bound in the repeated hour (e.g. 02:30 on the last Sunday of October) means its first
  occurrence (02:30 CEST).

``contains`` and ``night_of`` are defined through ``bounds`` so the three always agree.
This module never reads the wall clock.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigurationError

__all__ = ["DEFAULT_NIGHT", "DEFAULT_TIME_ZONE", "NightWindow"]

DEFAULT_TIME_ZONE = "Europe/Copenhagen"
DEFAULT_NIGHT = "22:00-07:00"

_SPEC = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _default_zone() -> ZoneInfo:
    return ZoneInfo(DEFAULT_TIME_ZONE)


def require_aware(ts: datetime, what: str = "timestamp") -> None:
    """Raise ValueError for a naive datetime: every instant in rules is timezone-aware."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} {ts.isoformat()} has no time zone; pass an aware UTC datetime")


@dataclass(frozen=True, slots=True)
class NightWindow:
    """Night from ``start`` to ``end`` local wall-clock time; crosses midnight if end <= start."""

    start: time
    end: time
    tz: ZoneInfo = field(default_factory=_default_zone)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ConfigurationError(
                "night window times are local wall-clock times; pass naive times")
        if self.start == self.end:
            raise ConfigurationError(
                f"night window starts and ends at {self.start:%H:%M}; give two different "
                "times, e.g. '22:00-07:00'"
            )

    @classmethod
    def parse(cls, spec: str, tz: ZoneInfo | str = DEFAULT_TIME_ZONE) -> NightWindow:
        """Read ``"HH:MM-HH:MM"`` (e.g. ``"22:00-07:00"``); raise a ValueError saying why not."""
        match = _SPEC.match(spec)
        if match is None:
            raise ConfigurationError(
                f"night window {spec!r} is not of the form HH:MM-HH:MM, e.g. '22:00-07:00'"
            )
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise ConfigurationError(
                f"night window {spec!r} is not HH:MM-HH:MM with times from 00:00 to 23:59, "
                "e.g. '22:00-07:00'"
            ) from None
        if isinstance(tz, str):
            try:
                tz = ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigurationError(
                    f"time zone {tz!r} is unknown; use an IANA name such as 'Europe/Copenhagen'"
                ) from None
        return cls(start, end, tz)

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def bounds(self, night: date) -> tuple[datetime, datetime]:
        """The UTC instants [start, end) of the night that starts on local date ``night``."""
        return _bounds(self, night)

    def _bounds(self, night: date) -> tuple[datetime, datetime]:
        end_day = night + timedelta(days=1) if self.crosses_midnight else night
        start = datetime.combine(night, self.start, tzinfo=self.tz)
        end = datetime.combine(end_day, self.end, tzinfo=self.tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    def night_of(self, ts: datetime) -> date | None:
        """The local date the night containing ``ts`` started on, or None in daytime."""
        require_aware(ts)
        day = ts.astimezone(self.tz).date()
        for night in (day, day - timedelta(days=1)):
            start, end = self.bounds(night)
            if start <= ts < end:
                return night
        return None

    def contains(self, ts: datetime) -> bool:
        """True when ``ts`` (aware) lies inside a night."""
        return self.night_of(ts) is not None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz.key}"


@functools.lru_cache(maxsize=4096)
def _bounds(window: NightWindow, night: date) -> tuple[datetime, datetime]:
    # The rules ask for every event whether it is at night: the same few nights each time.
    return window._bounds(night)
