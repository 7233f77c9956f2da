"""Per-room state and the resident rules: left flat, bed exit, common motion, building exit.

Flat (room kind ``flat``)
    Excursion (``rules.states.Excursion``), tracked day and night so that a resident who
    left in the afternoon and returns at 23:00 is seen returning, not leaving:

    - ``door.open`` from the flat's door sensor while HOME: LEAVE. If the rule
      ``left_flat`` may alert (night, flat monitored, rule enabled) a Trigger
      ``left_flat`` at the open time, and an escalation timer at open + N minutes
      (default 15).
    - ``door.closed`` while LEAVING: OUT.
    - Back: the next ``door.open`` while OUT (RETURN_BY_DOOR), or in-flat activity
      (``bed.enter``, ``bed.exit``, ``motion``, ``presence.on`` from any device of the
      flat) once the door has closed (SEEN_INSIDE). Being back cancels the escalation;
      it does not clear the alert (staff resolve it with an outcome).
    - Not back by open + N: Escalate at that instant. Back at exactly open + N is too
      late (a timer wins a tie with an event).
    - Input meaning no transition (``door.open`` while the door is already open, activity
      while LEAVING, ``door.closed`` while HOME) is ignored.

    Bed (``rules.states.BedState``): ``bed.exit`` from the bed sensor gets up; if
    ``bed_exit_not_back`` may alert at the exit time, a timer at exit + N (default 10).
    Only ``bed.enter`` cancels it: a bed exit followed by leaving the flat still counts as
    "not back in bed". When the timer fires: Trigger ``bed_exit_not_back`` at exit + N
    (even if that instant is after the night has ended; the exit was at night).

Common room (kind ``common``)
    Motion episode (``rules.states.MotionEpisode``): ``motion``/``presence.on`` at night,
    rule enabled, while QUIET: START, Trigger ``common_motion``. While ACTIVE every further
    night ``motion``/``presence.on`` is a merge: a Trigger with the same episode key and its
    own event key. The episode lasts while activity continues: it EXPIREs (no intent) when
    no activity came for N minutes (default 10) and no presence sensor of the room is on;
    a gap shorter than N merges, a gap of N or more starts a new episode. Activity in the
    day keeps an episode alive but is not announced.

Building exit (kind ``exit``)
    Each door (``door.open``/``door.closed`` from an ``exit`` or ``door`` device) is
    OPEN/CLOSED. ``door.open`` at night, rule enabled: Trigger ``building_exit`` (severity
    high by default). A repeated ``door.open`` while that door is still open in the same
    night merges into its episode.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Self

from core.events import DeviceKind, Event, EventKind, RoomKind
from core.intents import Escalate, Intent, Trigger
from rules.machine import Input, Machine, SiteContext, event_key
from rules.settings import RuleName
from rules.states import (
    BED,
    DOOR,
    EXCURSION,
    MOTION,
    BedMove,
    BedState,
    DoorMove,
    DoorState,
    Excursion,
    ExcursionMove,
    MotionEpisode,
    MotionMove,
    step,
)

__all__ = ["CommonMachine", "ExitMachine", "FlatMachine", "machine_for_room"]

_IN_FLAT_ACTIVITY = frozenset(
    {EventKind.BED_ENTER, EventKind.BED_EXIT, EventKind.MOTION, EventKind.PRESENCE_ON}
)
_COMMON_ACTIVITY = frozenset({EventKind.MOTION, EventKind.PRESENCE_ON})


def _minutes(value: int | None, rule: RuleName) -> timedelta:
    if value is None:  # every timed rule has a default; a None here is a broken rule book
        raise ValueError(f"rule {rule} needs a number of minutes")
    return timedelta(minutes=value)


@dataclass(slots=True)
class FlatMachine:
    room: str
    excursion: Excursion = Excursion.HOME
    left_flat_episode: str | None = None  # the alert raised for the current excursion
    escalate_at: datetime | None = None
    bed: BedState = BedState.IN_BED
    bed_exit: Event | None = None  # the exit whose "not back" timer is armed
    bed_deadline: datetime | None = None

    def clone(self) -> Self:
        return copy.copy(self)

    def apply(self, item: Input, ctx: SiteContext) -> list[Intent]:
        if not isinstance(item, Event):
            return []
        kind = ctx.device(item.device).kind
        intents: list[Intent] = []
        if kind is DeviceKind.DOOR and item.kind is EventKind.DOOR_OPEN:
            if self.excursion is Excursion.HOME:
                intents += self._leave(item, ctx)
            elif self.excursion is Excursion.OUT:
                self._back(ExcursionMove.RETURN_BY_DOOR)
        elif kind is DeviceKind.DOOR and item.kind is EventKind.DOOR_CLOSED:
            if self.excursion in (Excursion.LEAVING, Excursion.RETURNING):
                self.excursion = step(EXCURSION, self.excursion, ExcursionMove.DOOR_CLOSED)
        elif item.kind in _IN_FLAT_ACTIVITY and self.excursion in (
            Excursion.OUT,
            Excursion.RETURNING,
        ):
            self._back(ExcursionMove.SEEN_INSIDE)

        if kind is DeviceKind.BED:
            if item.kind is EventKind.BED_EXIT and self.bed is BedState.IN_BED:
                self.bed = step(BED, self.bed, BedMove.GET_UP)
                setting = ctx.resident_rule(RuleName.BED_EXIT_NOT_BACK, self.room, item.ts)
                if setting is not None:
                    self.bed_exit = item
                    self.bed_deadline = item.ts + _minutes(
                        setting.minutes, RuleName.BED_EXIT_NOT_BACK
                    )
            elif item.kind is EventKind.BED_ENTER and self.bed is BedState.OUT_OF_BED:
                self.bed = step(BED, self.bed, BedMove.LIE_DOWN)
                self.bed_exit = None
                self.bed_deadline = None
        return intents

    def _leave(self, event: Event, ctx: SiteContext) -> list[Intent]:
        self.excursion = step(EXCURSION, self.excursion, ExcursionMove.LEAVE)
        setting = ctx.resident_rule(RuleName.LEFT_FLAT, self.room, event.ts)
        if setting is None:
            return []
        episode = ctx.episode_key(self.room, RuleName.LEFT_FLAT, event.ts)
        self.left_flat_episode = episode
        self.escalate_at = event.ts + _minutes(setting.minutes, RuleName.LEFT_FLAT)
        return [
            Trigger(
                site=ctx.site,
                room=self.room,
                device=event.device,
                rule=RuleName.LEFT_FLAT,
                severity=setting.severity,
                ts=event.ts,
                episode_key=episode,
                event_key=event_key(event),
                late=False,
                detail="flat door opened at night",
            )
        ]

    def _back(self, move: ExcursionMove) -> None:
        self.excursion = step(EXCURSION, self.excursion, move)
        self.left_flat_episode = None
        self.escalate_at = None

    def next_deadline(self) -> datetime | None:
        deadlines = [d for d in (self.escalate_at, self.bed_deadline) if d is not None]
        return min(deadlines, default=None)

    def fire_next(self, ctx: SiteContext) -> list[Intent]:
        if self.escalate_at is not None and self.escalate_at == self.next_deadline():
            assert self.left_flat_episode is not None
            intent: Intent = Escalate(
                site=ctx.site,
                room=self.room,
                rule=RuleName.LEFT_FLAT,
                episode_key=self.left_flat_episode,
                ts=self.escalate_at,
                late=False,
            )
            self.escalate_at = None
            return [intent]
        if self.bed_deadline is not None:
            assert self.bed_exit is not None
            setting = ctx.setting(RuleName.BED_EXIT_NOT_BACK, self.room)
            exit_event, deadline = self.bed_exit, self.bed_deadline
            self.bed_exit = None
            self.bed_deadline = None
            minutes = round((deadline - exit_event.ts).total_seconds() / 60)
            return [
                Trigger(
                    site=ctx.site,
                    room=self.room,
                    device=exit_event.device,
                    rule=RuleName.BED_EXIT_NOT_BACK,
                    severity=setting.severity,
                    ts=deadline,
                    episode_key=ctx.episode_key(
                        self.room, RuleName.BED_EXIT_NOT_BACK, exit_event.ts
                    ),
                    event_key=event_key(exit_event),
                    late=False,
                    detail=f"out of bed and not back within {minutes} min",
                )
            ]
        return []

    def is_open(self, episode_key: str) -> bool:
        return episode_key == self.left_flat_episode and self.excursion in (
            Excursion.LEAVING,
            Excursion.OUT,
        )

    def redundant(self, before: Input, item: Input, after: Input,
                  ctx: SiteContext) -> bool:
        return False  # room timelines get no heartbeats; every input counts


@dataclass(slots=True)
class CommonMachine:
    room: str
    episode: MotionEpisode = MotionEpisode.QUIET
    episode_key: str | None = None
    present: frozenset[str] = frozenset()  # presence sensors currently reporting "on"
    expires_at: datetime | None = None

    def clone(self) -> Self:
        return copy.copy(self)

    def apply(self, item: Input, ctx: SiteContext) -> list[Intent]:
        if not isinstance(item, Event):
            return []
        if item.kind is EventKind.PRESENCE_OFF:
            self.present = self.present - {item.device}
            self._keep_alive(item.ts, ctx)
            return []
        if item.kind not in _COMMON_ACTIVITY:
            return []
        if item.kind is EventKind.PRESENCE_ON:
            self.present = self.present | {item.device}
        setting = ctx.resident_rule(RuleName.COMMON_MOTION, self.room, item.ts)
        if self.episode is MotionEpisode.QUIET:
            if setting is None:
                return []
            self.episode = step(MOTION, self.episode, MotionMove.START)
            self.episode_key = ctx.episode_key(self.room, RuleName.COMMON_MOTION, item.ts)
            detail = "motion in a common room at night"
        else:
            detail = "motion continues in a common room"
        self._keep_alive(item.ts, ctx)
        if setting is None:
            return []
        assert self.episode_key is not None
        return [
            Trigger(
                site=ctx.site,
                room=self.room,
                device=item.device,
                rule=RuleName.COMMON_MOTION,
                severity=setting.severity,
                ts=item.ts,
                episode_key=self.episode_key,
                event_key=event_key(item),
                late=False,
                detail=detail,
            )
        ]

    def _keep_alive(self, ts: datetime, ctx: SiteContext) -> None:
        if self.episode is not MotionEpisode.ACTIVE:
            return
        if self.present:
            self.expires_at = None
        else:
            window = ctx.setting(RuleName.COMMON_MOTION, self.room).minutes
            self.expires_at = ts + _minutes(window, RuleName.COMMON_MOTION)

    def next_deadline(self) -> datetime | None:
        return self.expires_at

    def fire_next(self, ctx: SiteContext) -> list[Intent]:
        self.episode = step(MOTION, self.episode, MotionMove.EXPIRE)
        self.episode_key = None
        self.expires_at = None
        return []

    def is_open(self, episode_key: str) -> bool:
        return self.episode is MotionEpisode.ACTIVE and episode_key == self.episode_key

    def redundant(self, before: Input, item: Input, after: Input,
                  ctx: SiteContext) -> bool:
        return False  # room timelines get no heartbeats; every input counts


@dataclass(slots=True)
class ExitMachine:
    room: str
    doors: dict[str, DoorState] = field(default_factory=dict)
    # door device -> (episode key, night it belongs to) while that door is open
    episodes: dict[str, tuple[str, date | None]] = field(default_factory=dict)

    def clone(self) -> Self:
        return type(self)(self.room, dict(self.doors), dict(self.episodes))

    def apply(self, item: Input, ctx: SiteContext) -> list[Intent]:
        if not isinstance(item, Event):
            return []
        if ctx.device(item.device).kind not in (DeviceKind.EXIT, DeviceKind.DOOR):
            return []
        door = self.doors.get(item.device, DoorState.CLOSED)
        if item.kind is EventKind.DOOR_CLOSED:
            if door is DoorState.OPEN:
                self.doors[item.device] = step(DOOR, door, DoorMove.CLOSE)
            self.episodes.pop(item.device, None)
            return []
        if item.kind is not EventKind.DOOR_OPEN:
            return []
        if door is DoorState.CLOSED:
            self.doors[item.device] = step(DOOR, door, DoorMove.OPEN)
        setting = ctx.resident_rule(RuleName.BUILDING_EXIT, self.room, item.ts)
        if setting is None:
            return []
        night = ctx.layout.night.night_of(item.ts)
        current = self.episodes.get(item.device)
        if current is None or current[1] != night:
            current = (ctx.episode_key(self.room, RuleName.BUILDING_EXIT, item.ts), night)
            self.episodes[item.device] = current
        return [
            Trigger(
                site=ctx.site,
                room=self.room,
                device=item.device,
                rule=RuleName.BUILDING_EXIT,
                severity=setting.severity,
                ts=item.ts,
                episode_key=current[0],
                event_key=event_key(item),
                late=False,
                detail="building exit opened at night",
            )
        ]

    def next_deadline(self) -> datetime | None:
        return None

    def fire_next(self, ctx: SiteContext) -> list[Intent]:
        return []

    def is_open(self, episode_key: str) -> bool:
        return any(key == episode_key for key, _ in self.episodes.values())

    def redundant(self, before: Input, item: Input, after: Input,
                  ctx: SiteContext) -> bool:
        return False  # room timelines get no heartbeats; every input counts


def machine_for_room(kind: RoomKind, room: str) -> Machine:
    if kind is RoomKind.FLAT:
        return FlatMachine(room)
    if kind is RoomKind.COMMON:
        return CommonMachine(room)
    return ExitMachine(room)
