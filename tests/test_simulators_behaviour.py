"""Simulated nights: deterministic, anonymous, realistic enough to score rules against."""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core.alerts import RuleName
from core.events import DeviceKind, EventKind, Presence, RoomKind
from simulators.behaviour import plan_day, plan_night
from simulators.devices import (
    DeviceFaults,
    OfflineSpell,
    bed_states,
    deliveries,
    heartbeats,
)
from simulators.errors import ProfileError, SpeedError
from simulators.ground_truth import (
    AlertRecord,
    Episode,
    EpisodeKind,
    ExpectedAlert,
    GroundTruth,
    score,
)
from simulators.pacing import Timetable, parse_speed
from simulators.plan import EventDelivery, StatusDelivery
from simulators.profile import PROFILE_DIR, all_profiles, load_profile, profile_names
from simulators.residents import Observation

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

NIGHT = date(2026, 11, 23)
PROTOCOL_KINDS = {kind.value for kind in EventKind}
ROOM_WORDS = {"Lejlighed", "Værelse", "Gang", "Køkken", "Fællesstue", "Fællesrum", "Sanserum",
              "Opholdsstue", "Entré", "Vaskerum", "Hovedindgang", "Bagindgang", "Havedør",
              "Bagdør", "nord", "syd", "stuen", "sal", "1.", "2."}


def _t(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-23T{clock}+00:00")


# -- profiles -------------------------------------------------------------------------------

def test_five_bundled_profiles_load_and_validate() -> None:
    profiles = all_profiles()
    assert len(profiles) == 5
    assert sorted(p.site for p in profiles) == profile_names()
    for profile in profiles:
        kinds = {room.kind for room in profile.rooms}
        assert kinds == {RoomKind.FLAT, RoomKind.COMMON, RoomKind.EXIT}, profile.site
        assert profile.device_specs, profile.site


def test_profiles_hold_room_labels_and_never_a_name() -> None:
    for profile in all_profiles():
        for room in profile.rooms:
            words = re.sub(r"\d+$", "", room.label).split()
            assert words and set(words) <= ROOM_WORDS, f"{profile.site}: {room.label!r}"
        raw = (PROFILE_DIR / f"{profile.site}.yaml").read_text(encoding="utf-8")
        for key in ("resident:", "first_name", "last_name", "cpr", "person"):
            assert key not in raw, f"{profile.site} profile mentions {key}"


def test_most_flats_have_a_basis_and_exactly_one_does_not() -> None:
    unmonitored = [(p.site, room.id) for p in all_profiles() for room in p.rooms
                   if room.kind is RoomKind.FLAT and not room.monitored_on(NIGHT)]
    assert unmonitored == [("solsikken", "f08")]


def test_device_ids_are_room_slugs_with_their_kind() -> None:
    profile = load_profile("solsikken")
    ids = {spec.id: spec for spec in profile.device_specs}
    assert ids["f12-door"].kind is DeviceKind.DOOR and ids["f12-door"].room == "f12"
    assert ids["f12-bed"].kind is DeviceKind.BED
    assert ids["hovedindgang-exit"].kind is DeviceKind.EXIT


def test_a_broken_profile_is_refused_with_the_field_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: bad\nname: X\ntarget_group: t\nbehaviours: {}\n"
                   "flats: [{numbers: '1-3', behaviour: nosuch}]\n")
    with pytest.raises(ProfileError, match="nosuch"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="bundled profiles"):
        load_profile("no-such-site")


def test_night_window_follows_copenhagen_time_across_dst() -> None:
    profile = load_profile("solsikken")
    start, end = profile.night_window(NIGHT)
    assert (start, end) == (_t("21:00"), _t("06:00") + timedelta(days=1))
    autumn = profile.night_window(date(2026, 10, 24))  # clocks go back that night
    assert autumn[1] - autumn[0] == timedelta(hours=10)


# -- determinism ----------------------------------------------------------------------------

def test_same_seed_gives_identical_deliveries_and_truth() -> None:
    for profile in all_profiles():
        first, again = plan_night(profile, NIGHT, 7), plan_night(profile, NIGHT, 7)
        assert first.deliveries == again.deliveries
        assert first.episodes == again.episodes


def test_different_seed_gives_a_different_night() -> None:
    profile = load_profile("egely")
    assert plan_night(profile, NIGHT, 1).deliveries != plan_night(profile, NIGHT, 2).deliveries


def test_deliveries_are_time_ordered_protocol_v1_payloads() -> None:
    for profile in all_profiles():
        plan = plan_night(profile, NIGHT, 3)
        times = [d.at for d in plan.deliveries]
        assert times == sorted(times)
        ids: dict[str, set[str]] = defaultdict(set)
        for delivery in plan.deliveries:
            if not isinstance(delivery, EventDelivery):
                continue
            payload = delivery.payload
            state = {"occupied"} if payload["kind"] == "heartbeat" and "occupied" in payload \
                else set()
            assert set(payload) == {"id", "ts", "kind", "battery"} | state
            assert payload["kind"] in PROTOCOL_KINDS
            assert 0 <= payload["battery"] <= 100
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["ts"])
            assert delivery.topic == f"nattero/v1/{profile.site}/{delivery.device}/events"
            assert len(json.dumps(payload)) < 4096
            if not delivery.duplicate:
                assert payload["id"] not in ids[delivery.device]
            ids[delivery.device].add(payload["id"])


def test_event_clock_skew_stays_within_a_few_seconds_and_delays_publish_late() -> None:
    plan = plan_night(load_profile("havnely"), NIGHT, 1)
    events = [d for d in plan.deliveries if isinstance(d, EventDelivery)]
    lateness = [(d.at - datetime.fromisoformat(d.payload["ts"])).total_seconds() for d in events]
    assert min(lateness) > -3.5
    assert any(d.delayed for d in events) and any(d.duplicate for d in events)
    for d, late in zip(events, lateness, strict=True):
        if not d.delayed and not d.duplicate:
            assert late < 3.5


# -- devices --------------------------------------------------------------------------------

def test_heartbeats_come_at_the_device_interval() -> None:
    profile = load_profile("birkely")
    device = profile.device_specs[0]
    start, end = profile.night_window(NIGHT)
    beats = [o.ts for o in heartbeats(profile, device, 1, start, end, segment="n")]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(beats)]
    assert len(beats) == pytest.approx((end - start).total_seconds() / 300, abs=1)
    jitter = profile.devices.heartbeat_jitter * 300
    assert all(300 - 2 * jitter <= gap <= 300 + 2 * jitter for gap in gaps)


def test_a_bed_sensors_heartbeat_reports_its_true_state_and_other_devices_none() -> None:
    # In time order (the clock times stand for one night: 22:00 comes first).
    seen = [Observation(_t("22:00"), "f1-bed", EventKind.HEARTBEAT),
            Observation(_t("22:00"), "f1-door", EventKind.HEARTBEAT),
            Observation(_t("22:30"), "f1-bed", EventKind.BED_ENTER),
            Observation(_t("23:00"), "f1-bed", EventKind.HEARTBEAT),
            Observation(_t("01:00"), "f1-bed", EventKind.BED_EXIT),   # lost or not, it happened
            Observation(_t("01:05"), "f1-bed", EventKind.HEARTBEAT),
            Observation(_t("01:20"), "f1-bed", EventKind.BED_ENTER),
            Observation(_t("02:00"), "f1-bed", EventKind.HEARTBEAT),
            Observation(_t("02:00"), "f2-bed", EventKind.HEARTBEAT)]  # no move: no state
    states = bed_states(seen, {"f1-bed", "f2-bed"})
    assert {(o.ts, o.device): state for o, state in states.items()} == {
        (_t("22:00"), "f1-bed"): False, (_t("23:00"), "f1-bed"): True,
        (_t("01:05"), "f1-bed"): False, (_t("02:00"), "f1-bed"): True}
    # A planned night: every bed heartbeat during a fall says "empty", no door's says any.
    profile = load_profile("birkely")
    plan = plan_night(profile, NIGHT, 255)
    falls = [e for e in plan.episodes if e.kind is EpisodeKind.FALL]
    beds = {s.id: s.room for s in profile.device_specs if s.kind is DeviceKind.BED}
    beats = [d for d in plan.deliveries if isinstance(d, EventDelivery)
             and d.payload["kind"] == "heartbeat"]
    assert falls and all(("occupied" in d.payload) == (d.device in beds) for d in beats)
    during = [d.payload["occupied"] for d in beats for fall in falls
              if d.device in beds and beds[d.device] == fall.room
              and fall.start < datetime.fromisoformat(d.payload["ts"]) < fall.end]
    assert during and not any(during)


def test_heartbeats_continue_through_the_day_between_nights() -> None:
    profile = load_profile("birkely")
    device = profile.device_specs[0].id
    night, day = plan_night(profile, NIGHT, 1), plan_day(profile, NIGHT, 1)
    nxt = plan_night(profile, NIGHT + timedelta(days=1), 1)
    beats = sorted(datetime.fromisoformat(d.payload["ts"])
                   for plan in (night, day, nxt) for d in plan.deliveries
                   if isinstance(d, EventDelivery) and d.device == device
                   and d.payload["kind"] == "heartbeat" and not d.duplicate)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(beats)]
    assert max(gaps) < 2 * 300
    assert not day.paced and night.paced


def test_an_offline_device_stops_heartbeating_and_says_so() -> None:
    profile = load_profile("solsikken")
    device = next(s for s in profile.device_specs if s.id == "f03-bed")
    start, end = profile.night_window(NIGHT)
    spell = OfflineSpell(device, start + timedelta(hours=2), start + timedelta(hours=3),
                         announced=True)
    seen = heartbeats(profile, device, 1, start, end, segment="n")
    planned = deliveries(profile, NIGHT, 1, seen, DeviceFaults(offline=spell), segment="n")
    beats = [d.at for d in planned if isinstance(d, EventDelivery)]
    assert beats and not [t for t in beats
                          if spell.start + timedelta(seconds=1) < t < spell.end]
    statuses = [(d.presence, d.at) for d in planned if isinstance(d, StatusDelivery)]
    assert statuses == [(Presence.OFFLINE, spell.start), (Presence.ONLINE, spell.end)]


def test_faults_happen_over_many_nights_and_are_in_the_truth() -> None:
    profile = load_profile("havnely")
    kinds = {e.kind for n in range(40)
             for e in plan_night(profile, NIGHT + timedelta(days=n), 1).episodes}
    assert {EpisodeKind.SENSOR_OFFLINE, EpisodeKind.FLAPPING,
            EpisodeKind.LOW_BATTERY} <= kinds


# -- ground truth ---------------------------------------------------------------------------

def test_needed_help_episodes_are_detectable_by_the_default_rules() -> None:
    needed: list[Episode] = []
    for profile in all_profiles():
        rooms = {room.id: room for room in profile.rooms}
        for n in range(10):
            night = NIGHT + timedelta(days=n)
            start, end = profile.night_window(night)
            for episode in plan_night(profile, night, 1).episodes:
                if not episode.needed_help:
                    continue
                needed.append(episode)
                assert episode.expected_rules, episode
                assert rooms[episode.room].monitored_on(night)
                assert start <= episode.start and episode.end < end
                if episode.kind is EpisodeKind.FALL:
                    assert RuleName.BED_EXIT_NOT_BACK in episode.expected_rules
                    assert episode.end - episode.start > timedelta(minutes=10)
                if episode.kind is EpisodeKind.LEFT_FLAT_LONG:
                    assert RuleName.LEFT_FLAT in episode.expected_rules
                    assert episode.end - episode.start > timedelta(minutes=15)
                if episode.kind is EpisodeKind.LEFT_BUILDING:
                    assert RuleName.BUILDING_EXIT in episode.expected_rules
    assert {e.kind for e in needed} == {EpisodeKind.FALL, EpisodeKind.LEFT_FLAT_LONG,
                                        EpisodeKind.LEFT_BUILDING}


def test_a_fall_is_a_bed_exit_without_bed_enter_for_more_than_ten_minutes() -> None:
    profile = load_profile("birkely")
    for n in range(10):
        plan = plan_night(profile, NIGHT + timedelta(days=n), 1)
        for fall in (e for e in plan.episodes if e.kind is EpisodeKind.FALL):
            bed = f"{fall.room}-bed"
            kinds = [(datetime.fromisoformat(d.payload["ts"]), d.payload["kind"])
                     for d in plan.deliveries if isinstance(d, EventDelivery)
                     and d.device == bed and d.payload["kind"] != "heartbeat"
                     and fall.start - timedelta(seconds=5) <= d.at
                     <= fall.end + timedelta(minutes=3)]
            assert [k for _, k in kinds][:2] == ["bed.exit", "bed.enter"]
            assert kinds[1][0] - kinds[0][0] > timedelta(minutes=10)
            return
    pytest.fail("no fall in ten nights at the fall-risk home")


def test_unmonitored_flat_never_needs_help_in_the_truth() -> None:
    profile = load_profile("solsikken")
    for n in range(20):
        for episode in plan_night(profile, NIGHT + timedelta(days=n), 1).episodes:
            if episode.room == "f08":
                assert not episode.needed_help and not episode.monitored, episode
                assert all(a.rule not in (RuleName.LEFT_FLAT, RuleName.BED_EXIT_NOT_BACK)
                           for a in episode.expected)


def _episode(kind: EpisodeKind, room: str, start: str, end: str, needed: bool,
             *expected: tuple[RuleName, str]) -> Episode:
    return Episode(site="solsikken", night=NIGHT, kind=kind, room=room, start=_t(start),
                   end=_t(end), needed_help=needed,
                   expected=tuple(ExpectedAlert(rule, r) for rule, r in expected))


def test_score_counts_recall_and_needless_alerts() -> None:
    truth = GroundTruth()
    truth.add_night("solsikken", NIGHT, [
        _episode(EpisodeKind.FALL, "f01", "23:00", "23:40", True,
                 (RuleName.BED_EXIT_NOT_BACK, "f01")),
        _episode(EpisodeKind.LEFT_BUILDING, "f02", "01:00", "02:00", True,
                 (RuleName.LEFT_FLAT, "f02"), (RuleName.BUILDING_EXIT, "hovedindgang")),
        _episode(EpisodeKind.LEFT_FLAT_LONG, "f03", "03:00", "03:30", True,
                 (RuleName.LEFT_FLAT, "f03")),
        _episode(EpisodeKind.TOILET_VISIT, "f04", "04:00", "04:05", False),
    ])
    alerts = [
        # (site, room, rule, first trigger, call time: None = stayed a quiet situation)
        AlertRecord("solsikken", "f01", "bed_exit_not_back", _t("23:10"), _t("23:10")),
        AlertRecord("solsikken", "hovedindgang", "building_exit", _t("01:02"), _t("01:02")),
        AlertRecord("solsikken", "f02", "left_flat", _t("01:00"), _t("01:15")),  # same episode
        AlertRecord("solsikken", "f03", "left_flat", _t("03:00")),  # quiet: not a catch
        AlertRecord("solsikken", "f03", "left_flat", _t("05:00"), _t("05:15")),  # too late
        AlertRecord("solsikken", "gang", "common_motion", _t("03:01"), _t("03:01")),  # needless
        AlertRecord("solsikken", "f04", "bed_exit_not_back", _t("04:11"), _t("04:11")),
        AlertRecord("solsikken", "f04", "left_flat", _t("04:30")),  # quiet: not needless
        AlertRecord("solsikken", "f05-bed", "sensor_offline", _t("02:00"), _t("02:00")),
        AlertRecord("solsikken", "f06", "low_battery", _t("22:00")),            # device
    ]
    result = score(truth, alerts)
    site = result.sites["solsikken"]
    assert (site.needed, site.caught) == (3, 2)
    assert site.recall == pytest.approx(2 / 3)
    assert (site.resident_alerts, site.needless, site.device_alerts) == (8, 3, 2)
    assert (site.calls, site.quiet) == (6, 2)
    assert site.needless_per_night == 3
    assert [e.room for e in site.missed] == ["f03"]
    assert result.recall == pytest.approx(2 / 3)


def test_simulated_staff_answer_each_call_with_what_the_truth_says_they_found() -> None:
    from simulators.responses import plan_answers

    truth = GroundTruth()
    truth.add_night("solsikken", NIGHT, [
        _episode(EpisodeKind.FALL, "f01", "23:00", "23:40", True,
                 (RuleName.BED_EXIT_NOT_BACK, "f01")),
        _episode(EpisodeKind.LEFT_FLAT_SHORT, "f04", "04:00", "04:25", False,
                 (RuleName.LEFT_FLAT, "f04")),
    ])
    alerts = [
        AlertRecord("solsikken", "f01", "bed_exit_not_back", _t("23:10"), _t("23:10"), 1,
                    "high"),
        AlertRecord("solsikken", "f04", "left_flat", _t("04:00"), _t("04:15"), 2, "normal"),
        AlertRecord("solsikken", "gang", "common_motion", _t("03:01"), _t("03:01"), 3, "normal"),
        AlertRecord("solsikken", "f05", "left_flat", _t("02:00"), None, 4, "normal"),  # quiet
        AlertRecord("solsikken", "f05-bed", "sensor_offline", _t("02:00"), _t("02:00"), 5,
                    "normal"),                                                       # device
        AlertRecord("solsikken", "f06", "left_flat", _t("02:00"), _t("02:15")),     # no id
    ]
    profile = load_profile("solsikken")
    answers = plan_answers(profile, truth, alerts, seed=4)
    assert [(a.alert_id, a.outcome.value) for a in answers] == [
        (1, "help_given"), (2, "no_action_needed"), (3, "false_alarm")]
    assert answers == plan_answers(profile, truth, alerts, seed=4)
    r = profile.staff.response
    fall, outing, motion = answers
    assert timedelta(seconds=r.take_s_high[0]) <= fall.taken_at - _t("23:10") \
        <= timedelta(seconds=r.take_s_high[1])
    assert timedelta(seconds=r.take_s_normal[0]) <= outing.taken_at - _t("04:15") \
        <= timedelta(seconds=r.take_s_normal[1]) + timedelta(seconds=1)
    helped = fall.resolved_at - fall.taken_at
    assert timedelta(seconds=r.walk_s[0], minutes=r.help_minutes[0]) - timedelta(seconds=1) \
        <= helped <= timedelta(seconds=r.walk_s[1], minutes=r.help_minutes[1])
    checked = motion.resolved_at - motion.taken_at
    assert checked <= timedelta(seconds=r.walk_s[1], minutes=r.check_minutes[1])


def test_score_tolerates_a_little_clock_skew_at_the_edges() -> None:
    truth = GroundTruth()
    truth.add_night("solsikken", NIGHT, [_episode(
        EpisodeKind.LEFT_FLAT_LONG, "f03", "03:00", "03:30", True,
        (RuleName.LEFT_FLAT, "f03"))])
    early = AlertRecord("solsikken", "f03", "left_flat", _t("02:59:57"), _t("03:14:57"))
    assert score(truth, [early]).recall == 1.0
    late_call = AlertRecord("solsikken", "f03", "left_flat", _t("03:00"), _t("03:32:01"))
    assert score(truth, [late_call]).recall == 0.0  # called after the episode was over
    assert score(truth, []).recall == 0.0


def test_ground_truth_round_trips_through_json_lines(tmp_path: Path) -> None:
    truth = GroundTruth()
    profile = load_profile("kastanjen")
    truth.add_night(profile.site, NIGHT, plan_night(profile, NIGHT, 5).episodes)
    path = tmp_path / "truth.jsonl"
    truth.write_jsonl(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"type": "night", "site": "kastanjen", "night": "2026-11-23"}
    assert all("expected_rules" in line for line in lines[1:])
    again = GroundTruth.read_jsonl(path)
    assert again.nights == truth.nights
    assert [e.to_json() for e in again.episodes] == \
        [e.to_json() for e in sorted(truth.episodes, key=lambda e: (e.start, e.site, e.room))]


# -- time -----------------------------------------------------------------------------------

def test_speed_accepts_max_or_a_positive_number_only() -> None:
    assert parse_speed("60") == 60.0
    assert parse_speed("max") == float("inf")
    for bad in ("0", "-3", "fast", "nan", "inf"):
        with pytest.raises(SpeedError, match="positive number"):
            parse_speed(bad)


def test_a_night_at_speed_60_takes_nine_minutes_and_the_day_after_none() -> None:
    profile = load_profile("solsikken")
    start, end = profile.night_window(NIGHT)
    next_start, next_end = profile.night_window(NIGHT + timedelta(days=1))
    table = Timetable(start, [(start, end), (next_start, next_end)], 60)
    assert table.offset(end) == pytest.approx(9 * 60)
    assert table.offset(next_start) == pytest.approx(9 * 60)
    assert table.offset(next_end) == pytest.approx(18 * 60)
    assert Timetable(start, [(start, end)], float("inf")).offset(end) == 0.0

