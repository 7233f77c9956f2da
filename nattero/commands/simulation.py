"""``nattero simulate``: play the pilot sites' nights over MQTT, like real devices, and score
the alerts the pipeline raised (read from the store by ``nattero.scoring``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nattero.commands.config import current_settings

if TYPE_CHECKING:
    from simulators.command import SimulationResult

__all__ = ["simulate"]


def simulate(
    site: Annotated[list[str] | None, typer.Option(
        "--site", help="site profile name or YAML path; repeat for several (default: all)")
    ] = None,
    nights: Annotated[int, typer.Option(min=1, help="nights to simulate")] = 1,
    speed: Annotated[str, typer.Option(
        help="'max', or a factor: 1 = live, 60 = a night in 9 minutes")] = "60",
    seed: Annotated[int, typer.Option(help="same seed, same nights")] = 1,
    start: Annotated[datetime, typer.Option(
        formats=["%Y-%m-%d"], help="the evening of the first night")
    ] = datetime(2026, 11, 23),
    truth_out: Annotated[Path | None, typer.Option(
        help="where to write the ground-truth log (JSON lines)")] = None,
    provision: Annotated[bool, typer.Option(
        help="create the sites, rooms and devices if missing")] = True,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print the score as JSON instead of progress and a table")] = False,
    lost: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="share of events lost on the way, e.g. 0.01 "
        "(default: each profile's, 0.002 unless it says)")] = None,
    duplicated: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="share of events delivered twice "
        "(default: each profile's, 0.005 unless it says)")] = None,
    late: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="share of events delivered 5-120 s late, after later ones "
        "(default: each profile's, 0.01 unless it says)")] = None,
    baseline_nights: Annotated[int, typer.Option(
        min=0, max=90, help="staff logged their flat-check rounds on this many nights before "
        "the first one (the site's baseline period), and log those they still walk; "
        "0: no rounds logged")] = 0,
    respond: Annotated[bool, typer.Option(
        help="simulated night staff take and resolve every call, with what they found "
        "(outcomes from the ground truth), so response times and outcomes exist")] = False,
) -> None:
    """Play the five pilot sites' nights over MQTT, like real devices, and score the alerts."""
    from rich.console import Console

    from nattero.scoring import answer_calls, fetch_alerts
    from simulators.command import print_summary, run_simulation
    from simulators.devices import DeliveryRates
    from simulators.errors import SpeedError
    from simulators.pacing import parse_speed

    try:
        factor = parse_speed(speed)
    except SpeedError as exc:
        raise typer.BadParameter(str(exc), param_hint="--speed") from exc
    console = Console(stderr=as_json)
    settings = current_settings()
    result = run_simulation(settings, site, nights, factor, seed, start.date(),
                            truth_out=truth_out, provision=provision,
                            fetch_alerts=fetch_alerts(settings), console=console,
                            progress=not as_json,
                            delivery=DeliveryRates(lost=lost, duplicated=duplicated, late=late),
                            baseline_nights=baseline_nights,
                            answer_calls=answer_calls(settings) if respond else None)
    if as_json:
        typer.echo(json.dumps(_summary(result)))
    else:
        print_summary(result, console)


def _summary(result: SimulationResult) -> dict[str, Any]:
    """What ``--json`` prints: the run, its overall score and each site's."""
    per_site: dict[str, dict[str, Any]] = {}
    for site in result.sites:
        entry: dict[str, Any] = {"events_sent": result.stats.events.get(site, 0)}
        entry["lost"] = result.lost_events.get(site, 0)
        scored = result.score.sites.get(site) if result.score else None
        if scored is not None:
            entry |= {"needed": scored.needed, "caught": scored.caught, "recall": scored.recall,
                      "resident_alerts": scored.resident_alerts, "needless": scored.needless,
                      "device_alerts": scored.device_alerts}
        if result.quality is not None and site in result.quality.sites:
            entry |= result.quality.site_json(site)
        per_site[site] = entry
    return {"nights": [night.isoformat() for night in result.nights], "seed": result.seed,
            "answered": result.answered,
            "recall": result.score.recall if result.score else None,
            "needless": result.score.needless if result.score else None,
            "truth": str(result.truth_path), "per_site": per_site,
            "total": result.quality.total_json() if result.quality else None}
