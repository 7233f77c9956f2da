"""The rules engine: stored events in, alert intents out, evaluated in event time.

Pure: no database, no MQTT, no wall clock. Its output is a deterministic function of the
layouts, rule books, the inputs (``process``/``process_status``) and the ``advance``
calls, so a runtime can rebuild it after a restart by replaying stored events into a
fresh engine and re-applying the intents (the store ignores those already applied).

Clock. Each site has a watermark: the latest instant the engine has reached, i.e. the
largest input ts or ``advance`` time so far. ``process`` of an input newer than the
watermark first moves the clock to its ts, firing every timer of the site with deadline
<= ts (a timer wins a tie with an event), then evaluates the input. ``advance(site, now)``
fires every timer with deadline <= now, in deadline order, with intent ts = the deadline.
A replay that never calls ``advance`` still fires every timer in between events; call
``advance`` to fire those after the last event.

The engine trusts the ts it is given. ``rules.runtime`` gives a live event at
``min(ts, arrival)`` (events stamped beyond the gateway's future skew never arrive), so a
device's fast clock cannot move a site's watermark past wall time.

Late inputs. An input older than the watermark is evaluated at its own time: the site's
room inputs (one timeline, ``rules.rooms.SiteMachine``) and the device's inputs are kept
in ts order (``rules.timeline``) and re-evaluated from the input's place on, so the
state afterwards is what an in-order replay would give.
The re-evaluation stops where the state is again what it was (a late motion inside
an ongoing episode costs a step or two), so a burst of interleaved late inputs costs about
one step per input, not one replay of the night each. What that re-evaluation
newly raises is emitted, with ``late=True`` when

- it is a timer (escalation, bed exit not back, sensor silent) whose deadline is already
  at or before the watermark: it fires at once with ts = its deadline; or
- it is a Trigger whose situation later known facts have already ended (the resident
  came back, the door closed, the motion stopped, the device came back), or whose own
  timer is already overdue (a flat door opened at 02:00 reported at 02:40: the Trigger
  and its 02:15 escalation are both late).

A late Trigger of a situation that is still going on is not late: it is a live alert that
was merely delivered late. Nothing is ever withdrawn: an intent made stale by a late
input stays. A live runtime should therefore ``advance`` to ``now`` minus a small grace
(the usual delivery delay) so that slightly delayed events are not late at all.

Inputs are ordered by (ts, device, id): events with the same ts are evaluated in the same
order however they arrived. An input seen twice (same device and id) is evaluated once.

The rules themselves: ``rules.rooms`` (situations: outings with their corridor motion and
building exits, arrivals, bed exit, unexplained common motion; calls vs quiet) and
``rules.devices`` (sensor offline, low battery).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from core.events import DeviceKind, Event, EventKind, StatusChange
from core.intents import Intent
from core.night_window import require_aware
from rules.devices import DeviceMachine, allowed_silence
from rules.errors import LayoutError, UnknownSite
from rules.layout import SiteLayout
from rules.machine import Input, Machine, SiteContext
from rules.rooms import SiteMachine
from rules.routines import FlatRoutine
from rules.settings import RuleBook
from rules.staff import StaffRound
from rules.timeline import DEFAULT_MAX_INPUTS, Timeline

__all__ = ["DEFAULT_HISTORY", "RulesEngine"]

log = logging.getLogger(__name__)

DEFAULT_HISTORY = timedelta(hours=24)
_FORGET_EVERY = timedelta(minutes=5)
_INSTANT = timedelta(microseconds=1)


@dataclass(slots=True)
class _Site:
    ctx: SiteContext
    max_inputs: int = DEFAULT_MAX_INPUTS
    watermark: datetime | None = None
    # Earliest pending deadline, or earlier (a cancelled timer leaves it early): a cheap
    # "nothing can be due yet" test so each event does not visit every timeline.
    due: datetime | None = None
    forgotten_to: datetime | None = None
    # One timeline for every room of the site: a situation spans rooms (an outing's
    # corridor motion and building exit are attributed to it), so they share one state.
    residents: Timeline[Machine] = field(init=False)
    devices: dict[str, Timeline[DeviceMachine]] = field(default_factory=dict)
    # Devices to start as heard until then instead of unheard (``resume_devices``).
    heard: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.residents = Timeline(SiteMachine(), max_inputs=self.max_inputs)

    def sync_layout(self) -> None:
        """Match the timelines to the layout: keep what still fits, start what is new.
        The site machine keeps its state; it reads room kinds from the layout as it goes."""
        layout = self.ctx.layout
        if self.watermark is not None:  # device timelines start with the site's clock
            self.devices = {
                device: self.devices.get(device)
                or Timeline(self._start(device), max_inputs=self.max_inputs)
                for device in layout.devices
            }
            self.heard = {}
        self.due = self.earliest()

    def _start(self, device: str) -> DeviceMachine:
        heard = self.heard.get(device)
        if heard is not None:
            return DeviceMachine.heard(device, heard, self.ctx)
        return DeviceMachine.unheard(device, self._clock(), self.ctx)

    def timelines(self) -> list[Timeline[Machine] | Timeline[DeviceMachine]]:
        rooms: list[Timeline[Machine] | Timeline[DeviceMachine]] = [self.residents]
        return rooms + list(self.devices.values())

    def earliest(self) -> datetime | None:
        deadlines = [t.next_deadline() for t in self.timelines()]
        return min((d for d in deadlines if d is not None), default=None)

    def _clock(self) -> datetime:
        assert self.watermark is not None
        return self.watermark

    def start_clock(self, ts: datetime) -> None:
        if self.watermark is None:
            self.watermark = ts
            self.sync_layout()


class RulesEngine:
    """Per-site, per-room and per-device state with timers, fed in event time.

    ``layouts`` and ``rulebooks`` are keyed by site id; a site without a rule book uses
    the defaults. ``history`` is how far back a late input can still be placed in order
    (match the runtime's replay look-back), ``max_inputs`` how many inputs of one room or
    device are kept for that at most (it bounds the cost of one late input).
    """

    def __init__(
        self,
        layouts: dict[str, SiteLayout],
        rulebooks: dict[str, RuleBook] | None = None,
        *,
        history: timedelta = DEFAULT_HISTORY,
        max_inputs: int = DEFAULT_MAX_INPUTS,
    ) -> None:
        self._history = history
        self._max_inputs = max_inputs
        self._sites: dict[str, _Site] = {}
        for site, layout in layouts.items():
            if layout.site != site:
                raise LayoutError(f"layout for {layout.site!r} was given under key {site!r}")
            self.update_layout(layout, (rulebooks or {}).get(site, RuleBook()))

    def update_layout(self, layout: SiteLayout, rulebook: RuleBook | None = None) -> None:
        """Add a site or replace its layout and rules; rooms and devices that still exist
        (with the same room kind) keep their state, new devices start unheard. A device
        moved to another room ends the site's re-ordering history: its kept inputs would be
        evaluated again in the new room if a late input were placed among them, so an input
        older than the move is evaluated against the state at the move."""
        state = self._sites.get(layout.site)
        if state is not None and state.watermark is not None and any(
                (before := state.ctx.layout.devices.get(device)) is not None
                and before.room != info.room for device, info in layout.devices.items()):
            state.residents.forget_before(state.watermark + _INSTANT)
        routines = state.ctx.routines if state is not None else MappingProxyType({})
        staff = state.ctx.staff if state is not None else ()
        ctx = SiteContext(layout, rulebook or RuleBook(), routines, staff)
        if state is None:
            state = _Site(ctx, self._max_inputs)
            self._sites[layout.site] = state
        else:
            state.ctx = ctx
        state.sync_layout()

    def resume_devices(self, site: str, heard: Mapping[str, datetime]) -> None:
        """Before ``site``'s first input: start these devices as heard until the given
        time (``DeviceMachine.heard``) instead of unheard. For a replay that leaves out a
        device's plain heartbeats because they could not have fired its silence timer
        nor changed its battery state (``ingest.rules_store``); its other inputs are
        still given. The caller vouches for that."""
        state = self._site(site)
        if state.watermark is not None:
            raise ValueError(f"site {site!r} has already started its clock; devices can be "
                             "resumed only before its first input")
        state.heard = dict(heard)

    def silence(self, site: str, device: str) -> timedelta:
        """How long ``device`` may be silent before the rules call it offline."""
        return allowed_silence(self._site(site).ctx, device)

    def update_routines(self, site: str, routines: Mapping[str, FlatRoutine]) -> None:
        """Give ``site``'s flats their learned routines (``rules.routines``); they apply to
        every input evaluated from now on, like a rule change."""
        state = self._sites.get(site)
        if state is None:
            raise UnknownSite(site)
        state.ctx = replace(state.ctx, routines=MappingProxyType(dict(routines)))

    def update_staff(self, site: str, rounds: Sequence[StaffRound]) -> None:
        """Give ``site`` the rounds its staff announced (``rules.staff``); they apply to
        every input evaluated from now on."""
        state = self._sites.get(site)
        if state is None:
            raise UnknownSite(site)
        state.ctx = replace(state.ctx, staff=tuple(rounds))

    def layout(self, site: str) -> SiteLayout:
        state = self._sites.get(site)
        if state is None:
            raise UnknownSite(site)
        return state.ctx.layout

    def routines(self, site: str) -> Mapping[str, FlatRoutine]:
        state = self._sites.get(site)
        if state is None:
            raise UnknownSite(site)
        return state.ctx.routines

    def process(self, event: Event) -> list[Intent]:
        """Evaluate one stored event; returns the intents it (and the time it reached) causes."""
        require_aware(event.ts, f"event {event.id!r} ts")
        return self._take(event)

    def process_status(self, change: StatusChange) -> list[Intent]:
        """Evaluate a device's ``online``/``offline`` report."""
        require_aware(change.ts, "status change ts")
        return self._take(change)

    def advance(self, site: str, now: datetime) -> list[Intent]:
        """Move the site's clock to ``now``, firing every timer with deadline <= now."""
        require_aware(now, "advance time")
        state = self._site(site)
        state.start_clock(now)
        return self._advance(state, now)

    def next_deadline(self, site: str) -> datetime | None:
        """The earliest pending timer of the site (call ``advance`` then), or None."""
        return self._site(site).earliest()

    def due(self, site: str) -> datetime | None:
        """A cheap lower bound of ``next_deadline`` (no timeline visited): nothing fires
        before it; ``advance`` to it fires what is due or moves it on."""
        return self._site(site).due

    def inputs_kept(self, site: str) -> int:
        """How many inputs the site's timelines hold for re-ordering late ones (memory)."""
        return sum(len(timeline) for timeline in self._site(site).timelines())

    def steps(self, site: str) -> int:
        """How many inputs the site's machines have applied, replays of late ones included
        (the engine's work: in order, one step per input and timeline)."""
        return sum(timeline.steps for timeline in self._site(site).timelines())

    def watermark(self, site: str) -> datetime | None:
        """The latest instant the site's clock has reached (None before any input)."""
        return self._site(site).watermark

    # -- inside --------------------------------------------------------------------

    def _site(self, site: str) -> _Site:
        try:
            return self._sites[site]
        except KeyError:
            raise UnknownSite(
                f"the rules engine has no layout for site {site!r}; pass it to RulesEngine "
                "or to update_layout() before its events"
            ) from None

    def _take(self, item: Input) -> list[Intent]:
        state = self._site(item.site)
        info = state.ctx.layout.devices.get(item.device)
        if info is None:
            log.warning(
                "rules: %s from device %r ignored: site %r has no such device in its layout",
                type(item).__name__, item.device, item.site,
            )
            return []
        state.start_clock(item.ts)
        intents = self._advance(state, item.ts)
        assert state.watermark is not None
        touched: list[Timeline[Machine] | Timeline[DeviceMachine]] = [state.devices[item.device]]
        if isinstance(item, Event) and (
            item.kind is not EventKind.HEARTBEAT
            or (item.occupied is not None and info.kind is DeviceKind.BED)
        ):
            # Room machines ignore heartbeats (signs of life, for the device's machine):
            # keeping them out keeps a room's timeline to what happened in the room. A bed's
            # heartbeat that reports its state is evidence of what happened there.
            touched.insert(0, state.residents)
        for timeline in touched:
            intents += timeline.insert(item, state.ctx, state.watermark)
            deadline = timeline.next_deadline()
            if deadline is not None and (state.due is None or deadline < state.due):
                state.due = deadline
        return intents

    def _advance(self, state: _Site, now: datetime) -> list[Intent]:
        assert state.watermark is not None
        if now > state.watermark:
            state.watermark = now
        intents: list[Intent] = []
        if state.due is not None and state.due <= now:
            # Units are independent; a stable sort by deadline keeps rooms-then-devices
            # order for timers due at the same instant.
            intents = sorted(
                (i for t in state.timelines() for i in t.advance(state.ctx, now)),
                key=lambda intent: intent.ts,
            )
            state.due = state.earliest()
        horizon = state.watermark - self._history
        if state.forgotten_to is None or horizon - state.forgotten_to >= _FORGET_EVERY:
            for timeline in state.timelines():
                timeline.forget_before(horizon)
            state.forgotten_to = horizon
        return intents
