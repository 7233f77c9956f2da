"""The resident rules as situations, not triggers: one site-level machine for all its rooms.

A night nurse wants one thing from the board: "go now" when someone needs her, and
nothing when nobody does. So the rules keep what happens at a site as *situations* — a
resident's outing, a bed left empty too long, someone up in a common room that no known
outing explains — and each situation is one alert that grows (its triggers are its
timeline). A situation starts *quiet* (shown quietly, never sounded) and becomes a *call*
(``Trigger.call`` / ``Escalate``) only when its allowed time passes or a hard safety limit
says so. One machine per site (``SiteMachine``), because attributing a corridor's motion
or a building exit to an outing needs to see every room at once.

Outing (flat door, room kind ``flat``; ``rules.states.Excursion``)
    - ``door.open`` while HOME at night (flat monitored, ``left_flat`` enabled): the outing
      starts: Trigger ``left_flat`` (quiet) and a timer at open + N minutes (default 15).
      A bed timer running is cancelled: out of the flat, the outing's time governs.
    - Motion in a common room and building-exit openings while an outing is in progress
      merge into it (the latest started one): Trigger with the outing's episode key. A
      building exit raises its severity to the ``building_exit`` severity (high); if the
      site/room setting ``building_exit`` minutes is 0 ("building exits always call", e.g.
      a dementia or autism site) the outing becomes a call at once; a positive value
      shortens the allowed time to exit + that many minutes.
    - Back (``door.open`` while OUT, or in-flat activity once the door closed): if the
      outing is still quiet, Clear ("returned by itself"); a call stays for staff. If the
      resident had left the bed, the bed timer is armed again from the return.
    - Not back at the deadline: Escalate (a call).

Arrival
    A building-exit opening at night that no outing in progress explains is someone coming
    in (or going out unseen): its own ``building_exit`` situation, quiet unless building
    exits always call. An outing explains an opening when it can be at the exit: it left
    its flat within ``ARRIVAL_WINDOW`` (walking out), or it left the building and this is
    the first opening since (coming back in); see ``_outing_at_exit``. One an outing
    explains belongs to that outing and to nothing else (one opening explains one thing:
    a safety-first choice, see ``_exit``), unless a walk up a flat's corridor after it
    shows someone came in at the same time (``_claim_entry``). If a flat door
    opens (from HOME) within ``ARRIVAL_WINDOW`` after an unexplained opening, that is the
    resident coming home: the flat goes HOME through RETURNING (no outing), the flat door
    merges into the entry's situation, which clears itself. Without that, a door-only flat
    would read every late homecoming as leaving, and every later outing backwards.
    Either reading may be wrong, so both are kept for ``ARRIVAL_WINDOW``: a flat door taken
    as a homecoming or as a return from an outing is read again as a departure when a
    building exit opens soon after it that no outing explains (a needless call at worst,
    never a blind spot); the opening then stays a possible arrival as well, where building
    exits do not always call. If a homecoming then claims that opening, the opening was
    its arrival and the re-read loses its only evidence: the quiet outing ends as returned
    (``_undo_reread``). A return from an outing seen out of the building and back in is
    not kept for re-reading: its whole way was seen. Two outings out of the building at
    once: the opening back in goes to the one that left last; if the other comes home by
    its flat door first, that opening was its own (``_take_back_in``).

Corridor evidence (``RoomInfo.corridor``, the common room a flat's door opens onto)
    Someone coming home walks through the flat's corridor just before its door opens. When
    the corridor saw no motion for ``HOMECOMING_WALK`` before a door opening, nobody came:
    the opening is a departure. It is then never taken as a homecoming (no entry claimed),
    and a flat believed out is read as having been home (its outing ends as returned, a
    new one starts). Evidence only ever moves the belief towards "out", the reading that
    cannot hide a resident (a lost corridor message costs a needless call at worst).

Bed (``rules.states.BedState``)
    ``bed.exit`` arms a timer at exit + N (default 10) if none is armed, whatever the
    bed was believed to be: a second ``bed.exit`` without a ``bed.enter`` between (a lost
    message, or a resident lying on top of the sensor) re-arms it, it never blinds the
    rule. ``bed.enter`` cancels it. When it fires: Trigger ``bed_exit_not_back``, a call.

Common room (kind ``common``)
    Night ``motion``/``presence.on`` that no outing or arrival in progress explains (and
    no staff going round, ``rules.staff``) is its own quiet
    ``common_motion`` situation; further motion merges; it ends by itself (Clear) when no
    activity came for N minutes (default 10) and no presence sensor is on. It is not a
    call by default: a shared room is not a person in need by itself, no flat reports its
    resident missing, and the flats' own rules (outing, bed) carry the calls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Self

from core.events import DeviceKind, Event, EventKind, RoomKind
from core.intents import Clear, Escalate, Intent, Trigger
from rules.machine import Input, SiteContext, event_key
from rules.settings import RuleName, Severity
from rules.staff import STAFF_DEVICE_PRESENCE, StaffRound
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

__all__ = ["ARRIVAL_WINDOW", "SiteMachine"]

# How long after a building exit opened a flat door opening is taken as that person
# arriving home: a walk from the entrance to a flat, not a second person's outing.
ARRIVAL_WINDOW = timedelta(minutes=3)
# A flat door opening again this soon after its resident left is not a return: a door
# contact repeating itself, or a bounce (``_flat``).
DOOR_BOUNCE = timedelta(seconds=60)
# Someone coming home walks through the flat's corridor just before its door opens; with
# no motion there for this long before the door opened, nobody came: it is a departure.
HOMECOMING_WALK = timedelta(seconds=90)

# How many heartbeats a bed's last "in bed" report may lie behind an "empty" one for the
# empty one to tell a lost bed.exit (``RoomsMachine._bed_report_empty``).
REPORTS_MISSED = 4
_IN_FLAT_ACTIVITY = frozenset(
    {EventKind.BED_ENTER, EventKind.BED_EXIT, EventKind.MOTION, EventKind.PRESENCE_ON}
)
_COMMON_ACTIVITY = frozenset({EventKind.MOTION, EventKind.PRESENCE_ON})
_AWAY = (Excursion.LEAVING, Excursion.OUT)


def _minutes(value: int | None, rule: RuleName) -> timedelta:
    if value is None:  # every timed rule has a default; a None here is a broken rule book
        raise ValueError(f"rule {rule} needs a number of minutes")
    return timedelta(minutes=value)


@dataclass(frozen=True, slots=True)
class _Outing:
    key: str
    room: str
    start: datetime
    escalate_at: datetime | None
    called: bool = False
    left_building: bool = False
    back_inside: bool = False  # an exit opened for it again after it left the building


@dataclass(frozen=True, slots=True)
class _Flat:
    excursion: Excursion = Excursion.HOME
    outing: _Outing | None = None
    bed: BedState = BedState.IN_BED
    bed_exit: Event | None = None  # the exit whose "not back" timer is armed
    bed_deadline: datetime | None = None
    bed_from: datetime | None = None  # out of bed since (before bed_exit for a lost exit)
    # When the bed last said "in bed" (a bed.enter, or a heartbeat reporting it occupied);
    # None since it last said "empty". A heartbeat reporting it empty after that is a
    # bed.exit that never arrived (``_bed_report_empty``).
    bed_seen_in: datetime | None = None
    # A "not back" timer that ran out when the day had begun (after the night's end or the
    # flat's rising time): the quiet situation handed to the day shift, closed by itself
    # when the resident is seen up and about.
    handed_over: str | None = None


@dataclass(frozen=True, slots=True)
class _Common:
    episode: MotionEpisode = MotionEpisode.QUIET
    key: str | None = None
    present: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    last_motion: datetime | None = None  # any motion, staff's and outings' included


_QUIET_COMMON = _Common()


@dataclass(frozen=True, slots=True)
class _Entry:
    """A building-exit opening no outing explained: someone came in, or went out unseen."""

    key: str
    room: str
    ts: datetime
    called: bool
    # An opening an outing explained (``key`` empty: no situation of its own). A flat door
    # may still take it as its resident's arrival, but only on evidence of the walk in:
    # motion in that flat's corridor after the opening (``_claim_entry``).
    explained: bool = False
    # The flat door this opening made read again as a departure, and the outing that made
    # (flat, episode key): undone if a homecoming claims the opening (``_undo_reread``).
    reread: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Arrival:
    """A flat door taken as its resident coming home (it claimed an entry)."""

    room: str
    door: Event


@dataclass(slots=True)
class SiteMachine:
    """Every room of one site; values are frozen, so a clone copies three small dicts."""

    flats: dict[str, _Flat] = field(default_factory=dict)
    commons: dict[str, _Common] = field(default_factory=dict)
    exit_doors: dict[str, DoorState] = field(default_factory=dict)
    entries: tuple[_Entry, ...] = ()
    arrivals: tuple[_Arrival, ...] = ()
    # Staff seen by a staff device (a staff-room door, a tag reader), as rounds: the
    # wiring's word for what the board's "going round" button says (``rules.staff``).
    staff_seen: tuple[StaffRound, ...] = ()

    def clone(self) -> Self:
        return type(self)(dict(self.flats), dict(self.commons), dict(self.exit_doors),
                          self.entries, self.arrivals, self.staff_seen)

    # -- inputs --------------------------------------------------------------------------

    def apply(self, item: Input, ctx: SiteContext) -> list[Intent]:
        if not isinstance(item, Event):
            return []
        info = ctx.device(item.device)
        kind = ctx.layout.rooms[info.room].kind
        if info.kind is DeviceKind.STAFF:
            self._staff_seen(item, info.room, kind)
            return []
        # Forget entries nobody claimed in time (inputs come in ts order: deterministic).
        self.entries = tuple(e for e in self.entries if item.ts - e.ts < ARRIVAL_WINDOW)
        self.arrivals = tuple(a for a in self.arrivals if item.ts - a.door.ts < ARRIVAL_WINDOW)
        if kind is RoomKind.FLAT:
            return self._flat(item, info.room, info.kind, ctx)
        if kind is RoomKind.COMMON:
            return self._common(item, info.room, ctx)
        if info.kind in (DeviceKind.EXIT, DeviceKind.DOOR):
            return self._exit(item, info.room, ctx)
        return []

    # -- staff ---------------------------------------------------------------------------

    def _staff_seen(self, item: Event, room: str, kind: RoomKind) -> None:
        """A staff device spoke: staff in its flat, or (anywhere else: a staff-room door, a
        reader in a corridor) going round the common rooms, for ``STAFF_DEVICE_PRESENCE``
        from now, renewed by each of its events."""
        if item.kind is EventKind.HEARTBEAT:
            return  # a sign of life of the device, not of staff
        target = room if kind is RoomKind.FLAT else None
        self.staff_seen = (*(r for r in self.staff_seen if r.end > item.ts),
                           StaffRound(target, item.ts, item.ts + STAFF_DEVICE_PRESENCE))

    # -- flats ---------------------------------------------------------------------------

    def _flat(self, item: Event, room: str, device: DeviceKind,
              ctx: SiteContext) -> list[Intent]:
        flat = self.flats.get(room, _Flat())
        intents: list[Intent] = []
        if device is DeviceKind.DOOR and ctx.staff_in(room, item.ts, self.staff_seen):
            # Staff going into the flat open its door: the resident neither left nor came
            # home (``rules.staff``). The flat's bed still speaks for its resident.
            return intents
        if device is DeviceKind.DOOR and item.kind is EventKind.DOOR_OPEN:
            if flat.excursion in (Excursion.LEAVING, Excursion.RETURNING):
                # A door cannot open twice: its door.closed was lost. Read it as closed in
                # between, or every later opening of the flat would be ignored.
                flat = dataclasses.replace(flat, excursion=step(
                    EXCURSION, flat.excursion, ExcursionMove.DOOR_CLOSED))
            bounce = (flat.excursion is Excursion.OUT and flat.outing is not None
                      and item.ts - flat.outing.start < DOOR_BOUNCE)
            if bounce:
                # Open again within moments of leaving: a contact repeating itself (or the
                # resident turning back at once). Read as a return it would blind the rule
                # to the outing; kept as the outing, it costs a needless call at worst.
                pass
            elif flat.excursion is Excursion.OUT and self._nobody_came(room, item.ts, ctx):
                # Believed out, but nobody walked up to the door: the resident was home
                # (a homecoming was missed or misread) and is leaving now. Evidence moves the
                # belief only towards "out", the reading that can never hide a need.
                flat, intents = self._back(flat, item, room, ExcursionMove.RETURN_BY_DOOR, ctx)
                flat = dataclasses.replace(flat, excursion=step(
                    EXCURSION, flat.excursion, ExcursionMove.DOOR_CLOSED))
            if flat.excursion is Excursion.HOME:
                entry = (None if self._nobody_came(room, item.ts, ctx)
                         else self._claim_entry(room, ctx))
                if entry is not None:
                    flat = dataclasses.replace(
                        flat, excursion=step(EXCURSION, flat.excursion, ExcursionMove.ARRIVE))
                    intents += self._arrived(entry, item, room, ctx)
                    intents += self._undo_reread(entry, item, ctx)
                    self.arrivals = (*self.arrivals, _Arrival(room, item))
                else:
                    flat, more = self._leave(flat, item, room, ctx)
                    intents += more
            elif flat.excursion is Excursion.OUT and not bounce:
                outing = flat.outing
                came_back_in = outing is not None and (
                    outing.back_inside
                    or (outing.left_building and self._take_back_in(room)))
                flat, intents = self._back(flat, item, room, ExcursionMove.RETURN_BY_DOOR, ctx)
                # A door-only flat cannot tell coming back from going out: if the belief
                # "out" was wrong (a homecoming read as leaving), this opening is a
                # departure. Kept like an arrival, so a building exit opening soon after
                # reads it again as leaving the flat and the building (``_reread_arrival``).
                # Not when the outing was seen out of the building and back in: the whole
                # way out and home is seen, so the belief "out" was not the doubt; an exit
                # opening now is someone else's (re-read, each smoker's return was a call).
                if not came_back_in:
                    self.arrivals = (*self.arrivals, _Arrival(room, item))
        elif device is DeviceKind.DOOR and item.kind is EventKind.DOOR_CLOSED:
            if flat.excursion in (Excursion.LEAVING, Excursion.RETURNING):
                flat = dataclasses.replace(
                    flat, excursion=step(EXCURSION, flat.excursion, ExcursionMove.DOOR_CLOSED))
        elif item.kind in _IN_FLAT_ACTIVITY and flat.excursion in (
            Excursion.OUT, Excursion.RETURNING
        ):
            flat, intents = self._back(flat, item, room, ExcursionMove.SEEN_INSIDE, ctx)

        if device is DeviceKind.BED:
            if item.kind is EventKind.BED_EXIT:
                if flat.bed is BedState.IN_BED:
                    flat = dataclasses.replace(flat, bed=step(BED, flat.bed, BedMove.GET_UP))
                # Evidence, not truth: an exit while the bed is believed empty (the enter
                # was lost, or the resident lay on top of the sensor) still arms the timer.
                if flat.bed_deadline is None:
                    flat = self._arm_bed(flat, item, room, ctx)
                flat = dataclasses.replace(flat, bed_seen_in=None)
            elif item.kind is EventKind.BED_ENTER or (
                item.kind is EventKind.HEARTBEAT and item.occupied is True
            ):
                # A heartbeat saying "occupied" while a timer runs: the bed.enter was lost.
                if flat.bed is BedState.OUT_OF_BED:
                    flat = dataclasses.replace(flat, bed=step(BED, flat.bed, BedMove.LIE_DOWN))
                flat = dataclasses.replace(flat, bed_exit=None, bed_deadline=None,
                                           bed_from=None, bed_seen_in=item.ts)
            elif item.kind is EventKind.HEARTBEAT and item.occupied is False:
                flat = self._bed_report_empty(flat, item, room, ctx)
        up_and_about = (item.kind is EventKind.BED_ENTER
                        or (device is DeviceKind.BED and item.occupied is True)
                        or (device is DeviceKind.DOOR and item.kind is EventKind.DOOR_OPEN))
        if flat.handed_over is not None and up_and_about:
            # Back in bed, or walking out of the flat: not lying on the floor.
            intents.append(Clear(site=ctx.site, room=room, device=item.device,
                                 rule=RuleName.BED_EXIT_NOT_BACK,
                                 episode_key=flat.handed_over, ts=item.ts))
            flat = dataclasses.replace(flat, handed_over=None)
        self.flats[room] = flat
        return intents

    def _nobody_came(self, room: str, ts: datetime, ctx: SiteContext) -> bool:
        """Whether the flat's corridor saw no motion for ``HOMECOMING_WALK`` before ``ts``
        (False when the flat's corridor is not known: no evidence either way)."""
        corridor = ctx.layout.rooms[room].corridor
        if corridor is None:
            return False
        seen = self.commons.get(corridor, _Common()).last_motion
        return seen is None or ts - seen > HOMECOMING_WALK

    @staticmethod
    def _arm_bed(flat: _Flat, exit_event: Event, room: str, ctx: SiteContext,
                 since: datetime | None = None) -> _Flat:
        """Arm the "not back" timer for a spell out of bed from ``since`` (default: the
        exit event's time); it never runs out before ``exit_event``, the evidence, came."""
        setting = ctx.resident_rule(RuleName.BED_EXIT_NOT_BACK, room, exit_event.ts)
        if setting is None:
            return flat
        start = exit_event.ts if since is None else min(since, exit_event.ts)
        # The room's minutes are a hard safety limit; the flat's routine may only call
        # sooner (``rules.routines``), or see the usual start of the day (no timer).
        allowed = _minutes(setting.minutes, RuleName.BED_EXIT_NOT_BACK)
        routine = ctx.routines.get(room)
        if routine is not None:
            if routine.has_risen(start, ctx.layout.night):
                return flat
            allowed = routine.allowed_out_of_bed(allowed)
        return dataclasses.replace(flat, bed_exit=exit_event, bed_from=start,
                                   bed_deadline=max(exit_event.ts, start + allowed))

    def _bed_report_empty(self, flat: _Flat, report: Event, room: str,
                          ctx: SiteContext) -> _Flat:
        """A bed heartbeat says "empty". After the bed last said "in bed", with no bed.exit
        since, the exit was lost (or the resident rolled off without the sensor's edge being
        sent): out of bed since the last "in bed", and the timer runs from there. Only when
        that "in bed" is at most ``REPORTS_MISSED`` heartbeats old (a report or two may be
        lost too): after a longer silence (a bed that reports no state between nights)
        nobody knows when the bed was left. Home, not away on an outing (that has its own
        timer), and never a second timer."""
        interval = timedelta(seconds=ctx.device(report.device).heartbeat_s)
        if (flat.bed_seen_in is None or report.ts - flat.bed_seen_in > REPORTS_MISSED * interval
                or flat.bed_deadline is not None or flat.excursion is not Excursion.HOME):
            return dataclasses.replace(flat, bed_seen_in=None)
        since = flat.bed_seen_in
        if flat.bed is BedState.IN_BED:
            flat = dataclasses.replace(flat, bed=step(BED, flat.bed, BedMove.GET_UP))
        flat = self._arm_bed(flat, report, room, ctx, since=since)
        return dataclasses.replace(flat, bed_seen_in=None)

    def _leave(self, flat: _Flat, event: Event, room: str,
               ctx: SiteContext) -> tuple[_Flat, list[Intent]]:
        flat = dataclasses.replace(
            flat, excursion=step(EXCURSION, flat.excursion, ExcursionMove.LEAVE),
            # Out of the flat: the outing's allowed time governs, not the bed's.
            bed_exit=None, bed_deadline=None, bed_from=None)
        setting = ctx.resident_rule(RuleName.LEFT_FLAT, room, event.ts)
        if setting is None:
            return flat, []
        key = ctx.episode_key(room, RuleName.LEFT_FLAT, event.ts)
        outing = _Outing(key, room, event.ts,
                         event.ts + _minutes(setting.minutes, RuleName.LEFT_FLAT))
        return dataclasses.replace(flat, outing=outing), [Trigger(
            site=ctx.site, room=room, device=event.device, rule=RuleName.LEFT_FLAT,
            severity=setting.severity, ts=event.ts, episode_key=key,
            event_key=event_key(event), late=False, detail="flat door opened at night")]

    def _back(self, flat: _Flat, event: Event, room: str, move: ExcursionMove,
              ctx: SiteContext) -> tuple[_Flat, list[Intent]]:
        intents: list[Intent] = []
        outing = flat.outing
        if outing is not None and not outing.called:
            intents.append(Clear(site=ctx.site, room=room, device=event.device,
                                 rule=RuleName.LEFT_FLAT, episode_key=outing.key, ts=event.ts))
        flat = dataclasses.replace(
            flat, excursion=step(EXCURSION, flat.excursion, move), outing=None)
        if outing is not None and flat.bed is BedState.OUT_OF_BED and flat.bed_deadline is None:
            # Back in the flat, not (yet) in bed: up at night again, from now.
            flat = self._arm_bed(flat, event, room, ctx)
        return flat, intents

    # -- building exits ------------------------------------------------------------------

    def _exit(self, item: Event, room: str, ctx: SiteContext) -> list[Intent]:
        door = self.exit_doors.get(item.device, DoorState.CLOSED)
        if item.kind is EventKind.DOOR_CLOSED:
            if door is DoorState.OPEN:
                self.exit_doors[item.device] = step(DOOR, door, DoorMove.CLOSE)
            return []
        if item.kind is not EventKind.DOOR_OPEN:
            return []
        if door is DoorState.CLOSED:
            self.exit_doors[item.device] = step(DOOR, door, DoorMove.OPEN)
        setting = ctx.resident_rule(RuleName.BUILDING_EXIT, room, item.ts)
        if setting is None:
            return []
        always_calls = setting.minutes == 0
        outing_room = self._outing_at_exit(item.ts)
        outing = None if outing_room is None else self.flats[outing_room].outing
        # A flat door "arrival" just before this opening may in truth have been a departure
        # (the resident went out past this exit): read it again as the outing it may be —
        # a needless call at worst, never a blind spot. The opening stays a possible
        # arrival too (below): someone else may have come in.
        intents: list[Intent] = []
        if outing_room is None:
            intents = self._reread_arrival(item, setting.severity, always_calls, ctx)
        reread = bool(intents)
        first = intents[0] if intents else None
        reread_outing = ((first.room, first.episode_key)
                         if reread and isinstance(first, Trigger) else None)
        if not intents and outing_room is not None and outing is not None:
            flat = self.flats[outing_room]
            call = always_calls and not outing.called
            escalate_at = outing.escalate_at
            if setting.minutes and escalate_at is not None:
                escalate_at = min(escalate_at, item.ts + timedelta(minutes=setting.minutes))
            self.flats[outing_room] = dataclasses.replace(flat, outing=dataclasses.replace(
                outing, called=outing.called or call, left_building=True,
                back_inside=outing.left_building,
                escalate_at=None if outing.called or call else escalate_at))
            intents.append(Trigger(
                site=ctx.site, room=outing_room, device=item.device, rule=RuleName.LEFT_FLAT,
                severity=setting.severity, ts=item.ts, episode_key=outing.key,
                event_key=event_key(item), late=False,
                detail="building exit opened during the outing", call=call))
        if intents and not (reread and not always_calls):
            # Explained by the outing: not also a plain possible arrival. One opening
            # explains one thing; read as an arrival too, it could let the next flat door
            # that opens — a resident really leaving — pass as a homecoming (a blind spot,
            # seen in the simulated nights). Only a walk seen in a flat's corridor after
            # it lets that flat's door take it as coming home (``_claim_entry``); without
            # one, someone who came in as the resident went out is read as leaving at
            # their flat door: a needless call at worst.
            if not reread:
                self.entries = (*self.entries, _Entry("", room, item.ts, called=True,
                                                      explained=True))
            return intents
        # A re-read flat door is a doubt, not an outing seen at the exit: the opening may
        # as well be someone coming in, so a flat door opening after it may still be a
        # homecoming (taken as a departure, each homecoming behind a re-read was a second
        # needless call at the simulated shelter). Where building exits always call, the
        # re-read is a call at this exit already: staff come here either way.
        last = next((e for e in reversed(self.entries)
                     if e.room == room and not e.explained), None)
        if last is not None:
            # The same door again (a group, or a bouncing contact): one situation, but
            # each opening may be someone arriving.
            self.entries = (*self.entries, dataclasses.replace(last, ts=item.ts))
            return [*intents, Trigger(
                site=ctx.site, room=room, device=item.device, rule=RuleName.BUILDING_EXIT,
                severity=setting.severity, ts=item.ts, episode_key=last.key,
                event_key=event_key(item), late=False, detail="building exit opened again")]
        key = ctx.episode_key(room, RuleName.BUILDING_EXIT, item.ts)
        self.entries = (*self.entries, _Entry(key, room, item.ts, always_calls,
                                              reread=reread_outing))
        return [*intents, Trigger(
            site=ctx.site, room=room, device=item.device, rule=RuleName.BUILDING_EXIT,
            severity=setting.severity, ts=item.ts, episode_key=key,
            event_key=event_key(item), late=False, detail="building exit opened at night",
            call=always_calls)]

    def _reread_arrival(self, item: Event, severity: Severity, always_calls: bool,
                        ctx: SiteContext) -> list[Intent]:
        if not self.arrivals:
            return []
        arrival = self.arrivals[-1]
        flat = self.flats.get(arrival.room, _Flat())
        setting = ctx.resident_rule(RuleName.LEFT_FLAT, arrival.room, arrival.door.ts)
        if flat.excursion is not Excursion.HOME or setting is None:
            return []
        self.arrivals = self.arrivals[:-1]
        key = ctx.episode_key(arrival.room, RuleName.LEFT_FLAT, arrival.door.ts)
        escalate_at = arrival.door.ts + _minutes(setting.minutes, RuleName.LEFT_FLAT)
        outing = _Outing(key, arrival.room, arrival.door.ts,
                         None if always_calls else escalate_at, called=always_calls,
                         left_building=True)
        self.flats[arrival.room] = dataclasses.replace(
            flat, excursion=step(EXCURSION, flat.excursion, ExcursionMove.LEFT_UNSEEN),
            outing=outing)
        return [Trigger(
            site=ctx.site, room=arrival.room, device=arrival.door.device,
            # At the door's time: the outing began there (and it is in the past, never
            # the future, of this exit opening).
            rule=RuleName.LEFT_FLAT, severity=severity, ts=arrival.door.ts, episode_key=key,
            event_key=event_key(arrival.door), late=False,
            detail="flat door opened, then a building exit: left the flat and the building",
            call=always_calls)]

    def _latest_outing(self) -> str | None:
        """The flat whose outing in progress started last (ties: the larger room id)."""
        return self._outing_at_exit(None)

    def _outing_at_exit(self, ts: datetime | None) -> str | None:
        """The outing a building exit opening at ``ts`` belongs to: of the outings that
        can be at an exit now, the one that started last (ties: the larger room id).

        An outing can be at an exit when it left its flat within ``ARRIVAL_WINDOW`` (the
        walk from a flat to an exit), or once, to come back in, after it left the building.
        One that left its flat longer ago and stayed inside (the kitchen, the lounge), or
        that came back in already, is not taken to be there: the opening is then someone
        arriving, as it is at a quiet moment. At a busy site (a shelter at night: several
        outings at once, one resident out for an hour) one outing claimed every opening,
        and each homecoming behind it read as leaving (needless calls, 6 a night at the
        simulated shelter). Nothing is hidden by this: the outing keeps its own deadline,
        and where building exits always call the opening is a call of its own."""
        best: tuple[datetime, str] | None = None
        for room, flat in self.flats.items():
            outing = flat.outing
            if outing is None or flat.excursion not in _AWAY:
                continue
            if ts is None or (
                    not outing.back_inside if outing.left_building
                    else ts - outing.start < ARRIVAL_WINDOW):
                candidate = (outing.start, room)
                if best is None or candidate > best:
                    best = candidate
        return None if best is None else best[1]

    def _claim_entry(self, room: str, ctx: SiteContext) -> _Entry | None:
        """The opening a flat door (of ``room``, believed home) takes as its resident
        coming in: the earliest open one no outing explained (the earliest arrival walks
        in first), else one an outing explained when the flat's corridor saw someone walk
        up after it. An unexplained opening first: someone came in there for sure, while
        an outing's opening was most likely that outing's own (taking it first left the
        unexplained one to be read as a departure: needless calls at the shelter)."""
        corridor = ctx.layout.rooms[room].corridor
        walked = (None if corridor is None
                  else self.commons.get(corridor, _Common()).last_motion)
        for explained in (False, True):
            for i, entry in enumerate(self.entries):
                if entry.explained is not explained:
                    continue
                if explained and (walked is None or walked <= entry.ts):
                    continue
                self.entries = self.entries[:i] + self.entries[i + 1:]
                return entry
        return None

    def _take_back_in(self, room: str) -> bool:
        """``room``'s outing left the building and is home, but the exit opening it came
        back in by was given to another outing out of the building (the one that started
        last, ``_outing_at_exit``): that opening was this one's. The other outing, still
        away, is outside again as far as anyone knows (the belief that lets its own
        coming back in be seen, and never hides it); whether one was found."""
        best: tuple[datetime, str] | None = None
        for other, flat in self.flats.items():
            outing = flat.outing
            if (other == room or outing is None or flat.excursion not in _AWAY
                    or not outing.back_inside):
                continue
            if best is None or (outing.start, other) > best:
                best = (outing.start, other)
        if best is None:
            return False
        flat = self.flats[best[1]]
        assert flat.outing is not None
        self.flats[best[1]] = dataclasses.replace(
            flat, outing=dataclasses.replace(flat.outing, back_inside=False))
        return True

    def _undo_reread(self, entry: _Entry, door: Event, ctx: SiteContext) -> list[Intent]:
        """A homecoming claimed an opening that had made another flat's homecoming read
        again as leaving (``_reread_arrival``): the opening was this arrival. One opening
        explains one thing, and the re-read rested on nothing else, so the other flat is
        home again and its outing, still quiet, ends as returned by itself. At the
        simulated shelter each late homecoming through a door someone had just come in by
        was a needless call. A called outing stays for staff; one that has come back in
        through an exit since (``back_inside``) or was seen in its flat is left as it is.
        The cost: someone leaving through the very opening another came in by is not
        seen at it (their flat door had read as coming home)."""
        if entry.reread is None:
            return []
        room, key = entry.reread
        flat = self.flats.get(room)
        if flat is None or flat.outing is None:
            return []
        outing = flat.outing
        if (outing.key != key or outing.called or outing.back_inside
                or flat.excursion is not Excursion.OUT):
            return []
        self.flats[room] = dataclasses.replace(flat, excursion=Excursion.HOME, outing=None)
        return [Clear(site=ctx.site, room=room, device=door.device, rule=RuleName.LEFT_FLAT,
                      episode_key=key, ts=door.ts)]

    @staticmethod
    def _arrived(entry: _Entry, door: Event, room: str, ctx: SiteContext) -> list[Intent]:
        if entry.explained:
            return []  # the opening is an outing's: no situation of its own to close
        intents: list[Intent] = [Trigger(
            site=ctx.site, room=entry.room, device=door.device, rule=RuleName.BUILDING_EXIT,
            severity=ctx.setting(RuleName.BUILDING_EXIT, entry.room).severity, ts=door.ts,
            episode_key=entry.key, event_key=event_key(door), late=False,
            detail=f"came home to {room}")]
        if not entry.called:
            intents.append(Clear(site=ctx.site, room=entry.room, device=door.device,
                                 rule=RuleName.BUILDING_EXIT, episode_key=entry.key,
                                 ts=door.ts))
        return intents

    # -- common rooms --------------------------------------------------------------------

    def _common(self, item: Event, room: str, ctx: SiteContext) -> list[Intent]:
        # The hottest path of a busy common room (a burst of motion): new ``_Common`` values
        # are built directly, not with ``dataclasses.replace`` (several times slower).
        common = self.commons.get(room, _QUIET_COMMON)
        if item.kind is EventKind.PRESENCE_OFF:
            common = _Common(common.episode, common.key, common.present - {item.device},
                             common.expires_at, common.last_motion)
            self.commons[room] = self._keep_alive(common, item.ts, room, ctx)
            return []
        if item.kind not in _COMMON_ACTIVITY:
            return []
        present = common.present
        if item.kind is EventKind.PRESENCE_ON and item.device not in present:
            present = present | {item.device}
        common = _Common(common.episode, common.key, present, common.expires_at, item.ts)
        setting = ctx.resident_rule(RuleName.COMMON_MOTION, room, item.ts)
        if setting is None or ctx.staff_in(room, item.ts, self.staff_seen):
            self.commons[room] = self._keep_alive(common, item.ts, room, ctx)
            return []
        outing_room = self._latest_outing()
        if outing_room is not None:  # the resident out of their flat, walking through
            outing = self.flats[outing_room].outing
            assert outing is not None
            self.commons[room] = self._keep_alive(common, item.ts, room, ctx)
            return [Trigger(
                site=ctx.site, room=outing_room, device=item.device, rule=RuleName.LEFT_FLAT,
                severity=ctx.setting(RuleName.LEFT_FLAT, outing_room).severity, ts=item.ts,
                episode_key=outing.key, event_key=event_key(item), late=False,
                detail=f"motion in {room} during the outing")]
        open_entries = [e for e in self.entries if not e.explained]
        if open_entries:  # someone who just came in, on the way to a flat
            entry = open_entries[-1]
            self.commons[room] = self._keep_alive(common, item.ts, room, ctx)
            return [Trigger(
                site=ctx.site, room=entry.room, device=item.device,
                rule=RuleName.BUILDING_EXIT,
                severity=ctx.setting(RuleName.BUILDING_EXIT, entry.room).severity,
                ts=item.ts, episode_key=entry.key, event_key=event_key(item), late=False,
                detail=f"motion in {room} after the building exit")]
        if common.episode is MotionEpisode.QUIET:
            common = _Common(step(MOTION, common.episode, MotionMove.START),
                             ctx.episode_key(room, RuleName.COMMON_MOTION, item.ts),
                             common.present, common.expires_at, common.last_motion)
            detail = "motion in a common room at night"
        else:
            detail = "motion continues in a common room"
        common = self._keep_alive(common, item.ts, room, ctx)
        self.commons[room] = common
        assert common.key is not None
        return [Trigger(
            site=ctx.site, room=room, device=item.device, rule=RuleName.COMMON_MOTION,
            severity=setting.severity, ts=item.ts, episode_key=common.key,
            event_key=event_key(item), late=False, detail=detail)]

    @staticmethod
    def _keep_alive(common: _Common, ts: datetime, room: str, ctx: SiteContext) -> _Common:
        if common.episode is not MotionEpisode.ACTIVE:
            return common
        if common.present:
            if common.expires_at is None:
                return common
            return _Common(common.episode, common.key, common.present, None,
                           common.last_motion)
        window = ctx.setting(RuleName.COMMON_MOTION, room).minutes
        return _Common(common.episode, common.key, common.present,
                       ts + _minutes(window, RuleName.COMMON_MOTION), common.last_motion)

    # -- timers --------------------------------------------------------------------------

    def _deadlines(self) -> list[tuple[datetime, int, str]]:
        found: list[tuple[datetime, int, str]] = []
        for room, flat in self.flats.items():
            if flat.outing is not None and flat.outing.escalate_at is not None:
                found.append((flat.outing.escalate_at, 0, room))
            if flat.bed_deadline is not None:
                found.append((flat.bed_deadline, 1, room))
        for room, common in self.commons.items():
            if common.expires_at is not None:
                found.append((common.expires_at, 2, room))
        return found

    def next_deadline(self) -> datetime | None:
        return min((d for d, _, _ in self._deadlines()), default=None)

    def fire_next(self, ctx: SiteContext) -> list[Intent]:
        deadlines = self._deadlines()
        if not deadlines:
            return []
        deadline, what, room = min(deadlines)
        if what == 0:
            flat = self.flats[room]
            assert flat.outing is not None
            self.flats[room] = dataclasses.replace(flat, outing=dataclasses.replace(
                flat.outing, escalate_at=None, called=True))
            return [Escalate(site=ctx.site, room=room, rule=RuleName.LEFT_FLAT,
                             episode_key=flat.outing.key, ts=deadline, late=False)]
        if what == 1:
            flat = self.flats[room]
            exit_event = flat.bed_exit
            assert exit_event is not None
            bed_key = ctx.episode_key(room, RuleName.BED_EXIT_NOT_BACK, exit_event.ts)
            setting = ctx.setting(RuleName.BED_EXIT_NOT_BACK, room)
            out_since = flat.bed_from or exit_event.ts
            minutes = round((deadline - out_since).total_seconds() / 60)
            lost_exit = exit_event.kind is EventKind.HEARTBEAT
            # A timer that runs out after the night has ended, or after the flat's usual
            # rising time (``FlatRoutine.has_risen``), calls no night staff: the day has
            # begun (most such spells are a resident up early for the day). It stays an
            # open quiet situation, first on the morning handover, until the resident is
            # seen back in bed or walking out of the flat.
            routine = ctx.routines.get(room)
            in_night = ctx.layout.night.contains(deadline) and not (
                routine is not None and routine.has_risen(deadline, ctx.layout.night))
            self.flats[room] = dataclasses.replace(
                flat, bed_exit=None, bed_deadline=None, bed_from=None,
                handed_over=None if in_night else bed_key)
            return [Trigger(
                site=ctx.site, room=room, device=exit_event.device,
                rule=RuleName.BED_EXIT_NOT_BACK, severity=setting.severity, ts=deadline,
                episode_key=bed_key, event_key=event_key(exit_event), late=False,
                detail=(f"out of bed and not back within {minutes} min" if in_night
                        else f"out of bed for {minutes} min when the day began: "
                             "handed over to the day shift")
                + ("; the bed reported empty, its bed.exit never arrived" if lost_exit
                   else ""),
                call=in_night)]
        common = self.commons[room]
        key = common.key
        self.commons[room] = dataclasses.replace(
            common, episode=step(MOTION, common.episode, MotionMove.EXPIRE), key=None,
            expires_at=None)
        if key is None:
            return []
        # No device ended it (quiet came); the store clears a resident situation by key.
        return [Clear(site=ctx.site, room=room, device=room, rule=RuleName.COMMON_MOTION,
                      episode_key=key, ts=deadline)]

    def is_open(self, episode_key: str) -> bool:
        for flat in self.flats.values():
            if flat.outing is not None and flat.outing.key == episode_key:
                return flat.excursion in _AWAY
        if any(entry.key == episode_key and not entry.explained for entry in self.entries):
            return True
        return any(c.episode is MotionEpisode.ACTIVE and c.key == episode_key
                   for c in self.commons.values())

    def redundant(self, before: Input, item: Input, after: Input,
                  ctx: SiteContext) -> bool:
        return False  # the site's room timeline gets no heartbeats; every input counts
