"""Per-device state and the technical rules: sensor offline and low battery.

These run day and night and whether or not a flat is monitored: they concern the
equipment, not the resident. Each can still be switched off per room.

Presence (``rules.states.DevicePresence``)
    Every event, and an ``online`` status, is a sign of life: it moves UNHEARD or OFFLINE
    to ONLINE (an OFFLINE device that had an alert gets a Clear at that instant) and
    re-arms the silence timer at ts + allowed silence (2x the device's heartbeat
    interval, or the rule's minutes if set). The timer firing, or an ``offline`` status,
    moves the device to OFFLINE with a Trigger ``sensor_offline`` whose episode starts at
    that instant (the deadline, or the status time). A device the engine never heard from
    is UNHEARD from the moment the engine's clock for the site started (its first input),
    so a dead-on-arrival device is reported too.

Battery (``rules.states.BatteryLevel``)
    A reading below 15 % while OK: LOW and one Trigger ``low_battery`` (severity notice);
    no further notice until a reading of 20 % or more (RECHARGE, with a Clear of that
    notice). Readings in between change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Self, TypeGuard

from core.events import Event, EventKind, Presence, StatusChange
from core.intents import Clear, Intent, Trigger
from rules.machine import Input, SiteContext, event_key, iso
from rules.settings import LOW_BATTERY_BELOW, LOW_BATTERY_REARM_AT, RuleName, Severity
from rules.states import (
    BATTERY,
    PRESENCE,
    BatteryLevel,
    BatteryMove,
    DevicePresence,
    PresenceMove,
    step,
)

__all__ = ["DeviceMachine", "allowed_silence"]


def _heartbeat(item: Input) -> TypeGuard[Event]:
    return isinstance(item, Event) and item.kind is EventKind.HEARTBEAT


def allowed_silence(ctx: SiteContext, device: str) -> timedelta:
    """How long ``device`` may be silent before it is offline (read once per context)."""
    silence = ctx.silences.get(device)
    if silence is None:
        info = ctx.device(device)
        minutes = ctx.setting(RuleName.SENSOR_OFFLINE, info.room).minutes
        silence = (timedelta(minutes=minutes) if minutes is not None
                   else timedelta(seconds=2 * info.heartbeat_s))
        ctx.silences[device] = silence
    return silence


@dataclass(slots=True)
class DeviceMachine:
    device: str
    presence: DevicePresence = DevicePresence.UNHEARD
    silent_at: datetime | None = None
    offline_episode: str | None = None  # the sensor_offline alert raised, if any
    battery: BatteryLevel = BatteryLevel.OK
    battery_episode: str | None = None  # the low_battery notice raised, if any
    # A device resumed from a summary of its history (``heard``): the last sign of life
    # that summary covers. No input older than it can bring the silence timer forward.
    heard_until: datetime | None = None

    @classmethod
    def unheard(cls, device: str, since: datetime, ctx: SiteContext) -> DeviceMachine:
        return cls(device, silent_at=since + allowed_silence(ctx, device))

    @classmethod
    def heard(cls, device: str, until: datetime, ctx: SiteContext) -> DeviceMachine:
        """A device known to have been heard, with no silence of the allowed length, from
        the site clock's start until ``until``, its battery never low: what its full
        history of plain heartbeats would have left (the replay on start skips them)."""
        return cls(device, DevicePresence.ONLINE, until + allowed_silence(ctx, device),
                   heard_until=until)

    def clone(self) -> Self:
        # Every input of a device is snapshotted: a plain constructor call is several
        # times cheaper than copy.copy's reduce protocol (all fields are immutable values).
        return type(self)(self.device, self.presence, self.silent_at, self.offline_episode,
                          self.battery, self.battery_episode, self.heard_until)

    def apply(self, item: Input, ctx: SiteContext) -> list[Intent]:
        if isinstance(item, StatusChange) and item.presence is Presence.OFFLINE:
            if self.presence is DevicePresence.OFFLINE:
                return []
            self.silent_at = None
            return self._lost(
                ctx, item.ts, f"{ctx.site}/{self.device}/status/offline/{iso(item.ts)}",
                "device reported offline",
            )
        intents = self._sign_of_life(ctx, item.ts)
        if isinstance(item, Event) and item.battery is not None:
            intents += self._battery(ctx, item)
        return intents

    def _sign_of_life(self, ctx: SiteContext, ts: datetime) -> list[Intent]:
        intents: list[Intent] = []
        if self.presence is DevicePresence.UNHEARD:
            self.presence = step(PRESENCE, self.presence, PresenceMove.FIRST_HEARD)
        elif self.presence is DevicePresence.OFFLINE:
            self.presence = step(PRESENCE, self.presence, PresenceMove.RECOVERED)
            if self.offline_episode is not None:
                intents.append(self._clear(ctx, RuleName.SENSOR_OFFLINE, self.offline_episode, ts))
                self.offline_episode = None
        # In ts order a sign of life is never older than ``heard_until``; one placed before
        # it (a late input, evaluated against a resumed state) must not shorten the timer.
        latest = ts if self.heard_until is None or ts > self.heard_until else self.heard_until
        self.silent_at = latest + allowed_silence(ctx, self.device)
        return intents

    def _lost(self, ctx: SiteContext, ts: datetime, key: str, detail: str) -> list[Intent]:
        self.presence = step(PRESENCE, self.presence, PresenceMove.LOST)
        room = ctx.device(self.device).room
        setting = ctx.setting(RuleName.SENSOR_OFFLINE, room)
        if not setting.enabled:
            return []
        self.offline_episode = ctx.episode_key(room, RuleName.SENSOR_OFFLINE, ts, self.device)
        return [
            Trigger(
                site=ctx.site,
                room=room,
                device=self.device,
                rule=RuleName.SENSOR_OFFLINE,
                severity=setting.severity,
                ts=ts,
                episode_key=self.offline_episode,
                event_key=key,
                late=False,
                detail=detail,
                # A dead sensor is work for the technician, not a call to night staff: it
                # goes to the pre-shift check and the board's maintenance list, quietly,
                # unless the site asks for it as a call (severity high).
                call=setting.severity is Severity.HIGH,
            )
        ]

    def _battery(self, ctx: SiteContext, event: Event) -> list[Intent]:
        assert event.battery is not None
        room = ctx.device(self.device).room
        if self.battery is BatteryLevel.OK and event.battery < LOW_BATTERY_BELOW:
            self.battery = step(BATTERY, self.battery, BatteryMove.DROP)
            setting = ctx.setting(RuleName.LOW_BATTERY, room)
            if not setting.enabled:
                return []
            self.battery_episode = ctx.episode_key(
                room, RuleName.LOW_BATTERY, event.ts, self.device
            )
            return [
                Trigger(
                    site=ctx.site,
                    room=room,
                    device=self.device,
                    rule=RuleName.LOW_BATTERY,
                    severity=setting.severity,
                    ts=event.ts,
                    episode_key=self.battery_episode,
                    event_key=event_key(event),
                    late=False,
                    detail=f"battery at {event.battery} %",
                )
            ]
        if self.battery is BatteryLevel.LOW and event.battery >= LOW_BATTERY_REARM_AT:
            self.battery = step(BATTERY, self.battery, BatteryMove.RECHARGE)
            if self.battery_episode is not None:
                episode, self.battery_episode = self.battery_episode, None
                return [self._clear(ctx, RuleName.LOW_BATTERY, episode, event.ts)]
        return []

    def _clear(self, ctx: SiteContext, rule: RuleName, episode: str, ts: datetime) -> Clear:
        return Clear(
            site=ctx.site,
            room=ctx.device(self.device).room,
            device=self.device,
            rule=rule,
            episode_key=episode,
            ts=ts,
        )

    def next_deadline(self) -> datetime | None:
        return self.silent_at

    def fire_next(self, ctx: SiteContext) -> list[Intent]:
        assert self.silent_at is not None
        deadline, self.silent_at = self.silent_at, None
        silence = allowed_silence(ctx, self.device)
        return self._lost(
            ctx, deadline, f"{ctx.site}/{self.device}/silence/{iso(deadline)}",
            f"no event or heartbeat for {int(silence.total_seconds())} s",
        )

    def is_open(self, episode_key: str) -> bool:
        return episode_key in (self.offline_episode, self.battery_episode)

    def redundant(self, before: Input, item: Input, after: Input, ctx: SiteContext) -> bool:
        """A heartbeat between two heartbeats with the same battery reading, closer together
        than the allowed silence: each only re-arms the silence timer, and without the
        middle one the timer still cannot fire between its neighbours, whatever arrives
        late in between (a late input re-arms it too). Forgetting it keeps a device that
        beats every second from filling the engine's memory for the 12 hours it keeps."""
        return (
            _heartbeat(before) and _heartbeat(item) and _heartbeat(after)
            and before.battery == item.battery == after.battery
            and after.ts - before.ts < allowed_silence(ctx, self.device)
        )
