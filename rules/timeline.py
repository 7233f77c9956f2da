"""One room's or one device's inputs in event-time order, so late inputs are evaluated
at their own time.

The timeline keeps the inputs of the last ``history`` (set by the engine), and at most
``max_inputs`` of them, sorted by (ts, device, id), each with a snapshot of the machine's
state right after it. Inserting an input restores the snapshot just before its place,
replays it and the later inputs (firing timers in between), then fires timers up to the
site's watermark. The resulting state is exactly what a replay of the known inputs in ts
order would reach, whatever order they arrived in.

Bounded cost. The replay stops as soon as the state after a later input equals (``==``)
the snapshot kept for it: the machine is deterministic, so from there on it would replay
exactly as it did before, with the same intents (already emitted) and the same final state.
Motion arriving late inside an active episode only moves an expiry that the next input
moves again, so it costs two steps, not a replay of the room's night. A machine without
value equality never converges and is replayed to the end (correct, only slower). The
worst case, a late input that changes everything after it, is bounded by ``max_inputs``.

The intents of that replay that were not emitted before are returned; intents cannot
be taken back, so one made stale by a late input stays with the store. Lateness:

- a timer fired while inserting (its deadline is at or before the watermark, so it
  should have fired already) gives intents with ``late=True``;
- a Trigger caused by an input is ``late=True`` when its episode is already over after
  the replay (the resident is back, the door closed, the motion episode expired, ...),
  or when a timer of that episode fired between the input and the watermark (its
  escalation is overdue; for the part of the replay skipped by convergence this is read
  from the timer firings recorded with each input);
- timers fired by ``advance`` (the clock moving forward) are never late.

An input older than everything kept is evaluated against the oldest state kept, as
though it came right after it (documented limit: older than ``history``, or more than
``max_inputs`` inputs of the same room or device ago). An input the machine calls
redundant between its neighbours (``Machine.redundant``: a heartbeat in a run of
heartbeats) is forgotten as soon as its successor arrives.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from core.intents import Clear, Intent, Trigger, identity
from rules.machine import Input, Machine, SiteContext, input_key

__all__ = ["DEFAULT_MAX_INPUTS", "Timeline"]

M = TypeVar("M", bound=Machine)

Key = tuple[datetime, str, str]

# A busy common room (50 motion sensors) reaches this in minutes; a flat in weeks. It bounds
# the one replay that cannot stop early to some tens of milliseconds.
DEFAULT_MAX_INPUTS = 10_000
_NO_TIMERS: tuple[str, ...] = ()


@dataclass(slots=True)
class _Entry(Generic[M]):
    key: Key
    item: Input
    after: M
    # Episodes of the timers that fired between the previous input and this one.
    timers: tuple[str, ...] = _NO_TIMERS


class Timeline(Generic[M]):
    def __init__(self, machine: M, *, max_inputs: int = DEFAULT_MAX_INPUTS) -> None:
        if max_inputs < 3:
            raise ValueError(f"a timeline must keep at least 3 inputs, not {max_inputs}")
        self._base: M = machine.clone()
        self._entries: list[_Entry[M]] = []
        self.current: M = machine
        self._emitted: dict[tuple[str, str, str], datetime] = {}
        self._max_inputs = max_inputs
        # Where each episode's timers fired (the key of the input they preceded), and the
        # episodes whose timers fired after the last input: what a replay skipped by
        # convergence would have fired, for the lateness of a Trigger of that episode.
        self._timer_at: dict[str, set[Key]] = {}
        self._trailing: set[str] = set()
        # Whether ``current`` is still the state right after the last input (no timer has
        # fired since): an input in order then starts from it without a copy.
        self._current_is_last = False
        self.steps = 0  # inputs applied so far, replays included (the engine's cost)

    def __len__(self) -> int:
        return len(self._entries)

    def next_deadline(self) -> datetime | None:
        return self.current.next_deadline()

    def advance(self, ctx: SiteContext, now: datetime) -> list[Intent]:
        """Fire the current state's timers due at ``now``; never late."""
        if _due(self.current, now):
            self._current_is_last = False  # a timer fires (with or without intents)
        fired = [(intent, True) for intent in _fire(self.current, ctx, now)]
        self._trailing.update(intent.episode_key for intent, _ in fired)
        return self._fresh(fired, self.current, late_timers=False)

    def insert(self, item: Input, ctx: SiteContext, watermark: datetime) -> list[Intent]:
        key = input_key(item)
        entries = self._entries
        if not entries or key > entries[-1].key:
            pos = len(entries)  # in order, the usual case: no search
        else:
            pos = bisect.bisect_left(entries, key, key=lambda entry: entry.key)
        if pos < len(entries) and entries[pos].key == key:
            return []  # the same input again: evaluated once, like the store keeps it once
        if pos == len(entries) and pos and self._current_is_last:
            state = self.current  # the same as the last snapshot, and about to be replaced
        else:
            state = (entries[pos - 1].after if pos else self._base).clone()
        produced: list[tuple[Intent, bool]] = []
        fired = self._step(state, item, ctx, produced)
        replayed = [_Entry(key, item, state.clone(), fired)]
        end = pos  # old entries[pos:end] are replaced by ``replayed``
        converged = False
        while end < len(entries):
            old = entries[end]
            end += 1
            fired = self._step(state, old.item, ctx, produced)
            if self._converged(state, old.after):
                # Same state as before after this input: the rest would replay as it did.
                replayed.append(_Entry(old.key, old.item, old.after, fired))
                converged = True
                break
            replayed.append(_Entry(old.key, old.item, state.clone(), fired))
        self._mark(entries[pos:end], replayed)
        if converged:
            final = self.current
            tail_from: Key | None = replayed[-1].key
        else:
            self._current_is_last = not _due(state, watermark)
            finals = _fire(state, ctx, watermark)
            produced += [(i, True) for i in finals]
            self._trailing = {i.episode_key for i in finals}
            self.current = final = state
            tail_from = None
        entries[pos:end] = replayed
        if not converged:
            self._compact(pos, ctx)
        # Sorted out before forgetting: that prunes the record of what was emitted.
        fresh = self._fresh(produced, final, late_timers=True, tail_from=tail_from)
        if len(entries) > self._max_inputs + self._max_inputs // 8:
            # In steps of an eighth: forgetting prunes the emitted intents, a full pass.
            self._forget(len(entries) - self._max_inputs)
        return fresh

    @staticmethod
    def _converged(state: M, snapshot: M) -> bool:
        """Whether the replay may stop: the state is the one kept (tests turn this off to
        compare with a full replay)."""
        return state == snapshot

    def _step(self, state: M, item: Input, ctx: SiteContext,
              produced: list[tuple[Intent, bool]]) -> tuple[str, ...]:
        """Fire the timers due by ``item``, apply it; returns the fired timers' episodes."""
        timers = _fire(state, ctx, item.ts)
        if timers:
            produced += [(i, True) for i in timers]
        applied = state.apply(item, ctx)
        if applied:
            produced += [(i, False) for i in applied]
        self.steps += 1
        return tuple(i.episode_key for i in timers) if timers else _NO_TIMERS

    def _mark(self, old: list[_Entry[M]], new: list[_Entry[M]]) -> None:
        for entry in old:
            for episode in entry.timers:
                keys = self._timer_at.get(episode)
                if keys is not None:
                    keys.discard(entry.key)
                    if not keys:
                        del self._timer_at[episode]
        for entry in new:
            for episode in entry.timers:
                self._timer_at.setdefault(episode, set()).add(entry.key)

    def _fires_after(self, episode: str, key: Key) -> bool:
        """Whether a timer of ``episode`` fired after the input at ``key`` (up to now)."""
        if episode in self._trailing:
            return True
        keys = self._timer_at.get(episode)
        return keys is not None and any(at > key for at in keys)

    def _compact(self, pos: int, ctx: SiteContext) -> None:
        """Forget the input before the one just placed at ``pos`` if the machine says no
        replay needs it (the in-order case: ``pos`` is the last entry)."""
        if pos != len(self._entries) - 1 or pos < 2:
            return
        before, middle, after = self._entries[pos - 2:pos + 1]
        if self.current.redundant(before.item, middle.item, after.item, ctx):
            # Its timers fired before the input that follows it now.
            if middle.timers:
                self._mark([middle, after], [])
                after.timers = middle.timers + after.timers
                self._mark([], [after])
            del self._entries[pos - 1]

    def forget_before(self, horizon: datetime) -> None:
        """Drop inputs older than ``horizon``; the last dropped one's state becomes the base."""
        if not self._entries or self._entries[0].key[0] >= horizon:
            return
        self._forget(bisect.bisect_left(self._entries, horizon, key=lambda entry: entry.key[0]))

    def _forget(self, cut: int) -> None:
        """Drop the ``cut`` oldest inputs; the last dropped one's state becomes the base."""
        base_ts = self._entries[cut - 1].key[0]
        self._base = self._entries[cut - 1].after
        self._mark(self._entries[:cut], [])
        del self._entries[:cut]
        # A replay from the base only produces intents at or after its time.
        self._emitted = {k: ts for k, ts in self._emitted.items() if ts >= base_ts}

    def _fresh(
        self, produced: list[tuple[Intent, bool]], final: M, *, late_timers: bool,
        tail_from: Key | None = None,
    ) -> list[Intent]:
        if not produced:
            return []
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
                intent.episode_key in overdue
                or (tail_from is not None and self._fires_after(intent.episode_key, tail_from))
                or not final.is_open(intent.episode_key)
            ):
                intent = dataclasses.replace(intent, late=True)
            fresh.append(intent)
        return fresh


def _due(state: Machine, until: datetime) -> bool:
    deadline = state.next_deadline()
    return deadline is not None and deadline <= until


def _fire(state: Machine, ctx: SiteContext, until: datetime) -> list[Intent]:
    deadline = state.next_deadline()
    if deadline is None or deadline > until:
        return []
    intents: list[Intent] = []
    while (deadline := state.next_deadline()) is not None and deadline <= until:
        intents += state.fire_next(ctx)
    return intents
