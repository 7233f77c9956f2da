"""Residents' nights: when each one sleeps, gets up, goes out, falls, and what sensors saw.

Produces, for one site and night, the episodes of the ground truth and the sensor
observations (device, true time, event kind) that the device layer turns into MQTT
deliveries. Residents are anonymous: a resident is known only by their flat.

Needed-help episodes (left_flat_long, left_building, fall) are only generated where the
default rules can see them: a monitored flat with the right sensor, no faulty device in
the room tonight, and enough of the night left for the rule's grace period to run out.
Whether an episode needed help follows from what happened to the resident (a fall, lost
outside the flat, out of the building), never from how long it lasted: harmless toilet
visits and trips out may overrun the rules' minutes (``Behaviour.overrun``). Every
needed-help episode records its need onset (the fall, the exit door, getting lost).

Night staff walk their rounds through the common rooms (``SiteProfile.staff``); the motion
they cause is in the truth as ``staff_round``, so an alert it raises counts as needless.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from core.alerts import RuleName
from core.events import DeviceKind, EventKind, RoomKind
from simulators.ground_truth import Episode, EpisodeKind, ExpectedAlert, NeedKind
from simulators.profile import RoomSpec, SiteProfile, minutes_after_noon
from simulators.seeding import poisson, stream

__all__ = ["NightContext", "Observation", "residents_night"]

NEEDS_HELP = frozenset({EpisodeKind.LEFT_FLAT_LONG, EpisodeKind.LEFT_BUILDING, EpisodeKind.FALL})
IN_BED_ONLY = frozenset({EpisodeKind.TOILET_VISIT, EpisodeKind.WANDERING, EpisodeKind.FALL})
OUT_OF_BUILDING = frozenset({EpisodeKind.SMOKE_BREAK, EpisodeKind.LEFT_BUILDING})
# Harmless episodes whose length may overrun the rules' minutes (``Behaviour.overrun``).
MAY_OVERRUN = frozenset({EpisodeKind.TOILET_VISIT, EpisodeKind.LEFT_FLAT_SHORT})
_OVERRUN_UP_TO = 2.5
# Default rule thresholds. A needed-help episode lasts past them (a fallen resident stays
# on the floor, a lost one does not come back by themselves), so the rules can see it;
# harmless episodes are no longer kept under them.
BED_GRACE = timedelta(minutes=10)
DOOR_GRACE = timedelta(minutes=15)
_GAP = timedelta(minutes=3)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one sensor saw, at the true time it happened."""

    ts: datetime
    device: str
    kind: EventKind


@dataclass(frozen=True, slots=True)
class NightContext:
    """One site's night, and what the device layer already decided about it."""

    profile: SiteProfile
    night: date
    seed: int
    start: datetime
    end: datetime
    # Rooms with a faulty device tonight: no needed-help episode may hide behind the fault.
    unreliable_rooms: frozenset[str] = frozenset()
    # Flat -> a span kept free of resident episodes (a flapping door contact bounces then).
    quiet: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    # Exit rooms whose exit device works all night.
    usable_exits: tuple[str, ...] = ()


@dataclass
class _Layout:
    """Device ids by room and kind, and the rooms by kind."""

    devices: dict[tuple[str, DeviceKind], list[str]]
    common: list[str]
    exits: list[str]

    @classmethod
    def of(cls, profile: SiteProfile) -> _Layout:
        devices: dict[tuple[str, DeviceKind], list[str]] = {}
        for spec in profile.device_specs:
            devices.setdefault((spec.room, spec.kind), []).append(spec.id)
        return cls(devices=devices,
                   common=[r.id for r in profile.rooms if r.kind is RoomKind.COMMON],
                   exits=[r.id for r in profile.rooms if r.kind is RoomKind.EXIT])

    def one(self, room: str, kind: DeviceKind) -> str | None:
        found = self.devices.get((room, kind))
        return found[0] if found else None


class _Scene:
    """Records sensor observations and the alerts an episode should raise, then commits.

    An episode is played into a scene first; only if it fits the night are its
    observations kept, so a rejected episode leaves no trace.
    """

    def __init__(self, ctx: NightContext, layout: _Layout, rng: random.Random) -> None:
        self.ctx, self.layout, self.rng = ctx, layout, rng
        self.observations: list[Observation] = []
        self.expected: dict[ExpectedAlert, None] = {}
        self.need_onset: datetime | None = None
        self.need_kind: NeedKind | None = None

    def need(self, onset: datetime, kind: NeedKind) -> None:
        """Help became needed at ``onset``: the fall, the exit door, getting lost."""
        self.need_onset, self.need_kind = onset, kind

    def emit(self, ts: datetime, device: str | None, kind: EventKind) -> None:
        if device is not None:
            self.observations.append(Observation(ts, device, kind))

    def seconds(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=self.rng.uniform(low, high))

    def presence(self, room: str, start: datetime, end: datetime) -> None:
        """People in a common room: a PIR sensor fires, re-arms, fires again."""
        sensors = self.layout.devices.get((room, DeviceKind.MOTION), [])
        if not sensors:
            return
        self.expected[ExpectedAlert(RuleName.COMMON_MOTION, room)] = None
        t = start + self.seconds(1, 4)
        while t < end:
            self.emit(t, self.rng.choice(sensors), EventKind.MOTION)
            t += self.seconds(30, 90)

    def walk(self, t: datetime, rooms: Sequence[str]) -> datetime:
        for room in rooms:
            dwell = self.seconds(15, 45)
            self.presence(room, t, t + dwell)
            t += dwell
        return t

    def through_exit(self, t: datetime, exit_room: str) -> datetime:
        device = self.layout.one(exit_room, DeviceKind.EXIT)
        self.emit(t, device, EventKind.DOOR_OPEN)
        t += self.seconds(3, 8)
        self.emit(t, device, EventKind.DOOR_CLOSED)
        if device is not None:
            self.expected[ExpectedAlert(RuleName.BUILDING_EXIT, exit_room)] = None
        return t + self.seconds(1, 3)


class _Resident:
    """One anonymous resident, known by their flat, living through one night."""

    def __init__(self, ctx: NightContext, layout: _Layout, room: RoomSpec) -> None:
        assert room.behaviour is not None
        self.ctx, self.layout, self.room = ctx, layout, room
        self.behaviour = ctx.profile.behaviours[room.behaviour]
        site = ctx.profile.site
        self.rng = stream(ctx.seed, site, ctx.night, "resident", room.id)
        # Own streams, so overruns and need onsets leave the rest of the night as it was.
        self.overrun_rng = stream(ctx.seed, site, ctx.night, "overrun", room.id)
        self.need_rng = stream(ctx.seed, site, ctx.night, "need-onset", room.id)
        # A resident's temperament holds across nights: their own rates, drawn once.
        traits = stream(ctx.seed, site, "traits", room.id)
        spread = self.behaviour.individual_spread
        self.factor = {kind: traits.lognormvariate(0.0, spread)
                       for kind in type(self.behaviour.per_night).model_fields}
        self.monitored = room.monitored_on(ctx.night)
        self.door = layout.one(room.id, DeviceKind.DOOR)
        self.bed = layout.one(room.id, DeviceKind.BED)
        self.code = f"r-{room.id}"
        self.episodes: list[Episode] = []
        self.observations: list[Observation] = []

    def live(self) -> None:
        ctx, b, rng = self.ctx, self.behaviour, self.rng
        bedtime = ctx.profile.local_time(
            ctx.night, rng.gauss(b.bedtime.mean_minutes, b.bedtime.sd_min))
        wake = ctx.profile.local_time(ctx.night, rng.gauss(b.wake.mean_minutes, b.wake.sd_min))
        wake = max(wake, bedtime + timedelta(hours=4))
        free_from = ctx.start
        if ctx.usable_exits and rng.random() < b.out_at_night_start:
            arrival = self._late_return()
            if arrival is not None:
                bedtime = max(bedtime, arrival + timedelta(minutes=rng.uniform(10, 40)))
                free_from = arrival + _GAP
        busy_until = free_from
        for t, kind, minutes in self._candidates(free_from, min(wake, ctx.end)):
            if t < busy_until + _GAP:
                continue
            in_bed = t >= bedtime
            if kind in IN_BED_ONLY and (not in_bed or t < bedtime + BED_GRACE):
                continue
            if kind in NEEDS_HELP and not self._can_need(kind):
                continue
            if kind in OUT_OF_BUILDING and not ctx.usable_exits:
                continue
            end = self._play(kind, t, timedelta(minutes=minutes), in_bed)
            if end is None:
                continue
            busy_until = end
            if not in_bed and end > bedtime:
                # Still out at the planned bedtime: goes to bed a little after coming back.
                bedtime = end + timedelta(minutes=rng.uniform(5, 20))
        if self.bed is not None and ctx.start < bedtime < ctx.end:
            self.observations.append(Observation(bedtime, self.bed, EventKind.BED_ENTER))
        if self.bed is not None and wake < ctx.end:
            rise = max(wake, busy_until + timedelta(minutes=1), bedtime + timedelta(hours=1))
            self._early_rise(rise)

    # -- scheduling ------------------------------------------------------------------------

    def _candidates(self, start: datetime, end: datetime
                    ) -> list[tuple[datetime, EpisodeKind, float]]:
        if end <= start:
            return []
        span = (end - start).total_seconds()
        rates, minutes = self.behaviour.per_night, self.behaviour.minutes
        found: list[tuple[datetime, EpisodeKind, float]] = []
        for name in type(rates).model_fields:
            kind = EpisodeKind(name)
            low, high = getattr(minutes, name)
            for _ in range(poisson(self.rng, getattr(rates, name) * self.factor[name])):
                at = start + timedelta(seconds=self.rng.uniform(0, span))
                length = self.rng.uniform(low, high)
                if kind in MAY_OVERRUN and self.overrun_rng.random() < self.behaviour.overrun:
                    length = self.overrun_rng.uniform(high, high * _OVERRUN_UP_TO)
                found.append((at, kind, length))
        found.sort(key=lambda c: (c[0], c[1]))
        return found

    def _can_need(self, kind: EpisodeKind) -> bool:
        if not self.monitored or self.room.id in self.ctx.unreliable_rooms:
            return False
        if kind is EpisodeKind.FALL:
            return self.bed is not None
        if kind is EpisodeKind.LEFT_FLAT_LONG:
            return self.door is not None
        return bool(self.ctx.usable_exits)

    # -- episodes --------------------------------------------------------------------------

    def _play(self, kind: EpisodeKind, t: datetime, length: timedelta,
              in_bed: bool) -> datetime | None:
        scene = _Scene(self.ctx, self.layout, self.rng)
        if kind is EpisodeKind.TOILET_VISIT or kind is EpisodeKind.WANDERING \
                or kind is EpisodeKind.FALL:
            if kind is EpisodeKind.FALL:
                # On the way to or from the toilet; on the floor until helped up.
                length = max(length, BED_GRACE + timedelta(minutes=8))
                scene.need(t + timedelta(minutes=self.need_rng.uniform(0.5, 5)),
                           NeedKind.FALL_BED_SENSOR)
            scene.emit(t, self.bed, EventKind.BED_EXIT)
            end = t + length
            scene.emit(end, self.bed, EventKind.BED_ENTER)
            self._bed_alert(scene, length)
        else:
            end = self._outing(scene, kind, t, length, in_bed)
        if end > self.ctx.end - timedelta(minutes=2) or self._in_quiet(t, end):
            return None
        self._commit(scene, kind, t, end)
        return end

    def _outing(self, scene: _Scene, kind: EpisodeKind, t: datetime, length: timedelta,
                in_bed: bool) -> datetime:
        """Out of the flat: through the route to a common room, or out of the building."""
        rng, route = self.rng, list(self.room.route)
        left_bed = t
        if in_bed:
            scene.emit(t, self.bed, EventKind.BED_EXIT)
            t += scene.seconds(30, 120)
        out_at = t
        t = self._door(scene, t)
        if self.door is not None and self.monitored:
            scene.expected[ExpectedAlert(RuleName.LEFT_FLAT, self.room.id)] = None
        if kind is EpisodeKind.LEFT_FLAT_LONG:
            # Disoriented: lost somewhere on the way, and not back until someone comes.
            length = max(length, DOOR_GRACE + timedelta(minutes=5))
            scene.need(out_at + timedelta(minutes=self.need_rng.uniform(2, 8)),
                       NeedKind.OUTING)
        back_at = t + length
        t = scene.walk(t, route)
        exit_room: str | None = None
        if kind in OUT_OF_BUILDING:
            exit_room = rng.choice(self.ctx.usable_exits)
            if kind is EpisodeKind.LEFT_BUILDING:
                scene.need(t, NeedKind.BUILDING_EXIT)   # the moment the exit door opens
            scene.through_exit(t, exit_room)
            t = max(t + timedelta(minutes=1), back_at)
            t = scene.through_exit(t, exit_room)
        else:
            destinations = [room for room in self.layout.common if room not in route] \
                or self.layout.common
            while destinations and t < back_at:
                room = rng.choice(destinations)
                dwell = min(back_at - t, timedelta(minutes=rng.uniform(2, 10)))
                if kind is EpisodeKind.LEFT_FLAT_SHORT:
                    dwell = back_at - t
                scene.presence(room, t, t + dwell)
                t += dwell
            t = max(t, back_at)
        t = scene.walk(t, list(reversed(route)))
        t = self._door(scene, t)
        if in_bed:
            t += scene.seconds(30, 180)
            scene.emit(t, self.bed, EventKind.BED_ENTER)
            self._bed_alert(scene, t - left_bed)
        return t

    def _late_return(self) -> datetime | None:
        """Still out when the night begins; comes in through an exit, then to the flat."""
        ctx, b = self.ctx, self.behaviour
        scene = _Scene(ctx, self.layout, self.rng)
        arrive = ctx.profile.local_time(
            ctx.night, self.rng.gauss(b.late_return.mean_minutes, b.late_return.sd_min))
        arrive = min(max(arrive, ctx.start + timedelta(minutes=5)),
                     ctx.end - timedelta(minutes=90))
        t = scene.through_exit(arrive, self.rng.choice(ctx.usable_exits))
        t = scene.walk(t, list(reversed(self.room.route)))
        t = self._door(scene, t)
        if self.door is not None and self.monitored:
            scene.expected[ExpectedAlert(RuleName.LEFT_FLAT, self.room.id)] = None
        if self._in_quiet(arrive, t):
            return None
        self._commit(scene, EpisodeKind.LATE_RETURN, arrive, t)
        return t

    def _early_rise(self, at: datetime) -> None:
        if at >= self.ctx.end or self._in_quiet(at, self.ctx.end):
            return
        scene = _Scene(self.ctx, self.layout, self.rng)
        scene.emit(at, self.bed, EventKind.BED_EXIT)
        self._bed_alert(scene, self.ctx.end - at)
        self._commit(scene, EpisodeKind.EARLY_RISE, at, self.ctx.end)

    # -- pieces ----------------------------------------------------------------------------

    def _door(self, scene: _Scene, t: datetime) -> datetime:
        scene.emit(t, self.door, EventKind.DOOR_OPEN)
        t += scene.seconds(2, 6)
        scene.emit(t, self.door, EventKind.DOOR_CLOSED)
        return t + scene.seconds(1, 3)

    def _bed_alert(self, scene: _Scene, out_of_bed: timedelta) -> None:
        if self.bed is not None and self.monitored and out_of_bed > BED_GRACE:
            scene.expected[ExpectedAlert(RuleName.BED_EXIT_NOT_BACK, self.room.id)] = None

    def _in_quiet(self, start: datetime, end: datetime) -> bool:
        quiet = self.ctx.quiet.get(self.room.id)
        return quiet is not None and start < quiet[1] and quiet[0] < end

    def _commit(self, scene: _Scene, kind: EpisodeKind, start: datetime, end: datetime) -> None:
        self.observations += scene.observations
        self.episodes.append(Episode(
            site=self.ctx.profile.site, night=self.ctx.night, kind=kind, room=self.room.id,
            start=start, end=end, needed_help=kind in NEEDS_HELP,
            expected=tuple(scene.expected), resident=self.code, monitored=self.monitored,
            need_onset=scene.need_onset if kind in NEEDS_HELP else None,
            need=scene.need_kind if kind in NEEDS_HELP else None))


def _common_activity(ctx: NightContext, layout: _Layout
                     ) -> tuple[list[Episode], list[Observation]]:
    """People up in common rooms (a lounge with the television on), no one flat's episode."""
    episodes: list[Episode] = []
    observations: list[Observation] = []
    for room in ctx.profile.common:
        rng = stream(ctx.seed, ctx.profile.site, ctx.night, "common", room.id)
        activity = room.activity
        earliest = ctx.profile.local_time(ctx.night, minutes_after_noon(activity.earliest))
        latest = ctx.profile.local_time(ctx.night, minutes_after_noon(activity.latest))
        earliest, latest = max(earliest, ctx.start), min(latest, ctx.end)
        for _ in range(poisson(rng, activity.per_night)):
            if latest <= earliest:
                break
            start = earliest + (latest - earliest) * rng.random()
            end = min(start + timedelta(minutes=rng.uniform(*activity.minutes)), ctx.end)
            scene = _Scene(ctx, layout, rng)
            scene.presence(room.id, start, end)
            observations += scene.observations
            episodes.append(Episode(
                site=ctx.profile.site, night=ctx.night, kind=EpisodeKind.COMMON_ACTIVITY,
                room=room.id, start=start, end=end, needed_help=False,
                expected=tuple(scene.expected)))
    return episodes, observations


def _staff_rounds(ctx: NightContext, layout: _Layout
                  ) -> tuple[list[Episode], list[Observation]]:
    """Night staff walking their rounds: motion in each common room they pass, not a resident."""
    staff = ctx.profile.staff
    rng = stream(ctx.seed, ctx.profile.site, ctx.night, "staff")
    rooms = staff.rooms if staff.rooms is not None else layout.common
    episodes: list[Episode] = []
    observations: list[Observation] = []
    for clock in staff.at:
        t = ctx.profile.local_time(ctx.night, rng.gauss(minutes_after_noon(clock), staff.sd_min))
        for room in rooms:
            dwell = timedelta(seconds=rng.uniform(*staff.dwell_s))
            if not (ctx.start <= t and t + dwell < ctx.end):
                t += dwell
                continue
            scene = _Scene(ctx, layout, rng)
            scene.presence(room, t, t + dwell)
            observations += scene.observations
            episodes.append(Episode(
                site=ctx.profile.site, night=ctx.night, kind=EpisodeKind.STAFF_ROUND,
                room=room, start=t, end=t + dwell, needed_help=False,
                expected=tuple(scene.expected)))
            t += dwell + timedelta(seconds=rng.uniform(10, 40))   # the walk to the next room
    return episodes, observations


def residents_night(ctx: NightContext) -> tuple[list[Episode], list[Observation]]:
    """Every resident's night, the common rooms' comings and goings and the staff's rounds."""
    layout = _Layout.of(ctx.profile)
    episodes, observations = _common_activity(ctx, layout)
    staff_episodes, staff_observations = _staff_rounds(ctx, layout)
    episodes += staff_episodes
    observations += staff_observations
    for room in ctx.profile.rooms:
        if room.kind is not RoomKind.FLAT:
            continue
        resident = _Resident(ctx, layout, room)
        resident.live()
        episodes += resident.episodes
        observations += resident.observations
    return episodes, observations
