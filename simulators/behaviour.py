"""Plan a site's night: residents, devices and network, as time-ordered deliveries + truth.

``plan_night(profile, night, seed)`` is a pure function: the same arguments give the same
plan, in any process, whatever else is simulated alongside. The day between two nights
(``plan_day``) carries only heartbeats, so devices do not look dead to a rules engine that
runs on event time.
"""

from __future__ import annotations

from datetime import date, timedelta

from core.events import RoomKind
from simulators.devices import (
    DeviceFaults,
    deliveries,
    fault_episodes,
    flapping_observations,
    heartbeats,
    night_faults,
)
from simulators.plan import EventDelivery, NightPlan
from simulators.profile import SiteProfile
from simulators.residents import NightContext, Observation, residents_night

__all__ = ["plan_day", "plan_night"]


def plan_night(profile: SiteProfile, night: date, seed: int) -> NightPlan:
    """The night window beginning on the evening of ``night``."""
    start, end = profile.night_window(night)
    faults = night_faults(profile, night, seed, start, end)
    broken_exits = {spell.device.room for spell in (faults.offline, faults.flapping)
                    if spell is not None}
    exits = tuple(room.id for room in profile.rooms
                  if room.kind is RoomKind.EXIT and room.id not in broken_exits)
    ctx = NightContext(profile=profile, night=night, seed=seed, start=start, end=end,
                       unreliable_rooms=faults.unreliable_rooms, quiet=faults.quiet(),
                       usable_exits=exits)
    episodes, observations = residents_night(ctx)
    episodes += fault_episodes(profile, night, seed, faults, start, end)
    if faults.flapping is not None:
        observations += flapping_observations(faults.flapping, seed, profile.site, night)
    segment = f"{night:%Y%m%d}n"
    for device in profile.device_specs:
        observations += heartbeats(profile, device, seed, start, end, segment=segment)
    lost: list[EventDelivery] = []
    planned = deliveries(profile, night, seed, observations, faults, segment=segment, lost=lost)
    return NightPlan(site=profile.site, night=night, start=start, end=end,
                     deliveries=tuple(planned),
                     episodes=tuple(sorted(episodes, key=lambda e: (e.start, e.room, e.kind))),
                     lost=tuple(lost))


def plan_day(profile: SiteProfile, night: date, seed: int) -> NightPlan:
    """Heartbeats from the end of ``night`` to the start of the next one; not paced."""
    start = profile.night_window(night)[1]
    end = profile.night_window(night + timedelta(days=1))[0]
    segment = f"{night:%Y%m%d}d"
    observations: list[Observation] = []
    for device in profile.device_specs:
        observations += heartbeats(profile, device, seed, start, end, segment=segment)
    lost: list[EventDelivery] = []
    planned = deliveries(profile, night, seed, observations, DeviceFaults(), segment=segment,
                         lost=lost)
    return NightPlan(site=profile.site, night=night, start=start, end=end,
                     deliveries=tuple(planned), paced=False, lost=tuple(lost))
