"""Honest simulators: unlucky delivery, overrunning episodes, staff, need onsets, delays."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core.alerts import RuleName
from core.events import EventKind
from simulators.behaviour import plan_night
from simulators.devices import DeliveryRates
from simulators.errors import SimulatorError
from simulators.ground_truth import (
    AlertRecord,
    Episode,
    EpisodeKind,
    ExpectedAlert,
    GroundTruth,
    NeedKind,
)
from simulators.plan import EventDelivery
from simulators.profile import all_profiles, load_profile
from simulators.quality import delay_stats, quality

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

NIGHT = date(2026, 11, 23)


def _t(clock: str) -> datetime:
    day = "2026-11-24" if clock < "12:00" else "2026-11-23"
    return datetime.fromisoformat(f"{day}T{clock}+00:00")


def _events(plan_deliveries: tuple[object, ...]) -> list[EventDelivery]:
    return [d for d in plan_deliveries if isinstance(d, EventDelivery)]


# -- unlucky delivery ---------------------------------------------------------------------

def test_lost_duplicated_and_late_messages_come_at_the_configured_rates() -> None:
    profile = DeliveryRates(lost=0.1, duplicated=0.05, late=0.08).applied_to(
        load_profile("havnely"))
    plan = plan_night(profile, NIGHT, 1)
    events = _events(plan.deliveries)
    originals = [d for d in events if not d.duplicate]
    planned = len(originals) + len(plan.lost)
    assert planned > 2000
    assert len(plan.lost) / planned == pytest.approx(0.1, abs=0.02)
    assert sum(d.duplicate for d in events) / len(originals) == pytest.approx(0.05, abs=0.015)
    assert sum(d.delayed for d in originals) / len(originals) == pytest.approx(0.08, abs=0.02)
    # a lost message is neither delivered nor resent
    delivered = {(d.device, d.payload["id"]) for d in events}
    assert not delivered & {(d.device, d.payload["id"]) for d in plan.lost}


def test_late_messages_arrive_after_events_that_happened_later() -> None:
    profile = DeliveryRates(late=0.1).applied_to(load_profile("kastanjen"))
    plan = plan_night(profile, NIGHT, 2)
    reordered = 0
    newest: dict[str, str] = {}
    for delivery in _events(plan.deliveries):
        if delivery.duplicate:
            continue
        ts = str(delivery.payload["ts"])
        if ts < newest.get(delivery.device, ""):
            reordered += 1
        newest[delivery.device] = max(ts, newest.get(delivery.device, ""))
    assert reordered > 10


def test_unlucky_delivery_is_seeded_and_leaves_the_truth_as_it_happened() -> None:
    profile = load_profile("birkely")
    lossy = DeliveryRates(lost=0.3).applied_to(profile)
    first, again = plan_night(lossy, NIGHT, 4), plan_night(lossy, NIGHT, 4)
    assert first.lost == again.lost and first.deliveries == again.deliveries
    # a lost bed.enter is still a real return to bed: the episodes do not change
    assert plan_night(profile, NIGHT, 4).episodes == first.episodes
    assert any(d.payload["kind"] == EventKind.BED_ENTER for d in first.lost)


def test_no_loss_loses_nothing_and_the_other_draws_stay_put() -> None:
    profile = load_profile("egely")
    none_lost = plan_night(DeliveryRates(lost=0.0).applied_to(profile), NIGHT, 1)
    some_lost = plan_night(DeliveryRates(lost=0.2).applied_to(profile), NIGHT, 1)
    assert none_lost.lost == ()
    kept = {(d.device, str(d.payload["id"]), d.at) for d in _events(some_lost.deliveries)}
    assert kept <= {(d.device, str(d.payload["id"]), d.at)
                    for d in _events(none_lost.deliveries)}


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_rate_outside_zero_to_one_is_refused_with_an_example(rate: float) -> None:
    with pytest.raises(SimulatorError, match="between 0 and 1"):
        DeliveryRates(lost=rate)


# -- episodes that straddle the thresholds, and need onsets ---------------------------------

@functools.cache
def _episodes(nights: int = 14) -> list[Episode]:
    """Every episode of ``nights`` nights of the five sites (planned once per test run)."""
    return [episode for profile in all_profiles() for n in range(nights)
            for episode in plan_night(profile, NIGHT + timedelta(days=n), 1).episodes]


def test_harmless_toilet_visits_and_trips_out_straddle_the_rule_minutes() -> None:
    episodes = _episodes()
    toilet = [e.end - e.start for e in episodes if e.kind is EpisodeKind.TOILET_VISIT]
    short = [e.end - e.start for e in episodes if e.kind is EpisodeKind.LEFT_FLAT_SHORT]
    ten, fifteen = timedelta(minutes=10), timedelta(minutes=15)
    assert any(d > ten for d in toilet) and any(d < ten for d in toilet)
    assert any(d > fifteen for d in short) and any(d < fifteen for d in short)
    long_toilet = [e for e in episodes if e.kind is EpisodeKind.TOILET_VISIT
                   and e.end - e.start > ten]
    assert all(not e.needed_help and e.need_onset is None for e in long_toilet)


def test_every_needed_help_episode_has_its_need_onset_and_kind() -> None:
    needs = {EpisodeKind.FALL: NeedKind.FALL_BED_SENSOR, EpisodeKind.LEFT_FLAT_LONG:
             NeedKind.OUTING, EpisodeKind.LEFT_BUILDING: NeedKind.BUILDING_EXIT}
    needed = [e for e in _episodes() if e.needed_help]
    assert {e.kind for e in needed} == set(needs)
    for episode in needed:
        assert episode.need is needs[episode.kind], episode
        assert episode.need_onset is not None
        assert episode.start <= episode.need_onset < episode.end
        if episode.kind is not EpisodeKind.LEFT_BUILDING:
            assert episode.need_onset > episode.start   # fell or got lost after setting off


def test_a_building_exit_need_begins_when_the_exit_door_opens() -> None:
    for profile in all_profiles():
        for n in range(30):
            plan = plan_night(profile, NIGHT + timedelta(days=n), 1)
            for episode in plan.episodes:
                if episode.kind is not EpisodeKind.LEFT_BUILDING:
                    continue
                assert episode.need_onset is not None
                opened = [d for d in _events(plan.deliveries + plan.lost)
                          if d.device.endswith("-exit") and d.payload["kind"] == "door.open"
                          and abs(d.at - episode.need_onset) < timedelta(seconds=2)]
                assert opened, episode
                return
    pytest.fail("no resident left the building in 30 nights of five sites")


def test_need_onset_survives_the_json_lines_log(tmp_path: Path) -> None:
    truth = GroundTruth()
    needed = [e for e in _episodes() if e.needed_help]
    truth.add_night("x", NIGHT, needed)
    truth.write_jsonl(tmp_path / "truth.jsonl")
    back = sorted(GroundTruth.read_jsonl(tmp_path / "truth.jsonl").episodes,
                  key=lambda e: e.start)
    assert len(back) == len(needed) > 0
    for read, written in zip(back, sorted(needed, key=lambda e: e.start), strict=True):
        assert read.need is written.need is not None
        assert read.need_onset is not None and written.need_onset is not None
        # the log keeps milliseconds
        assert abs(read.need_onset - written.need_onset) < timedelta(milliseconds=1)


# -- staff ----------------------------------------------------------------------------------

def test_staff_walk_their_rounds_through_the_common_rooms_and_cause_motion() -> None:
    profile = load_profile("havnely")
    plan = plan_night(profile, NIGHT, 1)
    rounds = [e for e in plan.episodes if e.kind is EpisodeKind.STAFF_ROUND]
    common = {room.id for room in profile.common}
    assert {e.room for e in rounds} == common
    assert len(rounds) == len(profile.staff.at) * len(common)
    assert all(not e.needed_help and e.resident is None for e in rounds)
    for episode in rounds:
        assert ExpectedAlert(RuleName.COMMON_MOTION, episode.room) in episode.expected
        motion = [d for d in _events(plan.deliveries + plan.lost)
                  if d.payload["kind"] == "motion" and d.device.startswith(episode.room + "-")
                  and episode.start <= d.at <= episode.end + timedelta(seconds=1)]
        assert motion, episode


def test_a_motion_alert_caused_by_staff_is_needless() -> None:
    truth = GroundTruth()
    truth.add_night("s", NIGHT, [Episode(
        site="s", night=NIGHT, kind=EpisodeKind.STAFF_ROUND, room="gang", start=_t("23:30"),
        end=_t("23:31"), needed_help=False,
        expected=(ExpectedAlert(RuleName.COMMON_MOTION, "gang"),))])
    scored = quality(truth, [AlertRecord("s", "gang", "common_motion", _t("23:30"), _t("23:30")),
                             AlertRecord("s", "gang", "common_motion", _t("23:45"))])
    assert scored.sites["s"].needless == 1  # the call; the quiet situation called nobody
    assert scored.needless_per_site_night == 1.0


def call(room: str, rule: str, at: str) -> AlertRecord:
    return AlertRecord("s", room, rule, _t(at), _t(at))


# -- detection delay -----------------------------------------------------------------------

def _need(kind: EpisodeKind, need: NeedKind, room: str, start: str, onset: str, end: str,
          *expected: tuple[RuleName, str]) -> Episode:
    return Episode(site="s", night=NIGHT, kind=kind, room=room, start=_t(start), end=_t(end),
                   needed_help=True, need_onset=_t(onset), need=need,
                   expected=tuple(ExpectedAlert(rule, r) for rule, r in expected))


def test_delay_stats_give_median_nearest_rank_p90_and_max() -> None:
    stats = delay_stats([timedelta(seconds=s) for s in range(1, 11)], missed=2)
    assert (stats.caught, stats.missed) == (10, 2)
    assert (stats.median_s, stats.p90_s, stats.max_s) == (5.5, 9.0, 10.0)
    assert delay_stats([]).median_s is None


def test_detection_delay_counts_from_the_need_onset_per_kind_of_need() -> None:
    truth = GroundTruth()
    truth.add_night("s", NIGHT, [
        _need(EpisodeKind.FALL, NeedKind.FALL_BED_SENSOR, "f01", "23:00", "23:03", "23:40",
              (RuleName.BED_EXIT_NOT_BACK, "f01")),
        _need(EpisodeKind.FALL, NeedKind.FALL_BED_SENSOR, "f02", "01:00", "01:01", "01:30",
              (RuleName.BED_EXIT_NOT_BACK, "f02")),
        _need(EpisodeKind.LEFT_BUILDING, NeedKind.BUILDING_EXIT, "f03", "02:00", "02:01",
              "03:00", (RuleName.LEFT_FLAT, "f03"), (RuleName.BUILDING_EXIT, "exit")),
        _need(EpisodeKind.LEFT_FLAT_LONG, NeedKind.OUTING, "f04", "04:00", "04:05", "04:40",
              (RuleName.LEFT_FLAT, "f04")),
    ])
    truth.add_night("s", NIGHT + timedelta(days=1), [])
    # Each a call at its first trigger.
    alerts = [
        call("f01", "bed_exit_not_back", "23:10"),   # 7 min after the fall
        call("f02", "bed_exit_not_back", "01:10"),   # 9 min
        call("exit", "building_exit", "02:01:20"),   # 20 s
        call("f03", "left_flat", "02:00"),           # before onset: counts 0
        call("gang", "common_motion", "05:00"),      # needless
        call("f09-bed", "sensor_offline", "05:00"),  # device: not counted
    ]                                                # f04: missed
    scored = quality(truth, alerts)
    delays = scored.delays()
    assert delays[NeedKind.FALL_BED_SENSOR].to_json() == {
        "caught": 2, "missed": 0, "median_s": 480.0, "p90_s": 540.0, "max_s": 540.0}
    assert (delays[NeedKind.BUILDING_EXIT].caught, delays[NeedKind.BUILDING_EXIT].max_s) \
        == (1, 0.0)
    assert (delays[NeedKind.OUTING].caught, delays[NeedKind.OUTING].missed) == (0, 1)
    site = scored.sites["s"]
    assert site.recall == 0.75
    assert site.needless == 1 and site.needless_per_site_night == 0.5
    assert site.alerts_per_needed == pytest.approx(4 / 3)   # the exit answered by two alerts
    assert scored.total_json()["delay_s"]["fall_bed_sensor"]["median_s"] == 480.0


def test_waiting_longer_shows_in_the_delay_not_only_in_fewer_alerts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every time is read through call_time: a later call is a longer delay."""
    import simulators.ground_truth as ground_truth
    import simulators.quality as quality_module

    truth = GroundTruth()
    truth.add_night("s", NIGHT, [_need(
        EpisodeKind.FALL, NeedKind.FALL_BED_SENSOR, "f01", "23:00", "23:02", "23:40",
        (RuleName.BED_EXIT_NOT_BACK, "f01"))])
    alert = AlertRecord("s", "f01", "bed_exit_not_back", _t("23:10"), _t("23:10"))
    assert quality(truth, [alert]).delays()[NeedKind.FALL_BED_SENSOR].max_s == 480.0

    def called_later(record: AlertRecord) -> datetime | None:
        return record.ts + timedelta(minutes=5)

    monkeypatch.setattr(ground_truth, "call_time", called_later)
    monkeypatch.setattr(quality_module, "call_time", called_later)
    assert quality(truth, [alert]).delays()[NeedKind.FALL_BED_SENSOR].max_s == 780.0
