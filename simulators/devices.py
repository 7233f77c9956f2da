"""Devices' nights: heartbeats, batteries, outages, a bouncing door contact, and the network.

Turns sensor observations into protocol v1 deliveries the way real devices send them: each
device stamps events with its own (slightly wrong) clock, a few messages arrive late, a few
twice; a device may drop out for a while (silently, or announcing ``offline``); a door
contact may flap. Everything is drawn from seeded streams, never from the wall clock.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from core.alerts import RuleName
from core.events import DeviceKind, EventKind, Presence, RoomKind
from simulators.errors import SimulatorError
from simulators.ground_truth import Episode, EpisodeKind, ExpectedAlert
from simulators.plan import Delivery, EventDelivery, StatusDelivery
from simulators.profile import DeviceSpec, SiteProfile
from simulators.residents import Observation
from simulators.seeding import stream

__all__ = ["DeliveryRates", "DeviceFaults", "FlappingSpell", "OfflineSpell", "battery_level",
           "deliveries", "fault_episodes", "flapping_observations", "heartbeats", "night_faults"]

# Heartbeats sit on a fixed grid per device, so a night and the day after it join up.
_GRID_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
# Batteries are swapped when they reach this level (the caretaker reads the notices).
_BATTERY_SWAP_AT = 10.0
LOW_BATTERY = 15


@dataclass(frozen=True, slots=True)
class OfflineSpell:
    device: DeviceSpec
    start: datetime
    end: datetime
    announced: bool     # publishes a retained ``offline``, else just falls silent


@dataclass(frozen=True, slots=True)
class FlappingSpell:
    device: DeviceSpec
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class DeviceFaults:
    offline: OfflineSpell | None = None
    flapping: FlappingSpell | None = None

    @property
    def unreliable_rooms(self) -> frozenset[str]:
        return frozenset(spell.device.room for spell in (self.offline, self.flapping)
                         if spell is not None)

    def quiet(self) -> dict[str, tuple[datetime, datetime]]:
        """Flats kept free of resident episodes while their door contact flaps."""
        spell = self.flapping
        if spell is None or spell.device.kind is not DeviceKind.DOOR:
            return {}
        margin = timedelta(minutes=5)
        return {spell.device.room: (spell.start - margin, spell.end + margin)}

    def is_offline(self, device: str, ts: datetime) -> bool:
        spell = self.offline
        return spell is not None and spell.device.id == device and spell.start <= ts < spell.end


@dataclass(frozen=True, slots=True)
class DeliveryRates:
    """Unlucky delivery for a whole run, over every profile's own rates (None keeps them).

    ``lost``: share of events never delivered; ``duplicated``: share resent a second time;
    ``late``: share delivered 5-120 s late, after events that happened later (reordered).
    """

    lost: float | None = None
    duplicated: float | None = None
    late: float | None = None

    def __post_init__(self) -> None:
        for name in ("lost", "duplicated", "late"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise SimulatorError(
                    f"--{name} must be a share between 0 and 1 (e.g. 0.01 for 1 %), "
                    f"got {value}")

    def applied_to(self, profile: SiteProfile) -> SiteProfile:
        update = {field: value for field, value in (
            ("lost_fraction", self.lost), ("duplicate_fraction", self.duplicated),
            ("delayed_fraction", self.late)) if value is not None}
        if not update:
            return profile
        return profile.model_copy(update={"devices": profile.devices.model_copy(update=update)})


def night_faults(profile: SiteProfile, night: date, seed: int,
                 start: datetime, end: datetime) -> DeviceFaults:
    """Tonight's outage and flapping contact, if any (at most one of each per site)."""
    rng = stream(seed, profile.site, night, "faults")
    behaviour, specs = profile.devices, profile.device_specs
    offline: OfflineSpell | None = None
    flapping: FlappingSpell | None = None
    if specs and rng.random() < behaviour.offline_per_night:
        device = rng.choice(specs)
        begin = _between(rng, start + timedelta(minutes=30), end - timedelta(minutes=45))
        length = timedelta(minutes=rng.uniform(*behaviour.offline_minutes))
        offline = OfflineSpell(device, begin, min(begin + length, end),
                               announced=rng.random() < behaviour.offline_announced)
    contacts = [s for s in specs if s.kind in (DeviceKind.DOOR, DeviceKind.EXIT)
                and (offline is None or s.id != offline.device.id)]
    if contacts and rng.random() < behaviour.flapping_per_night:
        device = rng.choice(contacts)
        begin = _between(rng, start + timedelta(minutes=20), end - timedelta(minutes=60))
        flapping = FlappingSpell(device, begin, begin + timedelta(minutes=rng.uniform(1, 15)))
    return DeviceFaults(offline, flapping)


def flapping_observations(spell: FlappingSpell, seed: int, site: str, night: date
                          ) -> list[Observation]:
    """Bursts of open/closed pairs, an even number so the door ends where it began."""
    rng = stream(seed, site, night, "flapping")
    t, pairs = spell.start, 0
    found: list[Observation] = []
    while t < spell.end or pairs % 2:
        for _ in range(rng.randint(1, 4)):
            found.append(Observation(t, spell.device.id, EventKind.DOOR_OPEN))
            t += timedelta(seconds=rng.uniform(0.3, 1.5))
            found.append(Observation(t, spell.device.id, EventKind.DOOR_CLOSED))
            t += timedelta(seconds=rng.uniform(0.5, 3.0))
            pairs += 1
        t += timedelta(seconds=rng.uniform(30, 300))
    return found


def fault_episodes(profile: SiteProfile, night: date, seed: int, faults: DeviceFaults,
                   start: datetime, end: datetime) -> list[Episode]:
    """The ground truth of the devices: outages, flapping, flat batteries. None needs staff."""
    # "monitored" is about flats; a common room or an exit always raises its alerts
    monitored = {room.id: room.kind is not RoomKind.FLAT or room.monitored_on(night)
                 for room in profile.rooms}
    episodes: list[Episode] = []
    if faults.offline is not None:
        outage = faults.offline
        heartbeat = timedelta(seconds=outage.device.heartbeat_s)
        # Silence is noticed after 2 heartbeats; allow one more for the jitter and skew.
        noticed = outage.announced or outage.end - outage.start > 3 * heartbeat
        episodes.append(Episode(
            site=profile.site, night=night, kind=EpisodeKind.SENSOR_OFFLINE,
            room=outage.device.room, start=outage.start, end=outage.end, needed_help=False,
            expected=(ExpectedAlert(RuleName.SENSOR_OFFLINE, outage.device.room),)
            if noticed else (), device=outage.device.id,
            monitored=monitored[outage.device.room]))
    if faults.flapping is not None:
        spell = faults.flapping
        device, room = spell.device, spell.device.room
        if device.kind is DeviceKind.EXIT:
            expected: tuple[ExpectedAlert, ...] = (
                ExpectedAlert(RuleName.BUILDING_EXIT, room),)
        else:
            expected = (ExpectedAlert(RuleName.LEFT_FLAT, room),) if monitored[room] else ()
        last = flapping_observations(spell, seed, profile.site, night)[-1].ts
        episodes.append(Episode(
            site=profile.site, night=night, kind=EpisodeKind.FLAPPING, room=room,
            start=spell.start, end=last, needed_help=False, expected=expected,
            device=device.id, monitored=monitored[room]))
    for spec in profile.device_specs:
        if battery_level(profile, spec, night, seed) < LOW_BATTERY:
            episodes.append(Episode(
                site=profile.site, night=night, kind=EpisodeKind.LOW_BATTERY, room=spec.room,
                start=start, end=end, needed_help=False,
                expected=(ExpectedAlert(RuleName.LOW_BATTERY, spec.room),), device=spec.id,
                monitored=monitored[spec.room]))
    return episodes


def battery_level(profile: SiteProfile, device: DeviceSpec, night: date, seed: int) -> int:
    """The device's battery on ``night``: drains a little each night, swapped near empty."""
    rng = stream(seed, profile.site, "battery", device.id)
    level = rng.uniform(*profile.devices.battery_start)
    drain = rng.uniform(*profile.devices.battery_drain_per_night)
    used = (100.0 - level) + drain * (night - _GRID_EPOCH.date()).days
    return round(100.0 - used % (100.0 - _BATTERY_SWAP_AT))


def heartbeats(profile: SiteProfile, device: DeviceSpec, seed: int,
               start: datetime, end: datetime, *, segment: str) -> list[Observation]:
    """Heartbeats whose grid slot lies in [start, end), each nudged by a little jitter."""
    interval = device.heartbeat_s
    anchor = stream(seed, profile.site, "heartbeat-phase", device.id).uniform(0, interval)
    jitter = profile.devices.heartbeat_jitter * interval
    rng = stream(seed, profile.site, segment, "heartbeat", device.id)

    def slot(moment: datetime) -> int:
        return math.ceil(((moment - _GRID_EPOCH).total_seconds() - anchor) / interval)

    return [Observation(
        _GRID_EPOCH + timedelta(seconds=anchor + k * interval + rng.uniform(-jitter, jitter)),
        device.id, EventKind.HEARTBEAT) for k in range(slot(start), slot(end))]


def bed_states(observed: Sequence[Observation], beds: set[str]) -> dict[Observation, bool]:
    """What each bed sensor's heartbeat reports (``occupied``): the bed's true state at the
    heartbeat, from the sensor's own observations in time order, lost messages included
    (the sensor knows its state; only the message was lost). Before a bed's first
    ``bed.exit``/``bed.enter`` its state is the opposite of that first one; a bed with none
    (a heartbeat-only day) reports no state."""
    first: dict[str, bool] = {}
    for seen in observed:
        if seen.device in beds and seen.device not in first and seen.kind in _BED_MOVES:
            first[seen.device] = seen.kind is not EventKind.BED_ENTER
    state = dict(first)
    reports: dict[Observation, bool] = {}
    for seen in observed:
        if seen.device not in state:
            continue
        if seen.kind in _BED_MOVES:
            state[seen.device] = seen.kind is EventKind.BED_ENTER
        elif seen.kind is EventKind.HEARTBEAT:
            reports[seen] = state[seen.device]
    return reports


_BED_MOVES = frozenset({EventKind.BED_EXIT, EventKind.BED_ENTER})


def deliveries(profile: SiteProfile, night: date, seed: int, observations: Iterable[Observation],
               faults: DeviceFaults, *, segment: str,
               lost: list[EventDelivery] | None = None) -> list[Delivery]:
    """What reaches the broker, and when: skewed clocks, late and duplicate messages, outages.

    An event lost on the way (``lost_fraction``) is not delivered, nor resent; it is
    appended to ``lost`` (when given) for the record. The truth keeps what happened.
    """
    site, behaviour = profile.site, profile.devices
    specs = {spec.id: spec for spec in profile.device_specs}
    observed = sorted(observations, key=lambda o: (o.ts, o.device, o.kind))
    occupied = bed_states(observed, {s.id for s in specs.values() if s.kind is DeviceKind.BED})
    by_device: dict[str, list[Observation]] = defaultdict(list)
    for seen in observed:
        if not faults.is_offline(seen.device, seen.ts):
            by_device[seen.device].append(seen)
    rng = stream(seed, site, segment, "network")
    # Its own stream: a run with another loss rate keeps every other draw as it was.
    losses = stream(seed, site, segment, "loss")
    planned: list[Delivery] = []
    for device in sorted(by_device):
        battery = battery_level(profile, specs[device], night, seed)
        skew = timedelta(seconds=stream(seed, site, segment, "clock", device).uniform(
            -behaviour.clock_skew_s, behaviour.clock_skew_s))
        for n, seen in enumerate(by_device[device], start=1):
            payload: dict[str, object] = {
                "id": f"{seed}-{segment}-{n:05d}", "ts": _iso(seen.ts + skew),
                "kind": str(seen.kind), "battery": battery}
            state = occupied.get(seen)
            if state is not None:
                payload["occupied"] = state
            at = seen.ts + timedelta(seconds=rng.uniform(*behaviour.latency_s))
            delayed = rng.random() < behaviour.delayed_fraction
            if delayed:
                at += timedelta(seconds=rng.uniform(*behaviour.delay_s))
            resent = rng.random() < behaviour.duplicate_fraction
            again = at + timedelta(seconds=rng.uniform(0.5, 30)) if resent else None
            if losses.random() < behaviour.lost_fraction:
                if lost is not None:
                    lost.append(EventDelivery(at, site, device, payload, delayed=delayed))
                continue
            planned.append(EventDelivery(at, site, device, payload, delayed=delayed))
            if again is not None:
                planned.append(EventDelivery(again, site, device, payload, duplicate=True))
    if faults.offline is not None and faults.offline.announced:
        spell = faults.offline
        planned.append(StatusDelivery(spell.start, site, spell.device.id, Presence.OFFLINE))
        planned.append(StatusDelivery(spell.end, site, spell.device.id, Presence.ONLINE))
    return sort_deliveries(planned)


def sort_deliveries(planned: Sequence[Delivery]) -> list[Delivery]:
    return sorted(planned, key=lambda d: (d.at, d.site, d.device, _order(d)))


def _order(delivery: Delivery) -> str:
    if isinstance(delivery, StatusDelivery):
        return f"status:{delivery.presence}"
    return f"event:{delivery.payload['id']}:{int(delivery.duplicate)}"


def _between(rng: random.Random, low: datetime, high: datetime) -> datetime:
    if high <= low:
        return low
    return low + (high - low) * rng.random()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
