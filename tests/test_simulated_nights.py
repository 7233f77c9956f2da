"""Whole simulated nights through the real broker, gateway, store and rules engine.

The five pilot sites are provisioned afresh under a random suffix (``solsikken-t1a2b3c4``),
so they collide with no other test and not with the demo; their devices publish with
their own credentials, at ``--speed max``, and the alerts in the store are scored against
the simulator's ground truth. Seed 3 is chosen because its night has eight episodes that
needed help and two sensor outages (Egely's f07 bed sensor falls silent, Solsikken's f04
door contact says ``offline``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from core.alerts import RuleName
from core.settings import Settings, StackInfo, get_settings
from nattero.scoring import StoredAlerts
from simulators.command import SimulationResult, plan_run, run_simulation
from simulators.credentials import CredentialStore
from simulators.ground_truth import AlertRecord, EpisodeKind, NeedKind
from simulators.plan import EventDelivery
from simulators.profile import load_profile, profile_names
from tests.support.store import unique

pytestmark = pytest.mark.slow

SEED = 3
NIGHT = date(2026, 11, 23)
SMALL_SITE = "egely"
# Needless alerts (resident alerts answering no needed-help episode) of seed 3's night
# under the default rules: people up in common rooms, staff rounds, short trips out of the
# flat that may overrun 15 min, smoke breaks. Recorded from a run (birkely 12, egely 36,
# havnely 130, kastanjen 63, solsikken 10 since staff walk their rounds, issue 13), with
# some room; more means the rules got noisier.
NEEDLESS_BOUND = {"birkely": 15, "egely": 40, "havnely": 140, "kastanjen": 70, "solsikken": 15}


@dataclass
class Night:
    suffix: str
    result: SimulationResult

    def alerts(self, site: str) -> list[AlertRecord]:
        return [a for a in self.result.alerts if a.site == site + self.suffix]


@pytest.fixture(scope="module")
def pipeline_sites() -> dict[str, str]:
    """Suffixes: the five sites' night, and a second copy of the small site."""
    return {"night": f"-t{uuid.uuid4().hex[:8]}", "again": f"-t{uuid.uuid4().hex[:8]}"}


@pytest.fixture(scope="module")
def pipeline(migrated: StackInfo, pipeline_sites: dict[str, str]) -> Iterator[None]:
    from nattero.pipeline import start_pipeline

    sites = [name + pipeline_sites["night"] for name in profile_names()]
    sites.append(SMALL_SITE + pipeline_sites["again"])
    running = start_pipeline(Settings(
        gateway_sites=sites, gateway_client_id=unique("gw"), gateway_session_expiry_s=600,
        gateway_bridges=False))
    yield
    running.stop()


def _simulate(suffix: str, sites: list[str] | None, folder: Path) -> SimulationResult:
    settings = get_settings()
    return run_simulation(
        settings, sites, nights=1, speed="max", seed=SEED, start=NIGHT, site_suffix=suffix,
        credentials=CredentialStore(folder / "credentials.json"),
        truth_out=folder / f"truth{suffix}.jsonl", fetch_alerts=StoredAlerts(settings),
        progress=False, catch_up_timeout=120)


@pytest.fixture(scope="module")
def night(pipeline: None, pipeline_sites: dict[str, str],
          tmp_path_factory: pytest.TempPathFactory) -> Night:
    """One night of all five sites, played together at max speed, scored from the store."""
    suffix = pipeline_sites["night"]
    return Night(suffix, _simulate(suffix, None, tmp_path_factory.mktemp("night")))


def test_every_episode_that_needed_help_raised_an_alert_at_every_site(night: Night) -> None:
    score = night.result.score
    assert score is not None
    assert score.needed == 8
    for name in profile_names():
        site = score.sites[name + night.suffix]
        missed = [(e.kind.value, e.room, f"{e.start:%H:%M}") for e in site.missed]
        assert site.recall in (1.0, None), f"{name}: missed {missed}"


def test_needless_alerts_stay_within_the_recorded_bound(night: Night) -> None:
    score = night.result.score
    assert score is not None
    needless = {name: score.sites[name + night.suffix].needless for name in profile_names()}
    print(f"needless alerts per site, seed {SEED}: {needless}")
    assert all(needless[name] <= bound for name, bound in NEEDLESS_BOUND.items()), needless


def test_every_caught_need_has_a_detection_delay_from_its_onset(night: Night) -> None:
    """The store's alerts, timed from each episode's need onset, per kind of need."""
    scored, score = night.result.quality, night.result.score
    assert scored is not None and score is not None
    assert scored.recall == score.recall and len(scored.needs) == score.needed
    for need in scored.needs:
        assert need.episode.need is not None and need.episode.need_onset is not None
        assert need.delay is not None and need.alerts >= 1
    delays = scored.delays()
    print({str(kind): stats.to_json() for kind, stats in delays.items()})
    assert sum(stats.caught for stats in delays.values()) == score.caught
    # A building exit calls the moment the door opens (issue 13's target: within 30 s),
    # except where the site's manager loosened it (a shelter whose residents smoke outside):
    # there it calls when the outing's time is up, at most its minutes after the exit.
    for name in profile_names():
        exits = scored.delays(name + night.suffix)[NeedKind.BUILDING_EXIT]
        loosened = load_profile(name).rules.get(RuleName.BUILDING_EXIT)
        limit_s = 30 if loosened is None or not loosened.minutes else loosened.minutes * 60 + 30
        assert exits.max_s is None or exits.max_s <= limit_s, (name, exits)


def test_every_resident_alert_answers_something_that_happened(night: Night) -> None:
    """No alert out of thin air: each matches an episode's expected rule, room and time."""
    truth = night.result.truth
    unexplained = []
    for alert in night.result.alerts:
        if alert.rule in ("sensor_offline", "low_battery"):
            continue
        if not any(e.site == alert.site and any(x.rule == alert.rule and x.room == alert.room
                                                for x in e.expected)
                   and e.start.timestamp() - 120 <= alert.ts.timestamp()
                   <= e.end.timestamp() + 120 for e in truth.episodes):
            unexplained.append((alert.site, alert.rule, alert.room, f"{alert.ts:%H:%M:%S}"))
    assert unexplained == []


def test_a_device_that_goes_silent_raises_sensor_offline(night: Night) -> None:
    outage = next(e for e in night.result.truth.episodes
                  if e.kind is EpisodeKind.SENSOR_OFFLINE and e.site.startswith(SMALL_SITE))
    assert outage.device == "f07-bed" and outage.expected
    raised = [a for a in night.alerts(SMALL_SITE)
              if a.rule == "sensor_offline" and a.room == outage.room]
    assert len(raised) == 1
    assert outage.start <= raised[0].ts <= outage.end


def test_a_device_that_reports_offline_raises_sensor_offline(night: Night) -> None:
    outage = next(e for e in night.result.truth.episodes
                  if e.kind is EpisodeKind.SENSOR_OFFLINE and e.site.startswith("solsikken"))
    assert outage.device == "f04-door"
    raised = [a for a in night.alerts("solsikken")
              if a.rule == "sensor_offline" and a.room == outage.room]
    assert len(raised) == 1


def test_same_seed_gives_the_same_events_and_the_same_alerts(
        night: Night, pipeline_sites: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    suffix = pipeline_sites["again"]
    again = Night(suffix, _simulate(suffix, [SMALL_SITE], tmp_path_factory.mktemp("again")))
    assert again.result.sent_events[SMALL_SITE + suffix] == \
        night.result.sent_events[SMALL_SITE + night.suffix]

    def alert_set(run: Night) -> list[tuple[str, str, str]]:
        return sorted((a.rule, a.room, a.ts.isoformat()) for a in run.alerts(SMALL_SITE))

    assert alert_set(again) == alert_set(night) != []


@pytest.mark.pure
def test_same_seed_plans_the_same_deliveries_and_another_seed_another_night() -> None:
    profile = load_profile(SMALL_SITE)

    def deliveries(seed: int) -> list[tuple[str, str, str]]:
        return [(d.at.isoformat(), d.device, str(d.payload))
                for plan in plan_run([profile], [NIGHT], seed) for d in plan.deliveries
                if isinstance(d, EventDelivery)]

    assert deliveries(SEED) == deliveries(SEED)
    assert deliveries(SEED) != deliveries(SEED + 1)
