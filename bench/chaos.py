"""Chaos, the long run (issue 18 §5): a long night with faults at random moments.

The same night as the short run in ``tests/test_chaos.py`` (``tests/support/chaos.py``):
a replicated database with automatic failover, two central brokers and a site hub
bridged to each, two leased pipeline workers listening on both central brokers, two API
processes behind HAProxy and a night board on it; devices on the hub stream heartbeats
and open a new building exit every ``--exit-every`` seconds at each site.

Faults: from 5 s on, one component at a time is killed with SIGKILL and brought back
after 3–10 s (a killed worker is replaced by a new one), then 3–12 s pass before the
next; the components come in shuffled cycles of the five (database primary, worker,
API process, central broker, site hub), the same never twice in a row, and the primary
not again within 45 s of its restart (the old primary must have rejoined first). The
moments follow ``--seed``.
No fault starts in the last 15 s.

At the end, the same checks as the short run. Prints one JSON object: faults injected
and survived (and which), events sent, lost and stored twice, alerts (each once), and
the alert delay on the board (door opened → the board heard the alert): p50, p90, max,
and how many took over 15 s.

Run on a stack of its own, nothing else on the machine:

    NATTERO_STATE_DIR=/tmp/chaos NATTERO_PG_PORT=56900 NATTERO_MQTT_PORT=56950 \\
        python bench/chaos.py [--minutes 10] [--seed 1] [--sites 2] [--exit-every 6] \\
            [--logs FOLDER]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.settings import get_settings  # noqa: E402
from deploy import stack  # noqa: E402
from ingest.migrate import upgrade  # noqa: E402
from tests.support.brokers import redundant_brokers  # noqa: E402
from tests.support.chaos import COMPONENTS, Fault, Night  # noqa: E402
from tests.support.replicated import replicated_database  # noqa: E402

LAST_QUIET_S = 15.0
PRIMARY_REST_S = 45.0


def schedule(seconds: float, seed: int) -> list[Fault]:
    """Faults one at a time at random moments, the components in shuffled cycles; the
    primary is killed again only ``PRIMARY_REST_S`` after its last restart (the old
    primary must have rejoined as the synchronous secondary, or there is nothing to fail
    over to: two faults of the database at once, not one)."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    cycle: list[str] = []
    at = 5.0
    primary_back = -PRIMARY_REST_S
    while True:
        down = rng.uniform(3, 10)
        if at + down > seconds - LAST_QUIET_S:
            return faults
        allowed = [c for c in cycle if c != "primary" or at >= primary_back + PRIMARY_REST_S]
        if faults:
            allowed = [c for c in allowed if c != faults[-1].component]
        if not allowed:
            fresh = list(COMPONENTS)
            rng.shuffle(fresh)
            cycle += fresh
            continue
        component = allowed[0]
        cycle.remove(component)
        faults.append(Fault(component, round(at, 1), round(at + down, 1)))
        if component == "primary":
            primary_back = at + down
        at += down + rng.uniform(3, 12)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextlib.contextmanager
def _log_folder(kept: Path | None) -> Iterator[Path]:
    """The folder of the processes' logs: the one asked for, kept; else a temporary one."""
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
        yield kept
        return
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sites", type=int, default=2)
    parser.add_argument("--exit-every", type=float, default=6.0)
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep the workers', API processes' and balancer's logs in this "
                             "folder (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    seconds = args.minutes * 60
    faults = schedule(seconds, args.seed)

    settings = get_settings()
    stack.up(settings)  # the API processes' own checks use the stack's broker
    upgrade(settings.sqlalchemy_url())
    result: dict[str, object] = {"minutes": args.minutes, "seed": args.seed,
                                 "sites": args.sites, "faults_planned": len(faults)}
    try:
        with (replicated_database("chaos-bench", 230) as replicated,
              redundant_brokers("chaos-bench-brokers", settings.mqtt_port + 200) as topology,
              _log_folder(args.logs) as folder,
              Night(replicated, topology, folder, seconds=seconds, sites=args.sites,
                    exit_every_s=args.exit_every) as night):
            night.play(faults)
            outcome = night.outcome()
    except AssertionError as exc:
        result["error"] = f"a check failed: {exc}"
        print(json.dumps(result))
        raise SystemExit(1) from exc
    delays = outcome.delays_s
    result.update({
        "faults_injected": len(outcome.faults),
        "faults_survived": len(outcome.faults),
        "faults": outcome.faults,
        "events_sent": outcome.events_sent,
        "events_lost": outcome.events_lost,
        "events_stored_twice": outcome.events_doubled,
        "alerts": outcome.alerts,
        "alerts_each_once": True,
        "alert_delay_s": {"p50": round(statistics.median(delays), 2),
                          "p90": round(_percentile(delays, 0.9), 2),
                          "max": round(max(delays), 2)},
        "alerts_over_15_s": sum(d > 15 for d in delays),
        # Which faults the slowest alerts met: the door's moment, beside the fault list.
        "slowest_alerts": [{"door_opened_at_s": round(at, 1), "delay_s": round(delay, 2)}
                           for at, delay in outcome.slowest(5)],
    })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
