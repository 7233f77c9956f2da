"""Benchmark: a 30-night rule back-test of a 40-flat site (havnely from the simulators).

    python bench/backtest.py [--nights 30] [--seed 1] [--site bench-havnely-bt]

Against the local stack of ``nattero up``. The site (``--site``, rooms, bases and devices
from the havnely profile) gets ``--nights`` planned nights of havnely, and the heartbeat-only
days between them, stored once through the event writer (no rules: no alerts are recorded;
skipped when the site already holds them). Then it times ``backtest.run_backtest`` over the
whole period with one proposed change (``left_flat`` minutes 15 -> 20 for the whole site):
one read of the period's events, the resident rules replayed with the current settings and
with the proposed ones, and the comparison. ``--device-rules`` also times a change of a
device rule (``sensor_offline`` minutes 20), which replays the device rules too (every
heartbeat through the engine).

Prints one JSON object: ``seconds`` (the back-test, wall time), ``read_s`` (of it, the
one query of the period's events and the alerts), ``replay_cpu_s`` (this process's CPU
time for the whole back-test: the replays and the comparison, not the database's),
``load_1m`` (the machine's load when done: on a shared machine the wall time is only
comparable with it), ``events`` (replayed),
``nights``, ``flats``, ``alerts_current``, ``alerts_proposed`` (over the period),
``risky``, ``store_s`` (storing the nights, 0 when already stored) and, with
``--device-rules``, ``seconds_device_rules``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from backtest import RuleChange, run_backtest
from core.alerts import RuleName
from core.events import Event, EventKind
from core.settings import get_settings
from ingest.writer import Batch, EventWriter
from provisioning.layout import SiteLayout, apply_layout
from simulators.command import plan_run
from simulators.plan import EventDelivery
from simulators.profile import load_profile
from simulators.provisioner import layout

BATCH = 5000
# Past nights (events stamped in the future are not evaluated), across the end of DST.
START = date(2025, 10, 20)


def _store(dsn: str, site: str, nights: int, seed: int) -> tuple[int, float]:
    profile = load_profile("havnely")
    dates = [START + timedelta(days=i) for i in range(nights)]
    started = time.perf_counter()
    plans = plan_run([profile], dates, seed)
    arrived = datetime.now(UTC)
    events = [Event(site, d.device, d.payload["id"],
                    datetime.fromisoformat(d.payload["ts"].replace("Z", "+00:00")),
                    EventKind(d.payload["kind"]), d.payload.get("battery"),
                    d.payload.get("occupied"))
              for plan in plans for d in plan.deliveries if isinstance(d, EventDelivery)]
    writer = EventWriter(dsn)
    try:
        for at in range(0, len(events), BATCH):
            writer.write(Batch(events=[(e, arrived) for e in events[at:at + BATCH]]))
    finally:
        writer.close()
    return len(events), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--site", default="bench-havnely-bt2")
    parser.add_argument("--device-rules", action="store_true")
    args = parser.parse_args()

    settings = get_settings()
    dsn = settings.resolved_database_url()
    document = layout(load_profile("havnely"))
    document["site"] = args.site
    apply_layout(settings, SiteLayout.model_validate(document), actor="bench")
    first, last = START, START + timedelta(days=args.nights - 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE site = %s", (args.site,)).fetchone()
        store_s = 0.0
        if not row or not row[0]:
            _, store_s = _store(dsn, args.site, args.nights, args.seed)
        change = [RuleChange(RuleName.LEFT_FLAT, minutes=20)]
        cpu = time.process_time()
        test = run_backtest(conn, args.site, first, last, change)
        cpu = time.process_time() - cpu
        result = {
            "seconds": round(test.seconds, 2), "read_s": round(test.read_s, 2),
            "replay_cpu_s": round(cpu, 2), "load_1m": os.getloadavg()[0],
            "events": test.events, "nights": args.nights,
            "flats": sum(1 for r in document["rooms"] if r["kind"] == "flat"),
            "alerts_current": len(test.current), "alerts_proposed": len(test.proposed),
            "risky": test.risky, "store_s": round(store_s, 1),
        }
        if args.device_rules:
            device = run_backtest(conn, args.site, first, last,
                                  [RuleChange(RuleName.SENSOR_OFFLINE, minutes=20)])
            result["seconds_device_rules"] = round(device.seconds, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
