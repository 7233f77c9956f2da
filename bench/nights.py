"""Simulated nights per minute through the whole pipeline, all five pilot sites together.

Runs against the local stack (`nattero up`): provisions fresh copies of the five bundled
sites (suffix ``-b<random>``), starts gateway + rules in this process (restricted to those
sites), plays N nights at ``--speed max`` with each device's own MQTT account, waits until
every event sent is committed and the alerts have settled, and scores them against the
ground truth.

Wall time runs from the first publish to the poll that found the last event committed
(polled every 50 ms), so it covers broker, gateway, store and rules.

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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.settings import Settings, get_settings  # noqa: E402
from nattero.pipeline import start_pipeline  # noqa: E402
from nattero.scoring import StoredAlerts  # noqa: E402
from simulators.command import run_simulation  # noqa: E402
from simulators.credentials import CredentialStore  # noqa: E402
from simulators.devices import DeliveryRates  # noqa: E402
from simulators.plan import Delivery  # noqa: E402
from simulators.profile import profile_names  # noqa: E402
from simulators.publisher import PublishStats, publish  # noqa: E402


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
    args = parser.parse_args()
    rates = DeliveryRates(lost=args.lost, duplicated=args.duplicated, late=args.late)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    suffix = f"-b{uuid.uuid4().hex[:6]}"
    sites = [name + suffix for name in profile_names()]
    base = get_settings()
    settings = Settings(gateway_sites=sites, gateway_client_id=f"bench-nights{suffix}",
                        gateway_session_expiry_s=600, gateway_bridges=False)
    pipeline = start_pipeline(settings)
    stopwatch = _Stopwatch()
    alerts = StoredAlerts(base, poll_s=0.05)
    try:
        with tempfile.TemporaryDirectory() as folder:
            result = run_simulation(
                base, None, args.nights, "max", args.seed, site_suffix=suffix,
                credentials=CredentialStore(Path(folder) / "credentials.json"),
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
