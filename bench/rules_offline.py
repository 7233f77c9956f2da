"""The rules alone on the bundled simulated nights: alert quality in seconds, no stack.

Plans ``--nights`` nights of the five bundled sites with ``--seed`` (the same plan
``nattero simulate`` and ``bench/nights.py`` publish), feeds every planned event once, in
the engine's own order, into a fresh ``RulesEngine``, and scores the alerts against the
ground truth with the same scorer as ``bench/nights.py``. No broker, gateway or store:
delivery faults are limited to what the plan holds (lost messages are not sent, late ones
are placed at their own time), so this is the rules' quality on perfect delivery; use
``bench/nights.py`` for the whole pipeline. An alert is a call from its first ``call``
trigger or its escalation, as the store records ``called_at``.

    python bench/rules_offline.py [--nights 7] [--seed 1] [--learn 14]

The flats' routines (``rules.routines``) are learned from ``--learn`` nights before the
scored ones (the same residents), as a site would after its learning phase.

Prints one JSON object: ``needless_per_site_night``, ``recall``, ``needed``, ``caught``,
``per_site`` (``needless_per_night``, ``needed``, ``caught``, ``calls``, ``quiet``) and
``missed`` (site, kind, room, start of every needed-help episode without a call), and the
detection delays per kind of need (``delay_s``, ``delay_s_per_site``: call time minus need
onset, as ``bench/nights.py`` reports them).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.offline import (  # noqa: E402
    alert_records,
    learned_routines,
    planned_events,
    rule_book,
    rule_layout,
)
from rules import RulesEngine  # noqa: E402
from rules.routines import MIN_NIGHTS  # noqa: E402
from simulators.command import DEFAULT_START, plan_run  # noqa: E402
from simulators.ground_truth import GroundTruth, score  # noqa: E402
from simulators.profile import load_profile, profile_names  # noqa: E402
from simulators.quality import quality  # noqa: E402

LEARN_NIGHTS_DEFAULT = MIN_NIGHTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--learn", type=int, default=LEARN_NIGHTS_DEFAULT,
                        help="nights before the scored ones that the flats' routines are "
                             "learned from (0: no routines, the site's defaults)")
    args = parser.parse_args()

    profiles = [load_profile(name) for name in profile_names()]
    dates = [DEFAULT_START + timedelta(days=i) for i in range(args.nights)]
    plans = plan_run(profiles, dates, args.seed)
    layouts = {p.site: rule_layout(p, dates) for p in profiles}
    engine = RulesEngine(layouts, {p.site: rule_book(p) for p in profiles})
    if args.learn:
        for profile in profiles:
            engine.update_routines(profile.site, learned_routines(
                profile, DEFAULT_START, args.learn, args.seed, layouts[profile.site]))
    truth = GroundTruth()
    for plan in plans:
        if plan.paced:
            truth.add_night(plan.site, plan.night, plan.episodes)
    events = sorted(planned_events(plans), key=lambda e: (e.ts, e.device, e.id))
    intents = [intent for event in events for intent in engine.process(event)]
    for site in layouts:
        intents += engine.advance(site, events[-1].ts + timedelta(hours=1))
    records = alert_records(intents)
    scored = score(truth, records)
    delays = quality(truth, records)
    print(json.dumps({
        "nights": args.nights, "seed": args.seed, "sites": len(layouts),
        "needless_per_site_night": round(scored.needless / args.nights / len(layouts), 2),
        "recall": scored.recall, "needed": scored.needed, "caught": scored.caught,
        "per_site": {site: {"needless_per_night": round(s.needless / args.nights, 2),
                            "needed": s.needed, "caught": s.caught,
                            "calls": s.calls, "quiet": s.quiet}
                     for site, s in scored.sites.items()},
        "delay_s": delays.total_json()["delay_s"],
        "delay_s_per_site": {site: delays.site_json(site)["delay_s"] for site in layouts},
        "missed": [{"site": e.site, "kind": str(e.kind), "room": e.room,
                    "start": e.start.isoformat()}
                   for s in scored.sites.values() for e in s.missed],
    }))


if __name__ == "__main__":
    main()
