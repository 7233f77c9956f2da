"""Simulated nights per minute through the whole pipeline, all five pilot sites together.

Runs against the local stack (`nattero up`): provisions fresh copies of the five bundled
sites (suffix ``-b<random>``), starts gateway + rules in this process (restricted to those
sites), plays N nights at ``--speed max`` with each device's own MQTT account, waits until
every event sent is committed and the alerts have settled, and scores them against the
ground truth.

Wall time runs from the first publish to the poll that found the last event committed
(polled every 50 ms), so it covers broker, gateway, store and rules.

``--learn N`` (default 14, ``rules.routines.MIN_NIGHTS``; 0: none) first stores N nights
(and days) of the same residents before the scored ones, as a site has after its learning
phase, and only then starts the pipeline: its start-up learns each flat's routine from
them, as ``bench/rules_offline.py --learn`` does. Without them the fresh sites use the site
defaults throughout.

Prints one JSON object as the last line (keys in bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.offline import planned_events  # noqa: E402
from core.events import Event  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402
from ingest.writer import Batch, EventWriter  # noqa: E402
from nattero.pipeline import start_pipeline  # noqa: E402
from nattero.scoring import StoredAlerts  # noqa: E402
from rules.routines import MIN_NIGHTS  # noqa: E402
from simulators.behaviour import plan_day, plan_night  # noqa: E402
from simulators.command import DEFAULT_START, run_simulation  # noqa: E402
from simulators.credentials import CredentialStore  # noqa: E402
from simulators.devices import DeliveryRates  # noqa: E402
from simulators.plan import Delivery, NightPlan  # noqa: E402
from simulators.profile import load_profile, profile_names  # noqa: E402
from simulators.provisioner import provision_sites  # noqa: E402
from simulators.publisher import PublishStats, publish  # noqa: E402

HISTORY_BATCH = 5000


def _store_history(settings: Settings, rates: DeliveryRates, suffix: str, nights: int,
                   seed: int, credentials: CredentialStore) -> int:
    """Provision the renamed sites and store ``nights`` nights and days of their residents
    before ``DEFAULT_START`` (the same residents: a flat's temperament follows the seed),
    as they arrived; returns how many events."""
    originals = [rates.applied_to(load_profile(name)) for name in profile_names()]
    provision_sites(settings, [p.model_copy(update={"site": p.site + suffix})
                               for p in originals], credentials)
    history: list[NightPlan] = []
    for profile in originals:
        for i in range(nights):
            night = DEFAULT_START - timedelta(days=nights - i)
            history += [plan_night(profile, night, seed), plan_day(profile, night, seed)]
    events = [Event(e.site + suffix, e.device, e.id, e.ts, e.kind, e.battery, e.occupied)
              for e in planned_events(history)]
    # Stored now, as a replayed history arrives: an arrival at the events' own time would
    # make the runtime take the site for live (its clock wall time) and leave the played
    # nights, days older, unevaluated.
    arrived = datetime.now(UTC)
    writer = EventWriter(settings.resolved_database_url())
    try:
        for at in range(0, len(events), HISTORY_BATCH):
            writer.write(Batch(events=[(e, arrived) for e in events[at:at + HISTORY_BATCH]]))
    finally:
        writer.close()
    return len(events)


class _Stopwatch:
    """A publisher wrapper that notes when the first message went out."""

    def __init__(self) -> None:
        self.first_sent: float | None = None

    def __call__(self, deliveries: Sequence[Delivery], *args: Any,
                 on_sent: Callable[[Delivery], None] | None = None, **kw: Any) -> PublishStats:
        def sent(delivery: Delivery) -> None:
            if self.first_sent is None:
                self.first_sent = time.monotonic()
            if on_sent is not None:
                on_sent(delivery)

        return publish(deliveries, *args, on_sent=sent, **kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lost", type=float, default=None,
                        help="share of events lost on the way (default: the profiles', 0.002)")
    parser.add_argument("--duplicated", type=float, default=None,
                        help="share of events delivered twice (default: the profiles', 0.005)")
    parser.add_argument("--late", type=float, default=None,
                        help="share delivered 5-120 s late, reordered (default: the profiles')")
    parser.add_argument("--learn", type=int, default=MIN_NIGHTS,
                        help="nights stored before the scored ones, that the flats' routines "
                             "are learned from (0: none, the site defaults)")
    args = parser.parse_args()
    rates = DeliveryRates(lost=args.lost, duplicated=args.duplicated, late=args.late)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    suffix = f"-b{uuid.uuid4().hex[:6]}"
    sites = [name + suffix for name in profile_names()]
    base = get_settings()
    settings = Settings(gateway_sites=sites, gateway_client_id=f"bench-nights{suffix}",
                        gateway_session_expiry_s=600, gateway_bridges=False)
    stopwatch = _Stopwatch()
    alerts = StoredAlerts(base, poll_s=0.05)
    with tempfile.TemporaryDirectory() as folder:
        credentials = CredentialStore(Path(folder) / "credentials.json")
        history = (_store_history(base, rates, suffix, args.learn, args.seed, credentials)
                   if args.learn else 0)
        pipeline = start_pipeline(settings)  # learns the routines from the history
        try:
            result = run_simulation(
                base, None, args.nights, "max", args.seed, site_suffix=suffix,
                credentials=credentials, provision=not args.learn,
                truth_out=Path(folder) / "truth.jsonl", fetch_alerts=alerts,
                publisher=stopwatch, progress=False, delivery=rates)
        finally:
            pipeline.stop()
    assert stopwatch.first_sent is not None and alerts.caught_up_at is not None
    wall = alerts.caught_up_at - stopwatch.first_sent
    events = sum(len(sent) for sent in result.sent_events.values())
    score, quality = result.score, result.quality
    assert score is not None and quality is not None
    per_site = {site.removesuffix(suffix): {
        "recall": s.recall, "needed": s.needed, "needless": s.needless,
        "device_alerts": s.device_alerts, "calls": s.calls, "quiet": s.quiet,
        "resident_alerts": s.resident_alerts, "lost": result.lost_events.get(site, 0),
        **quality.site_json(site)} for site, s in score.sites.items()}
    print(json.dumps({
        "nights_per_minute": round(args.nights / wall * 60, 2),
        "sites": len(sites),
        "nights": args.nights,
        "seed": args.seed,
        "learn_nights": args.learn,
        "history_events": history,
        "events": events,
        "messages": sum(result.stats.events.values()) + sum(result.stats.statuses.values()),
        "wall_s": round(wall, 2),
        "events_per_s": round(events / wall, 1),
        "recall": score.recall,
        "needed": score.needed,
        "caught": score.caught,
        "needless_alerts_per_night": round(score.needless / args.nights, 2),
        "quiet_alerts_per_night": round(
            sum(s.quiet for s in score.sites.values()) / args.nights, 2),
        "lost": sum(result.lost_events.values()),
        "rates": {"lost": args.lost, "duplicated": args.duplicated, "late": args.late},
        **quality.total_json(),
        "per_site": per_site,
    }))


if __name__ == "__main__":
    main()
