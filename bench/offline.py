"""The rules alone on planned nights: no broker, gateway or store, the same engine.

What ``bench/rules_offline.py`` and the property tests share: a profile as the rules see
it (``rule_layout``, ``rule_book``: the layout and site rules ``nattero simulate``
provisions), a plan's events (``planned_events``), the flats' routines learned from the
nights before (``learned_routines``), and the alerts as the store would record them,
first trigger and call time (``alert_records``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.events import Event, EventKind
from core.intents import Escalate, Intent, Trigger
from core.night_window import NightWindow
from rules import (
    BasisKind,
    DeviceInfo,
    MonitoringBasis,
    RoomInfo,
    RuleBook,
    RuleOverride,
    SiteLayout,
)
from rules.routines import FlatRoutine, learn_routines
from simulators.behaviour import plan_day, plan_night
from simulators.ground_truth import AlertRecord
from simulators.plan import EventDelivery, NightPlan
from simulators.profile import SiteProfile

__all__ = ["alert_records", "learned_routines", "planned_events", "rule_book", "rule_layout"]


def rule_layout(profile: SiteProfile, nights: Sequence[date]) -> SiteLayout:
    """The site as provisioned: a flat monitored on any of ``nights`` has a consent, and a
    flat's corridor is the first common room on its route."""
    rooms = {room.id: RoomInfo(room.kind, room.label,
                               (MonitoringBasis(BasisKind.CONSENT),)
                               if any(room.monitored_on(d) for d in nights) else (),
                               corridor=room.route[0] if room.route else None)
             for room in profile.rooms}
    devices = {d.id: DeviceInfo(d.room, d.kind, d.heartbeat_s) for d in profile.device_specs}
    return SiteLayout(profile.site, NightWindow.parse(profile.night, ZoneInfo(profile.tz)),
                      rooms, devices)


def rule_book(profile: SiteProfile) -> RuleBook:
    return RuleBook(site={rule: RuleOverride(spec.enabled, spec.minutes, spec.severity)
                          for rule, spec in profile.rules.items()})


def planned_events(plans: Iterable[NightPlan]) -> list[Event]:
    """Every event the plans deliver (lost ones are not delivered), as the gateway stores
    it, in no particular order."""
    events: list[Event] = []
    for plan in plans:
        for delivery in plan.deliveries:
            if isinstance(delivery, EventDelivery):
                payload = delivery.payload
                events.append(Event(
                    delivery.site, delivery.device, payload["id"],
                    datetime.fromisoformat(payload["ts"].replace("Z", "+00:00")),
                    EventKind(payload["kind"]), payload.get("battery"),
                    payload.get("occupied")))
    return events


def learned_routines(profile: SiteProfile, first: date, nights: int, seed: int,
                     layout: SiteLayout) -> dict[str, FlatRoutine]:
    """The routines a site learns in the ``nights`` nights before ``first`` (the same
    residents: a flat's temperament follows the seed)."""
    history: list[NightPlan] = []
    for i in range(nights):
        night = first - timedelta(days=nights - i)
        history += [plan_night(profile, night, seed), plan_day(profile, night, seed)]
    until = layout.night.bounds(first)[0]
    return learn_routines(layout, planned_events(history), until)


def alert_records(intents: Iterable[Intent]) -> list[AlertRecord]:
    """One record per situation: its first trigger, and when it became a call (its first
    ``call`` trigger, or its escalation: the store opens a situation that had ended by
    itself again as a call when the rules escalate it after all)."""
    first: dict[str, Trigger] = {}
    called: dict[str, datetime] = {}
    for intent in intents:
        key = intent.episode_key
        if isinstance(intent, Trigger) and key not in first:
            first[key] = intent
        if key not in first or key in called:
            continue  # a call stays a call
        if (isinstance(intent, Trigger) and intent.call) or isinstance(intent, Escalate):
            called[key] = intent.ts
    return [AlertRecord(t.site, t.room, t.rule.value, t.ts, called_at=called.get(key))
            for key, t in first.items()]
