"""What every per-room and per-device state machine offers, and the site facts it reads.

A machine holds the state of one room or one device. It is fed inputs in event-time
order by its ``rules.timeline.Timeline``, which also fires its timers: before an input at
``ts``, every timer with deadline <= ts fires (a timer and an event at the same instant:
the timer wins). Machines never read the wall clock and never see inputs out of order.

Equality. A timeline stops re-evaluating a late input's successors as soon as the state
after one of them ``==`` the snapshot it kept (``rules.timeline``), so two states that
compare equal must behave the same for every future input: dataclass equality over the
whole state does that (do not hide a field that matters with ``compare=False``). A machine
without value equality (identity, ``object.__eq__``) is always correct, only slower: its
late inputs are replayed to the end of the timeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Protocol, Self

from core.events import Event, RoomKind, StatusChange
from core.intents import Intent
from rules.layout import DeviceInfo, SiteLayout
from rules.routines import FlatRoutine
from rules.settings import RuleBook, RuleName, RuleSetting
from rules.staff import StaffRound

__all__ = ["Input", "Machine", "SiteContext", "input_key", "iso"]

Input = Event | StatusChange


def iso(ts: datetime) -> str:
    """The canonical UTC spelling of an instant used inside keys."""
    return ts.astimezone(UTC).isoformat()


def input_key(item: Input) -> tuple[datetime, str, str]:
    """Canonical event-time order, independent of arrival order: (ts, device, id)."""
    if isinstance(item, Event):
        return (item.ts, item.device, item.id)
    return (item.ts, item.device, f"status:{item.presence}")


def event_key(event: Event) -> str:
    return f"{event.site}/{event.device}/{event.id}"


@dataclass(frozen=True, slots=True)
class SiteContext:
    """A site's layout, rule book and flats' learned routines (``rules.routines``), with
    the questions the machines ask of them."""

    layout: SiteLayout
    rulebook: RuleBook
    routines: Mapping[str, FlatRoutine] = field(default_factory=lambda: MappingProxyType({}))
    staff: tuple[StaffRound, ...] = ()  # staff going round (``rules.staff``)
    # Each device's allowed silence once worked out from the fields above
    # (``rules.devices.allowed_silence``): every heartbeat asks for it, twice. Not an init
    # field, so a context made with ``replace`` (new layout, book, routines, staff) starts
    # empty.
    silences: dict[str, timedelta] = field(default_factory=dict, init=False, repr=False,
                                           compare=False)

    @property
    def site(self) -> str:
        return self.layout.site

    def device(self, device: str) -> DeviceInfo:
        return self.layout.devices[device]

    def setting(self, rule: RuleName, room: str) -> RuleSetting:
        return self.rulebook.setting(rule, room)

    def staff_in(self, room: str, ts: datetime, seen: Sequence[StaffRound] = ()) -> bool:
        """Whether staff are in ``room`` at ``ts`` by their word on the board, or by the
        rounds a staff device gave (``seen``): a round of the common rooms for a common
        room, a round into that flat for a flat (``rules.staff``)."""
        if not self.staff and not seen:
            return False
        target = None if self.layout.rooms[room].kind is RoomKind.COMMON else room
        return any(r.covers(target, ts) for r in (*self.staff, *seen))

    def resident_rule(self, rule: RuleName, room: str, ts: datetime) -> RuleSetting | None:
        """The setting if ``rule`` may raise a resident alert in ``room`` at ``ts``, else None.

        That needs all three: the rule enabled for the room, ``ts`` inside the night
        window, and the room monitored at ``ts`` (a basis for a flat).
        """
        setting = self.rulebook.setting(rule, room)
        if not setting.enabled or not self.layout.night.contains(ts):
            return None
        if not self.layout.is_monitored(room, ts):
            return None
        return setting

    def episode_key(
        self, room: str, rule: RuleName, start: datetime, device: str | None = None
    ) -> str:
        if device is None:
            return f"{self.site}/{room}/{rule}/{iso(start)}"
        return f"{self.site}/{room}/{rule}/{device}/{iso(start)}"


class Machine(Protocol):
    def clone(self) -> Self:
        """An independent copy (the timeline snapshots state after every input)."""
        ...

    def apply(self, item: Input, ctx: SiteContext) -> list[Intent]:
        """Take one input; its timers up to ``item.ts`` have already fired."""
        ...

    def next_deadline(self) -> datetime | None: ...

    def fire_next(self, ctx: SiteContext) -> list[Intent]:
        """Fire the timer at ``next_deadline()``; intents carry ts = that deadline."""
        ...

    def is_open(self, episode_key: str) -> bool:
        """Whether the episode is still going on, as far as the known facts say."""
        ...

    def redundant(self, before: Input, item: Input, after: Input, ctx: SiteContext) -> bool:
        """Whether ``item``, kept between its neighbours ``before`` and ``after``, may be
        forgotten because no replay, whatever input arrives late, would differ without it.
        (It keeps a timeline's memory bounded under a stream of heartbeats.)"""
        ...
