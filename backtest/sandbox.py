"""A site's stored events replayed through the rules engine in a sandbox: alerts in memory.

The same engine the live pipeline runs (``rules.RulesEngine``, its public entry points
only), fed the way the live runtime feeds it (``rules.runtime``): every event in arrival
order at ``min(ts, arrival)``; one stamped beyond the future skew, or older than the
re-ordering window, is not evaluated; a site that was live (events arriving close to their
own time) has its timers fired on the arrival clock, as the runtime's ticker fires them on
wall time, while a replayed night (a simulation, a restored backup) runs on event time.

The intents are folded into alerts here, as ``ingest.alert_intents`` folds them into the
alerts table (one alert per episode; a merge grows it; a call or an escalation makes it a
call; a clear closes a quiet situation, "returned by itself"), except that nobody
acknowledges or resolves: what staff did is the recorded alerts' business. Nothing here
touches the store, and nothing is announced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.alerts import DEVICE_RULES, RuleName
from core.events import Event, EventKind
from core.intents import Clear, Escalate, Intent, Trigger
from ingest.backtest import HeartbeatRun
from rules import DeviceInfo, RuleBook, RuleOverride, RulesEngine, SiteLayout
from rules.runtime import FUTURE_SKEW, GRACE, HISTORY, LIVE_WITHIN

__all__ = ["Arrival", "SandboxAlert", "replay"]


@dataclass(slots=True)
class SandboxAlert:
    """What the alerts table would have held of one episode."""

    room: str
    device: str
    rule: RuleName
    episode_key: str
    first_ts: datetime
    last_ts: datetime
    called_at: datetime | None = None
    cleared_at: datetime | None = None
    count: int = 1
    keys: set[str] = field(default_factory=set)


class _Fold:
    """Intents into alerts, in the order they come (``ingest.alert_intents``' semantics)."""

    def __init__(self) -> None:
        self.alerts: list[SandboxAlert] = []
        self._by_key: dict[str, SandboxAlert] = {}

    def take(self, intents: Sequence[Intent]) -> None:
        for intent in intents:
            if isinstance(intent, Trigger):
                self._trigger(intent)
            elif isinstance(intent, Escalate):
                alert = self._by_key.get(intent.episode_key)
                if alert is not None and alert.cleared_at is None and alert.called_at is None:
                    alert.called_at = intent.ts
            else:
                self._clear(intent)

    def _open_fault(self, t: Trigger) -> SandboxAlert | None:
        # A device's outage is one alert however often it begins (as in the store).
        if t.rule not in DEVICE_RULES:
            return None
        return next((a for a in self.alerts if a.device == t.device and a.rule is t.rule
                     and a.cleared_at is None and a.episode_key != t.episode_key), None)

    def _trigger(self, t: Trigger) -> None:
        alert = self._by_key.get(t.episode_key) or self._open_fault(t)
        if alert is None:
            alert = SandboxAlert(t.room, t.device, t.rule, t.episode_key, t.ts, t.ts,
                                 t.ts if t.call else None, keys={t.event_key})
            self.alerts.append(alert)
            self._by_key[t.episode_key] = alert
            return
        if t.event_key in alert.keys:
            return  # the same trigger twice
        alert.keys.add(t.event_key)
        alert.count += 1
        alert.last_ts = max(alert.last_ts, t.ts)
        if t.call and alert.cleared_at is None and alert.called_at is None:
            alert.called_at = t.ts

    def _clear(self, c: Clear) -> None:
        if c.rule not in DEVICE_RULES:
            alert = self._by_key.get(c.episode_key)
            if alert is not None and alert.cleared_at is None and alert.called_at is None:
                alert.cleared_at = c.ts
            return
        for alert in self.alerts:
            if (alert.cleared_at is None and alert.first_ts <= c.ts
                    and (alert.episode_key == c.episode_key
                         or (alert.device == c.device and alert.rule is c.rule))):
                alert.cleared_at = c.ts


def _live(newest: datetime, arrived: datetime) -> bool:
    return abs(arrived - newest) <= LIVE_WITHIN


# Devices of a residents-only replay never fall silent (their alerts are not kept).
_NEVER_SILENT_S = 10**9


def _residents_only(layout: SiteLayout, book: RuleBook) -> tuple[SiteLayout, RuleBook]:
    """The layout and book for a replay of the resident rules alone: the same rooms, bases
    and resident settings; devices that never fall silent, so their machines cost nothing
    between events (the room machine reads neither heartbeats nor device settings)."""
    devices = {device: DeviceInfo(info.room, info.kind, _NEVER_SILENT_S)
               for device, info in layout.devices.items()}

    def resident(rules: Mapping[RuleName, RuleOverride]) -> dict[RuleName, RuleOverride]:
        return {rule: o for rule, o in rules.items() if rule not in DEVICE_RULES}

    return (replace(layout, devices=devices),
            RuleBook(site=resident(book.site),
                     rooms={room: resident(rules) for room, rules in book.rooms.items()}))


Arrival = tuple[Event, datetime] | HeartbeatRun


def replay(layout: SiteLayout, book: RuleBook, arrivals: Sequence[Arrival],
           until: datetime, *, device_rules: bool = True) -> list[SandboxAlert]:
    """The alerts ``arrivals`` (events with their arrival times, in arrival order) give under
    ``book``; a live site's timers are fired up to ``until`` at the end (the period's end,
    or now if it has not ended), a replayed night's up to its last event, as live.

    ``device_rules=False`` replays the resident rules alone, many times faster: a heartbeat,
    or a ``HeartbeatRun`` (``ingest.backtest.period_events_compact``), then only moves the
    site's clock (``advance`` to its time, as ``process`` would before evaluating it: every
    timer due by then fires, in deadline order, with its own deadline as its time), and no
    sensor-offline or low-battery alert is returned. The resident alerts are the same (the
    room machine gets no heartbeats, and its clock moves as it would). With
    ``device_rules=True`` every heartbeat must be given one by one."""
    site = layout.site
    known = layout.devices
    if not device_rules:
        layout, book = _residents_only(layout, book)
    engine = RulesEngine({site: layout}, {site: book}, history=HISTORY)
    fold = _Fold()
    newest: tuple[datetime, datetime] | None = None  # (latest evaluated time, its arrival)
    heartbeat = EventKind.HEARTBEAT
    for item in arrivals:
        if isinstance(item, HeartbeatRun):
            if device_rules:
                raise ValueError("a replay of the device rules needs every heartbeat")
            live = newest is not None and _live(*newest)
            if newest is None or item.at > newest[0]:
                newest = (item.at, item.arrived)
            if live or _live(*newest):
                fold.take(engine.advance(site, item.last_arrival - GRACE))
            fold.take(engine.advance(site, item.at))
            continue
        event, arrived = item
        if event.device not in known or event.ts - arrived > FUTURE_SKEW:
            continue
        at = min(event.ts, arrived)
        if newest is not None:
            live = _live(*newest)
            clock = arrived if live else newest[0]
            if at < clock - HISTORY:
                continue
            if live:
                # The ticker fires a live site's timers on wall time, between arrivals.
                fold.take(engine.advance(site, arrived - GRACE))
        if newest is None or at > newest[0]:
            newest = (at, arrived)
        if not device_rules and event.kind is heartbeat:
            fold.take(engine.advance(site, at))
        else:
            fold.take(engine.process(event if at == event.ts else replace(event, ts=at)))
    if newest is not None and _live(*newest):
        fold.take(engine.advance(site, until))
    if device_rules:
        return fold.alerts
    return [alert for alert in fold.alerts if alert.rule not in DEVICE_RULES]
