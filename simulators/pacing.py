"""Simulated time → wall time: nights play at ``speed``, the days between them at once.

``speed`` 1 is live, 60 plays a 9-hour night in 9 minutes, ``math.inf`` (``--speed max``)
publishes as fast as the broker acknowledges. Simulated time outside every paced span
(the day between two nights, which carries only heartbeats) costs no wall time.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from datetime import datetime

from simulators.errors import SpeedError

__all__ = ["MAX_SPEED", "Timetable", "parse_speed"]

MAX_SPEED = math.inf


def parse_speed(text: str | float) -> float:
    """``"max"`` → ``math.inf``; ``"60"`` → 60.0; anything else raises SpeedError."""
    if isinstance(text, str) and text.strip().lower() == "max":
        return MAX_SPEED
    if isinstance(text, float) and text == MAX_SPEED:
        return MAX_SPEED  # already parsed: ``simulate`` parses before ``run_simulation``
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not math.isfinite(speed) or speed <= 0:
        raise SpeedError(
            f"--speed must be 'max' or a positive number (1 = live, 60 = a night in 9 "
            f"minutes), got {text!r}")
    return speed


class Timetable:
    """Wall-clock offsets (seconds from the start) for simulated moments."""

    def __init__(self, origin: datetime, paced: Iterable[tuple[datetime, datetime]],
                 speed: float) -> None:
        self.origin, self.speed = origin, speed
        merged: list[list[float]] = []
        for start, end in sorted(paced):
            lo, hi = (start - origin).total_seconds(), (end - origin).total_seconds()
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._starts = [span[0] for span in merged]
        self._spans = merged
        self._before: list[float] = []  # paced seconds in all spans before span i
        total = 0.0
        for lo, hi in merged:
            self._before.append(total)
            total += hi - lo

    def offset(self, moment: datetime) -> float:
        """Seconds of wall time after the start at which ``moment`` is due."""
        if math.isinf(self.speed):
            return 0.0
        t = (moment - self.origin).total_seconds()
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        lo, hi = self._spans[i]
        return (self._before[i] + min(t, hi) - lo) / self.speed
