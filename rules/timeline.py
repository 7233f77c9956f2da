"""One room's or one device's inputs in event-time order, so late inputs are evaluated
at their own time.

The timeline keeps the inputs of the last ``history`` (set by the engine) sorted by
(ts, device, id), each with a snapshot of the machine's state right after it. Inserting
an input restores the snapshot just before its place, replays it and every later input
(firing timers in between), then fires timers up to the site's watermark. The resulting
state is exactly what a replay of the known inputs in ts order would reach, whatever
order they arrived in.

The intents of that replay that were not emitted before are returned; intents cannot
be taken back, so one made stale by a late input stays with the store. Lateness:

- a timer fired while inserting (its deadline is at or before the watermark, so it
  should have fired already) gives intents with ``late=True``;
- a Trigger caused by an input is ``late=True`` when its episode is already over after
  the replay (the resident is back, the door closed, the motion episode expired, ...),
  or when a timer of that episode fired while inserting (its escalation is overdue);
- timers fired by ``advance`` (the clock moving forward) are never late.

An input older than everything kept is evaluated against the oldest state kept, as
though it came right after it (documented limit: older than ``history``). An input the
machine calls redundant between its neighbours (``Machine.redundant``: a heartbeat in a
run of heartbeats) is forgotten as soon as its successor arrives.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from core.intents import Clear, Intent, Trigger, identity
from rules.machine import Input, Machine, SiteContext, input_key

__all__ = ["Timeline"]

M = TypeVar("M", bound=Machine)


@dataclass(slots=True)
class _Entry(Generic[M]):
    key: tuple[datetime, str, str]
    item: Input
    after: M


class Timeline(Generic[M]):
    def __init__(self, machine: M) -> None:
        self._base: M = machine.clone()
        self._entries: list[_Entry[M]] = []
        self.current: M = machine
        self._emitted: dict[tuple[str, str, str], datetime] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def next_deadline(self) -> datetime | None:
        return self.current.next_deadline()

    def advance(self, ctx: SiteContext, now: datetime) -> list[Intent]:
        """Fire the current state's timers due at ``now``; never late."""
        fired = [(intent, True) for intent in _fire(self.current, ctx, now)]
        return self._fresh(fired, self.current, late_timers=False)

    def insert(self, item: Input, ctx: SiteContext, watermark: datetime) -> list[Intent]:
        key = input_key(item)
        pos = bisect.bisect_left(self._entries, key, key=lambda entry: entry.key)
        if pos < len(self._entries) and self._entries[pos].key == key:
            return []  # the same input again: evaluated once, like the store keeps it once
        state = (self._entries[pos - 1].after if pos else self._base).clone()
        produced: list[tuple[Intent, bool]] = []
        replayed: list[_Entry[M]] = []
        for later in [item, *(entry.item for entry in self._entries[pos:])]:
            produced += [(i, True) for i in _fire(state, ctx, later.ts)]
            produced += [(i, False) for i in state.apply(later, ctx)]
            replayed.append(_Entry(input_key(later), later, state.clone()))
        produced += [(i, True) for i in _fire(state, ctx, watermark)]
        self._entries[pos:] = replayed
        self.current = state
        self._compact(pos, ctx)
        return self._fresh(produced, state, late_timers=True)

    def _compact(self, pos: int, ctx: SiteContext) -> None:
        """Forget the input before the one just placed at ``pos`` if the machine says no
        replay needs it (the in-order case: ``pos`` is the last entry)."""
        if pos != len(self._entries) - 1 or pos < 2:
            return
        before, middle, after = self._entries[pos - 2:pos + 1]
        if self.current.redundant(before.item, middle.item, after.item, ctx):
            del self._entries[pos - 1]

    def forget_before(self, horizon: datetime) -> None:
        """Drop inputs older than ``horizon``; the last dropped one's state becomes the base."""
        if not self._entries or self._entries[0].key[0] >= horizon:
            return
        cut = bisect.bisect_left(self._entries, horizon, key=lambda entry: entry.key[0])
        base_ts = self._entries[cut - 1].key[0]
        self._base = self._entries[cut - 1].after
        del self._entries[:cut]
        # A replay from the base only produces intents at or after its time.
        self._emitted = {k: ts for k, ts in self._emitted.items() if ts >= base_ts}

    def _fresh(
        self, produced: list[tuple[Intent, bool]], final: M, *, late_timers: bool
    ) -> list[Intent]:
        # Episodes whose timer fired while inserting: their deadline is already past.
        overdue = {i.episode_key for i, from_timer in produced if from_timer and late_timers}
        fresh: list[Intent] = []
        for intent, from_timer in produced:
            ident = identity(intent)
            if ident in self._emitted:
                continue
            self._emitted[ident] = intent.ts
            if from_timer:
                if late_timers and not isinstance(intent, Clear):
                    intent = dataclasses.replace(intent, late=True)
            elif isinstance(intent, Trigger) and (
                intent.episode_key in overdue or not final.is_open(intent.episode_key)
            ):
                intent = dataclasses.replace(intent, late=True)
            fresh.append(intent)
        return fresh


def _fire(state: Machine, ctx: SiteContext, until: datetime) -> list[Intent]:
    intents: list[Intent] = []
    while (deadline := state.next_deadline()) is not None and deadline <= until:
        intents += state.fire_next(ctx)
    return intents
