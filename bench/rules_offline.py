"""The rules alone on the bundled simulated nights: alert quality in seconds, no stack.

Plans ``--nights`` nights of the five bundled sites with ``--seed`` (the same plan
``nattero simulate`` and ``bench/nights.py`` publish), feeds every planned event once, in
the engine's own order, into a fresh ``RulesEngine``, and scores the alerts against the
ground truth with the same scorer as ``bench/nights.py``. No broker, gateway or store:
delivery faults are limited to what the plan holds (lost messages are not sent, late ones
are placed at their own time), so this is the rules' quality on perfect delivery; use
``bench/nights.py`` for the whole pipeline. An alert is a call from its first ``call``
trigger or its escalation, as the store records ``called_at``.

    python bench/rules_offline.py [--nights 7] [--seed 1]

Prints one JSON object: ``needless_per_site_night``, ``recall``, ``needed``, ``caught``,
``per_site`` (``needless_per_night``, ``needed``, ``caught``, ``calls``, ``quiet``) and
``missed`` (site, kind, room, start of every needed-help episode without a call).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.events import Event, EventKind  # noqa: E402
from core.intents import Clear, Escalate, Intent, Trigger  # noqa: E402
from core.night_window import NightWindow  # noqa: E402
from rules import (  # noqa: E402
    BasisKind,
    DeviceInfo,
    MonitoringBasis,
    RoomInfo,
    RulesEngine,
    SiteLayout,
)
from simulators.command import DEFAULT_START, plan_run  # noqa: E402
from simulators.ground_truth import AlertRecord, GroundTruth, score  # noqa: E402
from simulators.plan import EventDelivery  # noqa: E402
from simulators.profile import load_profile, profile_names  # noqa: E402


class _Alert:
    """What the store would hold of one episode: first trigger, call time, cleared."""

    def __init__(self, trigger: Trigger) -> None:
        self.record = (trigger.site, trigger.room, trigger.rule.value, trigger.ts)
        self.called_at: datetime | None = None
        self.cleared = False

    def take(self, intent: Intent) -> None:
        if self.called_at is not None:
            return  # a call stays a call
        calls = ((isinstance(intent, Trigger) and intent.call)
                 or (isinstance(intent, Escalate) and not self.cleared))
        if calls:
            self.called_at = intent.ts
        elif isinstance(intent, Clear):
            self.cleared = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    profiles = [load_profile(name) for name in profile_names()]
    dates = [DEFAULT_START + timedelta(days=i) for i in range(args.nights)]
    plans = plan_run(profiles, dates, args.seed)
    layouts: dict[str, SiteLayout] = {}
    for profile in profiles:
        rooms = {room.id: RoomInfo(room.kind, room.label,
                                   (MonitoringBasis(BasisKind.CONSENT),)
                                   if any(room.monitored_on(d) for d in dates) else ())
                 for room in profile.rooms}
        devices = {d.id: DeviceInfo(d.room, d.kind, d.heartbeat_s) for d in profile.device_specs}
        layouts[profile.site] = SiteLayout(
            profile.site, NightWindow.parse(profile.night, ZoneInfo(profile.tz)), rooms, devices)
    truth = GroundTruth()
    events: list[Event] = []
    for plan in plans:
        if plan.paced:
            truth.add_night(plan.site, plan.night, plan.episodes)
        for delivery in plan.deliveries:
            if isinstance(delivery, EventDelivery):
                payload = delivery.payload
                events.append(Event(delivery.site, delivery.device, payload["id"],
                                    datetime.fromisoformat(payload["ts"].replace("Z", "+00:00")),
                                    EventKind(payload["kind"]), payload.get("battery")))
    events.sort(key=lambda e: (e.ts, e.device, e.id))

    engine = RulesEngine(layouts)
    intents: list[Intent] = []
    for event in events:
        intents += engine.process(event)
    for site in layouts:
        intents += engine.advance(site, events[-1].ts + timedelta(hours=1))
    alerts: dict[str, _Alert] = {}
    for intent in intents:
        if isinstance(intent, Trigger) and intent.episode_key not in alerts:
            alerts[intent.episode_key] = _Alert(intent)
        if intent.episode_key in alerts:
            alerts[intent.episode_key].take(intent)
    records = [AlertRecord(*a.record, called_at=a.called_at) for a in alerts.values()]
    scored = score(truth, records)
    print(json.dumps({
        "nights": args.nights, "seed": args.seed, "sites": len(layouts),
        "needless_per_site_night": round(scored.needless / args.nights / len(layouts), 2),
        "recall": scored.recall, "needed": scored.needed, "caught": scored.caught,
        "per_site": {site: {"needless_per_night": round(s.needless / args.nights, 2),
                            "needed": s.needed, "caught": s.caught,
                            "calls": s.calls, "quiet": s.quiet}
                     for site, s in scored.sites.items()},
        "missed": [{"site": e.site, "kind": str(e.kind), "room": e.room,
                    "start": e.start.isoformat()}
                   for s in scored.sites.values() for e in s.missed],
    }))


if __name__ == "__main__":
    main()
