"""A simulation run: provision the pilot sites, play their nights over MQTT, score them.

``run_simulation`` does the work and returns a ``SimulationResult`` (``nattero simulate``,
the demo, tests and the bench call it); ``print_summary`` shows it. Alerts are read through
the ``fetch_alerts`` argument (the store is the caller's business); without it the summary
says "alerts: not available" and nothing is scored. A hook that also
``wait_caught_up`` (``CatchesUp``) is first given the chance to wait until the pipeline
has stored every event sent, so that the score is not taken halfway through the night.

``site_suffix`` provisions and plays renamed copies of the sites (``solsikken-t1a2``):
the nights are planned from the original profiles, so a copy gets the very same night.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from simulators.behaviour import plan_day, plan_night
from simulators.credentials import CredentialStore
from simulators.devices import DeliveryRates, sort_deliveries
from simulators.errors import CredentialsError, SimulatorError
from simulators.ground_truth import AlertRecord, GroundTruth, Score, score
from simulators.pacing import Timetable, parse_speed
from simulators.plan import Delivery, EventDelivery, NightPlan
from simulators.profile import SiteProfile, load_profile, profile_names
from simulators.publisher import DeviceAccount, PublishStats, publish
from simulators.quality import Quality, quality
from simulators.responses import CallAnswer, plan_answers

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["DEFAULT_START", "AnswerCalls", "CatchesUp", "FetchAlerts", "SentEvent",
           "SimulationResult", "plan_run", "print_summary", "run_simulation"]

DEFAULT_START = date(2026, 11, 23)
FetchAlerts = Callable[[str, datetime, datetime], list[AlertRecord]]
# Stores simulated staff's answers to the calls (taken, resolved, outcome); returns how many.
AnswerCalls = Callable[[Sequence[CallAnswer]], int]
Publisher = Callable[..., PublishStats]
_SUFFIX = re.compile(r"^[a-z0-9-]{0,22}$")


@dataclass(frozen=True, slots=True)
class SentEvent:
    """One distinct event the simulation published (duplicates are sent, stored once)."""

    device: str
    id: str
    ts: str             # as in the payload, RFC 3339


@runtime_checkable
class CatchesUp(Protocol):
    """An alert source that can wait until the pipeline has stored what was sent."""

    def wait_caught_up(self, result: SimulationResult, timeout: float) -> None: ...


@dataclass
class SimulationResult:
    sites: list[str]
    nights: list[date]
    seed: int
    speed: float
    start: datetime                      # first night's start (UTC)
    end: datetime                        # last night's end (UTC)
    truth: GroundTruth
    truth_path: Path | None
    stats: PublishStats
    score: Score | None = None
    quality: Quality | None = None
    lost_events: dict[str, int] = field(default_factory=dict)    # per site, never published
    planned_events: dict[str, int] = field(default_factory=dict)
    # per site, every distinct event sent: what the store must hold before scoring
    sent_events: dict[str, list[SentEvent]] = field(default_factory=dict)
    alerts: list[AlertRecord] = field(default_factory=list)
    answered: int | None = None          # calls simulated staff answered (None: not asked)


def plan_run(profiles: Sequence[SiteProfile], nights: Sequence[date], seed: int
             ) -> list[NightPlan]:
    """Every site's nights, and the heartbeat-only days between consecutive nights."""
    plans: list[NightPlan] = []
    for profile in profiles:
        for i, night in enumerate(nights):
            plans.append(plan_night(profile, night, seed))
            if i + 1 < len(nights):
                plans.append(plan_day(profile, night, seed))
    return plans


def run_simulation(settings: Settings, sites: Sequence[str] | None = None, nights: int = 1,
                   speed: float | str = 60.0, seed: int = 1, start: date = DEFAULT_START, *,
                   truth_out: Path | None = None, provision: bool = True,
                   fetch_alerts: FetchAlerts | None = None, console: Console | None = None,
                   progress: bool = True, publisher: Publisher = publish,
                   clock: Callable[[], float] = time.monotonic, site_suffix: str = "",
                   credentials: CredentialStore | None = None,
                   catch_up_timeout: float = 300.0,
                   delivery: DeliveryRates | None = None,
                   baseline_nights: int = 0,
                   answer_calls: AnswerCalls | None = None) -> SimulationResult:
    """Provision, plan, publish and (if ``fetch_alerts`` is given) score a simulation.

    ``sites`` are profile names or paths (default: all bundled profiles); ``speed`` is a
    factor (1 = live, 60 = a night in 9 minutes) or ``"max"``. ``site_suffix`` plays
    renamed copies of the sites (the same nights); ``credentials`` is where the devices'
    passwords are kept (default: the state directory's simulator credentials file).
    ``delivery`` overrides every profile's lost/duplicated/late message rates.
    ``baseline_nights`` (> 0): the sites' staff logged their flat-check rounds on that many
    nights before the first one, the site's baseline period, and log the rounds they still
    walk in the simulated nights (``simulators.rounds``). ``answer_calls`` (with
    ``fetch_alerts``): simulated staff take and resolve every call the pipeline raised
    (``simulators.responses``), stored through it.
    """
    factor = parse_speed(speed)
    if nights < 1:
        raise SimulatorError(f"--nights must be at least 1, got {nights}")
    if not _SUFFIX.match(site_suffix):
        raise SimulatorError(
            f"site suffix {site_suffix!r} must be at most 22 of a-z, 0-9 and '-', "
            f"e.g. '-t1a2b'")
    rates = delivery or DeliveryRates()
    originals = [rates.applied_to(load_profile(name)) for name in (sites or profile_names())]
    dates = [start + timedelta(days=i) for i in range(nights)]
    plans = [_renamed(plan, site_suffix) for plan in plan_run(originals, dates, seed)]
    profiles = [profile.model_copy(update={"site": profile.site + site_suffix})
                for profile in originals]
    truth = GroundTruth()
    for plan in plans:
        if plan.paced:
            truth.add_night(plan.site, plan.night, plan.episodes)
    deliveries: list[Delivery] = sort_deliveries(
        [delivery for plan in plans for delivery in plan.deliveries])
    night_plans = [plan for plan in plans if plan.paced]
    first = min(plan.start for plan in night_plans)
    last = max(plan.end for plan in night_plans)
    origin = min(first, deliveries[0].at) if deliveries else first
    timetable = Timetable(origin, [(p.start, p.end) for p in night_plans], factor)

    store = credentials or CredentialStore.in_state_dir(settings.state_dir)
    accounts = _accounts(settings, profiles, store, provision)
    if baseline_nights > 0:
        _log_rounds(settings, originals, site_suffix, dates, seed, baseline_nights)
    host, port = settings.device_broker_address()
    tls = settings.mqtt_tls_context()
    if tls is not None:
        publisher = functools.partial(publisher, tls=tls)
    out = console or Console()
    stats = _publish_with_progress(
        publisher, deliveries, accounts, timetable, host, port, out, progress, clock,
        on_refused=(lambda refused: _rotate(settings, store, profiles, refused))
        if provision else None)

    truth_path = truth_out or (settings.state_dir.resolve() / "simulations"
                               / f"truth-seed{seed}-{start.isoformat()}-{nights}n.jsonl")
    truth.write_jsonl(truth_path)
    result = SimulationResult(
        sites=[p.site for p in profiles], nights=dates, seed=seed, speed=factor, start=first,
        end=last, truth=truth, truth_path=truth_path, stats=stats,
        planned_events={p.site: sum(plan.events for plan in plans if plan.site == p.site)
                        for p in profiles},
        lost_events={p.site: sum(len(plan.lost) for plan in plans if plan.site == p.site)
                     for p in profiles},
        sent_events=_distinct_events(deliveries))
    if fetch_alerts is not None:
        if isinstance(fetch_alerts, CatchesUp):
            fetch_alerts.wait_caught_up(result, timeout=catch_up_timeout)
        result.alerts = [alert for site in result.sites
                         for alert in fetch_alerts(site, first, last)]
        result.score = score(truth, result.alerts)
        result.quality = quality(truth, result.alerts)
        if answer_calls is not None:
            result.answered = answer_calls([answer for profile in profiles for answer in
                                            plan_answers(profile, truth, result.alerts, seed)])
    return result


def _renamed(plan: NightPlan, suffix: str) -> NightPlan:
    if not suffix:
        return plan
    site = plan.site + suffix
    return replace(plan, site=site,
                   deliveries=tuple(replace(d, site=site) for d in plan.deliveries),
                   episodes=tuple(replace(e, site=site) for e in plan.episodes))


def _distinct_events(deliveries: Sequence[Delivery]) -> dict[str, list[SentEvent]]:
    found: dict[str, dict[tuple[str, str, str], None]] = {}
    for delivery in deliveries:
        if isinstance(delivery, EventDelivery):
            payload = delivery.payload
            found.setdefault(delivery.site, {})[
                (delivery.device, str(payload["id"]), str(payload["ts"]))] = None
    return {site: [SentEvent(*key) for key in keys] for site, keys in found.items()}


def _accounts(settings: Settings, profiles: Sequence[SiteProfile], store: CredentialStore,
              provision: bool) -> dict[tuple[str, str], DeviceAccount]:
    from simulators.provisioner import provision_sites, stored_accounts

    if provision:
        provision_sites(settings, profiles, store)
    accounts: dict[tuple[str, str], DeviceAccount] = {}
    for profile in profiles:
        for device, (username, password) in stored_accounts(store, profile).items():
            accounts[(profile.site, device)] = DeviceAccount(profile.site, device, username,
                                                             password)
    return accounts


def _log_rounds(settings: Settings, profiles: Sequence[SiteProfile], site_suffix: str,
                nights: Sequence[date], seed: int, baseline_nights: int) -> None:
    """The baseline period before ``nights``, and the rounds staff logged in it and in them."""
    from simulators.provisioner import log_rounds
    from simulators.rounds import plan_rounds

    before = [nights[0] - timedelta(days=baseline_nights - i) for i in range(baseline_nights)]
    for profile in profiles:
        log_rounds(settings, profile.site + site_suffix, before[0], before[-1],
                   plan_rounds(profile, before, seed, baseline=True)
                   + plan_rounds(profile, nights, seed, baseline=False))


def _rotate(settings: Settings, store: CredentialStore, profiles: Sequence[SiteProfile],
            refused: tuple[str, ...]) -> dict[tuple[str, str], DeviceAccount]:
    from simulators.provisioner import rotate_devices

    rotate_devices(settings, store, refused)
    return _accounts(settings, profiles, store, provision=False)


def _publish_with_progress(
        publisher: Publisher, deliveries: Sequence[Delivery],
        accounts: dict[tuple[str, str], DeviceAccount], timetable: Timetable, host: str,
        port: int, console: Console, show: bool, clock: Callable[[], float],
        on_refused: Callable[[tuple[str, ...]], dict[tuple[str, str], DeviceAccount]] | None,
) -> PublishStats:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("sim {task.fields[sim]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not show, transient=False) as bar:
        task = bar.add_task("publishing", total=len(deliveries), sim="—")

        def sent(delivery: Delivery) -> None:
            bar.update(task, advance=1, sim=f"{delivery.at:%Y-%m-%d %H:%M}Z")

        try:
            return publisher(deliveries, accounts, timetable, host=host, port=port,
                             on_sent=sent, clock=clock)
        except CredentialsError as exc:
            # A stale stored password (the site was reset): rotate those devices, once.
            if on_refused is None or not exc.refused:
                raise
            console.print(f"[yellow]{exc}; rotating {len(exc.refused)} password(s)")
            bar.reset(task)
            return publisher(deliveries, on_refused(exc.refused), timetable, host=host,
                             port=port, on_sent=sent, clock=clock)


def print_summary(result: SimulationResult, console: Console) -> None:
    table = Table(title=f"simulation: {len(result.nights)} night(s) from "
                        f"{result.nights[0]:%Y-%m-%d}, seed {result.seed}")
    for column in ("site", "events sent", "lost", "episodes", "needed help", "alerts",
                   "recall", "needless / night", "alerts / need", "device alerts"):
        table.add_column(column, justify="left" if column == "site" else "right")
    for site in result.sites:
        episodes = [e for e in result.truth.episodes if e.site == site]
        needed = sum(e.needed_help for e in episodes)
        cells = [site, str(result.stats.events.get(site, 0)),
                 str(result.lost_events.get(site, 0)), str(len(episodes)), str(needed)]
        site_score = result.score.sites.get(site) if result.score else None
        site_quality = result.quality.sites.get(site) if result.quality else None
        if site_score is None or site_quality is None:
            cells += ["—", "—", "—", "—", "—"]
        else:
            per_need = site_quality.alerts_per_needed
            cells += [str(site_score.resident_alerts), _percent(site_score.recall),
                      f"{site_score.needless_per_night or 0:.1f}",
                      "—" if per_need is None else f"{per_need:.1f}",
                      str(site_score.device_alerts)]
        table.add_row(*cells)
    console.print(table)
    if result.score is None:
        console.print("alerts: not available")
    else:
        console.print(f"recall {_percent(result.score.recall)} "
                      f"({result.score.caught}/{result.score.needed}), "
                      f"needless alerts {result.score.needless}")
    if result.answered is not None:
        console.print(f"calls answered by the simulated night staff: {result.answered}")
    if result.quality is not None:
        _print_delays(result.quality, console)
    console.print(f"ground truth: {result.truth_path}")


def _print_delays(scored: Quality, console: Console) -> None:
    """Detection delay (first call − need onset) per kind of need, all sites together."""
    table = Table(title="detection delay (alert − need onset)")
    for column in ("need", "caught", "missed", "median", "p90", "max"):
        table.add_column(column, justify="left" if column == "need" else "right")
    for kind, stats in scored.delays().items():
        table.add_row(str(kind), str(stats.caught), str(stats.missed), _seconds(stats.median_s),
                      _seconds(stats.p90_s), _seconds(stats.max_s))
    console.print(table)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"
