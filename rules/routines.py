"""Each flat's own normal night, learned from its history: rooms only, never a person.

A flat's bed sensor tells, night after night, how long its resident is usually out of bed
(a toilet visit) and when they usually get up for the day. From the last ``LEARN_NIGHTS``
nights of stored events (``learn_routines``) a flat gets a ``FlatRoutine``:

- ``allowed_out_of_bed``: the "out of bed and not back" timer for this flat. The room's
  setting (``bed_exit_not_back`` minutes) is a hard safety limit: learning never goes past
  it, only below it, to the flat's usual longest spell plus a margin (``SPELL_MARGIN``),
  never below ``SHORTEST_ALLOWED``. A fall looks like a toilet visit until the flat's usual
  visit length has passed; a flat whose visits last 3-6 min is called after 8, not 10.
- ``rises_from``: the flat's usual rising time: only ``RISE_QUANTILE`` of its nights saw
  the resident up for the day before it (a morning risen after the night ended counts as
  later than any). A bed exit from then until the night ends is the resident's day
  beginning, not a spell out of bed: the bed timer is not armed (a bed sensor cannot tell
  a fall after rising from the day's start; the night window of a flat ends there). A
  timer armed earlier that runs out after that time is the same early start of the day:
  a quiet situation, not a call (``rules.rooms``).

Until a flat has ``MIN_NIGHTS`` nights of history it uses the site's defaults. Every
figure carries its explanation (``explain``), in the catalogue's Danish first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from core.events import DeviceKind, Event, EventKind, RoomKind
from core.i18n import mark
from core.night_window import NightWindow
from rules.layout import SiteLayout

__all__ = [
    "LEARN_NIGHTS",
    "MIN_NIGHTS",
    "FlatRoutine",
    "Learned",
    "learn_routines",
]

LEARN_NIGHTS = 28          # history a routine is learned from
MIN_NIGHTS = 14            # a flat with fewer nights of history keeps the site's defaults
SPELL_QUANTILE = 0.95      # "usually back within": all but the rarest spells
SPELL_MARGIN = timedelta(minutes=2)
SHORTEST_ALLOWED = timedelta(minutes=5)
RISE_QUANTILE = 0.1        # "usually up from": all but the earliest tenth of mornings
LONGEST_SPELL = timedelta(hours=3)  # a longer "spell" is a lost bed.enter, not a visit


@dataclass(frozen=True, slots=True)
class Learned:
    """One learned figure: its value, the samples it rests on, and how many nights."""

    value: timedelta
    samples: int
    nights: int


@dataclass(frozen=True, slots=True)
class FlatRoutine:
    """A flat's normal night; ``None`` figures are not learned (too little history)."""

    room: str
    nights: int
    usual_spell: Learned | None = None    # the flat's usual longest time out of bed
    rises_from: time | None = None        # local clock time the day usually starts from
    rise_nights: int = 0

    def allowed_out_of_bed(self, limit: timedelta) -> timedelta:
        """The bed timer for this flat: learned, but never past the safety ``limit``."""
        if self.usual_spell is None:
            return limit
        learned = max(SHORTEST_ALLOWED, self.usual_spell.value + SPELL_MARGIN)
        minutes = timedelta(minutes=math.ceil(learned.total_seconds() / 60))
        return min(limit, minutes)

    def has_risen(self, at: datetime, window: NightWindow) -> bool:
        """Whether a bed exit at ``at`` (inside the night ``window``) is the usual start of
        the day: in the morning, at or after the flat's rising time."""
        night = window.night_of(at)
        if self.rises_from is None or night is None:
            return False
        local = at.astimezone(window.tz)
        morning = local.hour < 12 and (not window.crosses_midnight or local.date() > night)
        return morning and local.time() >= self.rises_from

    def explain(self, limit: timedelta) -> list[tuple[str, dict[str, object]]]:
        """Why the flat's timers are what they are: catalogue messages with their values."""
        lines: list[tuple[str, dict[str, object]]] = []
        limit_min = round(limit.total_seconds() / 60)
        if self.usual_spell is None:
            lines.append((mark("No routine yet ({nights} of {needed} nights): the site's "
                               "limit of {limit} min applies."),
                          {"nights": self.nights, "needed": MIN_NIGHTS, "limit": limit_min}))
        else:
            lines.append((mark("Usually back in bed within {usual} min ({samples} times in "
                               "{nights} nights): calls after {allowed} min (the site's limit: "
                               "{limit} min)."),
                          {"usual": round(self.usual_spell.value.total_seconds() / 60),
                           "samples": self.usual_spell.samples,
                           "nights": self.usual_spell.nights,
                           "allowed": round(self.allowed_out_of_bed(limit).total_seconds()
                                            / 60),
                           "limit": limit_min}))
        if self.rises_from is not None:
            lines.append((mark("Usually up for the day from {rises}: leaving the bed after "
                               "that, or still up when that time comes, is the day "
                               "beginning, not a call."),
                          {"rises": self.rises_from.strftime("%H:%M")}))
        return lines


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def learn_routines(layout: SiteLayout, events: Iterable[Event],
                   until: datetime) -> dict[str, FlatRoutine]:
    """Every flat's routine from ``events`` (any order) of the nights before ``until``.

    Only nights that ended before ``until`` count, so a routine never learns from the
    night it is used in. A spell is a ``bed.exit`` in the night window followed by the same
    bed's ``bed.enter`` within ``LONGEST_SPELL``; the night's rising time is its last
    ``bed.exit`` in the window with no ``bed.enter`` after it before the night ended.
    """
    night = layout.night
    beds = {device: info.room for device, info in layout.devices.items()
            if info.kind is DeviceKind.BED
            and layout.rooms[info.room].kind is RoomKind.FLAT}
    by_device: dict[str, list[Event]] = {}
    for event in events:
        if event.device in beds and event.kind in (EventKind.BED_EXIT, EventKind.BED_ENTER):
            by_device.setdefault(event.device, []).append(event)
    routines: dict[str, FlatRoutine] = {}
    for device, stream in by_device.items():
        room = beds[device]
        stream.sort(key=lambda e: (e.ts, e.id))
        spells: list[tuple[date, float]] = []
        last_exit: dict[date, Event | None] = {}
        nights_seen: set[date] = set()
        for i, event in enumerate(stream):
            start = night.night_of(event.ts)
            if start is None or night.bounds(start)[1] > until:
                continue  # the night is not over yet: nothing to learn from it
            nights_seen.add(start)
            if event.kind is EventKind.BED_ENTER:
                last_exit[start] = None
                continue
            last_exit[start] = event
            following = stream[i + 1] if i + 1 < len(stream) else None  # bed events only
            if (following is not None and following.kind is EventKind.BED_ENTER
                    and following.ts - event.ts <= LONGEST_SPELL
                    and night.contains(following.ts)):
                spells.append((start, (following.ts - event.ts).total_seconds()))
        rises = [ev.ts.astimezone(night.tz) for ev in last_exit.values() if ev is not None]
        rises = [r for r in rises if r.hour < 12]  # the morning's, not a late bedtime's
        routine = FlatRoutine(room, len(nights_seen))
        if len(nights_seen) >= MIN_NIGHTS and spells:
            usual = _quantile([s for _, s in spells], SPELL_QUANTILE)
            routine = FlatRoutine(room, len(nights_seen),
                                  Learned(timedelta(seconds=usual), len(spells),
                                          len({n for n, _ in spells})))
        # Mornings risen after the night ended left no rising time in it: they count as
        # later than any seen (a censored sample), so "usually up from" is the rising
        # time that only RISE_QUANTILE of all the flat's nights came before.
        earliest = sorted(r.hour * 60 + r.minute for r in rises)
        rank = math.ceil(RISE_QUANTILE * len(nights_seen))
        if len(nights_seen) >= MIN_NIGHTS and 0 < rank <= len(earliest):
            minutes = earliest[rank - 1]
            routine = FlatRoutine(room, routine.nights, routine.usual_spell,
                                  time(minutes // 60, minutes % 60), len(rises))
        routines[room] = routine
    return routines
