"""The rules engine, one night at a time: events in event time, intents out."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.events import DeviceKind, Event, EventKind, Presence, RoomKind, StatusChange
from core.intents import identity
from rules import (
    BasisKind,
    Clear,
    DeviceInfo,
    Escalate,
    IllegalTransition,
    Intent,
    LayoutError,
    MonitoringBasis,
    NightWindow,
    RoomInfo,
    RuleBook,
    RuleName,
    RuleOverride,
    RulesEngine,
    Severity,
    SiteLayout,
    Trigger,
    UnknownSite,
)
from rules.staff import StaffRound
from rules.states import EXCURSION, Excursion, ExcursionMove, step

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

CPH = ZoneInfo("Europe/Copenhagen")
SITE = "solsikken"
CONSENT = MonitoringBasis(BasisKind.CONSENT)


def local(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=CPH, fold=fold).astimezone(UTC)


def night(h: int, mi: int = 0, s: int = 0) -> datetime:
    """A time on the night of Monday 23 November 2026 (hours before noon are the 24th)."""
    return local(2026, 11, 23 if h >= 12 else 24, h, mi, s)


def layout(room_bases: dict[str, list[MonitoringBasis]] | None = None) -> SiteLayout:
    bases = {"flat-1": [CONSENT], "flat-2": [CONSENT], **(room_bases or {})}
    return SiteLayout(
        site=SITE,
        night=NightWindow.parse("22:00-07:00", CPH),
        rooms={
            "flat-1": RoomInfo(RoomKind.FLAT, "Flat 1", bases["flat-1"]),
            "flat-2": RoomInfo(RoomKind.FLAT, "Flat 2", bases["flat-2"]),
            "lounge": RoomInfo(RoomKind.COMMON, "Lounge"),
            "main-exit": RoomInfo(RoomKind.EXIT, "Main entrance"),
        },
        devices={
            "door-1": DeviceInfo("flat-1", DeviceKind.DOOR),
            "bed-1": DeviceInfo("flat-1", DeviceKind.BED),
            "pir-1": DeviceInfo("flat-1", DeviceKind.MOTION),
            "door-2": DeviceInfo("flat-2", DeviceKind.DOOR),
            "pir-lounge": DeviceInfo("lounge", DeviceKind.MOTION),
            "exit-1": DeviceInfo("main-exit", DeviceKind.EXIT),
        },
    )


def engine(
    rulebook: RuleBook | None = None, bases: dict[str, list[MonitoringBasis]] | None = None
) -> RulesEngine:
    return RulesEngine({SITE: layout(bases)}, {SITE: rulebook or RuleBook()})


def ev(device: str, ts: datetime, kind: EventKind, battery: int | None = None) -> Event:
    return Event(SITE, device, f"{device}@{ts.isoformat()}/{kind}", ts, kind, battery)


def feed(eng: RulesEngine, events: Iterable[Event], until: datetime | None = None) -> list[Intent]:
    intents: list[Intent] = []
    for event in events:
        intents += eng.process(event)
    if until is not None:
        intents += eng.advance(SITE, until)
    return intents


def of(intents: Iterable[Intent], rule: RuleName) -> list[Intent]:
    return [i for i in intents if i.rule is rule]


def device_of(intent: Intent) -> str:
    assert not isinstance(intent, Escalate)
    return intent.device


def leave_and_return(out_at: datetime, back_at: datetime, device: str = "door-1") -> list[Event]:
    return [
        ev(device, out_at, EventKind.DOOR_OPEN),
        ev(device, out_at + timedelta(seconds=20), EventKind.DOOR_CLOSED),
        ev(device, back_at, EventKind.DOOR_OPEN),
        ev(device, back_at + timedelta(seconds=20), EventKind.DOOR_CLOSED),
    ]


# -- left flat ------------------------------------------------------------------------


def test_flat_door_opened_at_night_raises_left_flat_alert() -> None:
    intents = of(feed(engine(), [ev("door-1", night(2, 10), EventKind.DOOR_OPEN)]),
                 RuleName.LEFT_FLAT)
    assert intents == [
        Trigger(SITE, "flat-1", "door-1", RuleName.LEFT_FLAT, Severity.NORMAL, night(2, 10),
                f"{SITE}/flat-1/left_flat/{night(2, 10).isoformat()}",
                f"{SITE}/door-1/door-1@{night(2, 10).isoformat()}/door.open",
                False, "flat door opened at night")
    ]


def test_resident_not_back_within_15_minutes_is_escalated_on_the_clock_alone() -> None:
    eng = engine()
    opened = night(2, 10)
    feed(eng, [ev("door-1", opened, EventKind.DOOR_OPEN),
               ev("door-1", opened + timedelta(seconds=20), EventKind.DOOR_CLOSED)])
    assert eng.next_deadline(SITE) == opened + timedelta(minutes=10)  # unheard devices first
    assert of(eng.advance(SITE, night(2, 24, 59)), RuleName.LEFT_FLAT) == []
    escalations = of(eng.advance(SITE, night(2, 40)), RuleName.LEFT_FLAT)
    assert escalations == [Escalate(SITE, "flat-1", RuleName.LEFT_FLAT,
                                    f"{SITE}/flat-1/left_flat/{opened.isoformat()}",
                                    night(2, 25), False)]


def test_resident_back_through_the_door_within_grace_closes_itself_without_a_call() -> None:
    intents = of(feed(engine(), leave_and_return(night(2, 10), night(2, 20)),
                      until=night(4, 0)), RuleName.LEFT_FLAT)
    assert [type(i) for i in intents] == [Trigger, Clear]
    assert not any(isinstance(i, Trigger) and i.call for i in intents)
    assert intents[1].ts == night(2, 20)  # returned by itself, when the door opened


def test_motion_in_the_flat_after_the_door_closed_counts_as_back() -> None:
    events = [ev("door-1", night(2, 10), EventKind.DOOR_OPEN),
              ev("door-1", night(2, 10, 20), EventKind.DOOR_CLOSED),
              ev("pir-1", night(2, 12), EventKind.MOTION)]
    intents = feed(engine(), events, until=night(4, 0))
    assert [type(i) for i in of(intents, RuleName.LEFT_FLAT)] == [Trigger, Clear]


def test_back_at_exactly_15_minutes_is_too_late() -> None:
    intents = feed(engine(), leave_and_return(night(2, 10), night(2, 25)), until=night(4, 0))
    assert [type(i) for i in of(intents, RuleName.LEFT_FLAT)] == [Trigger, Escalate]


def test_flat_door_opened_in_daytime_raises_nothing() -> None:
    events = leave_and_return(local(2026, 11, 24, 14, 0), local(2026, 11, 24, 15, 0))
    assert of(feed(engine(), events, until=local(2026, 11, 24, 16)), RuleName.LEFT_FLAT) == []


def test_resident_returning_at_night_after_leaving_in_daytime_is_not_leaving() -> None:
    events = leave_and_return(local(2026, 11, 23, 18, 0), night(23, 30))
    assert of(feed(engine(), events, until=night(4, 0)), RuleName.LEFT_FLAT) == []


def test_left_flat_switched_off_for_one_room_raises_nothing_there_only() -> None:
    rules = RuleBook(rooms={"flat-1": {RuleName.LEFT_FLAT: RuleOverride(enabled=False)}})
    events = [ev("door-1", night(2, 10), EventKind.DOOR_OPEN),
              ev("door-2", night(2, 11), EventKind.DOOR_OPEN)]
    intents = of(feed(engine(rules), events, until=night(4, 0)), RuleName.LEFT_FLAT)
    assert {i.room for i in intents} == {"flat-2"}


def test_escalation_minutes_come_from_the_room_over_the_site() -> None:
    rules = RuleBook(site={RuleName.LEFT_FLAT: RuleOverride(minutes=30)},
                     rooms={"flat-2": {RuleName.LEFT_FLAT: RuleOverride(minutes=5)}})
    events = [ev("door-1", night(2, 0), EventKind.DOOR_OPEN),
              ev("door-2", night(2, 0), EventKind.DOOR_OPEN)]
    escalations = [i for i in feed(engine(rules), events, until=night(4, 0))
                   if isinstance(i, Escalate)]
    assert [(i.room, i.ts) for i in escalations] == [("flat-2", night(2, 5)),
                                                     ("flat-1", night(2, 30))]


def test_flat_without_basis_raises_no_resident_alerts_but_still_technical_ones() -> None:
    eng = engine(bases={"flat-1": []})
    events = [ev("door-1", night(2, 10), EventKind.DOOR_OPEN, battery=9),
              ev("bed-1", night(2, 11), EventKind.BED_EXIT)]
    intents = feed(eng, events, until=night(4, 0))
    flat_rules = {i.rule for i in intents if i.room == "flat-1"}
    assert flat_rules == {RuleName.LOW_BATTERY, RuleName.SENSOR_OFFLINE}


def test_decision_basis_monitors_only_within_its_validity_dates() -> None:
    decision = MonitoringBasis(BasisKind.DECISION, "KK-2026-114",
                               valid_from=date(2026, 11, 24), valid_to=date(2026, 11, 30))
    eng = engine(bases={"flat-1": [decision]})
    before = of(feed(eng, leave_and_return(night(23, 30), night(23, 40))), RuleName.LEFT_FLAT)
    inside = of(feed(eng, leave_and_return(night(0, 30), night(0, 40))), RuleName.LEFT_FLAT)
    assert before == []  # 23 November: not yet covered
    # 24 November: covered (the outing, then "returned by itself")
    assert [(type(i), i.ts) for i in inside] == [(Trigger, night(0, 30)), (Clear, night(0, 40))]


def test_decision_without_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="reference"):
        MonitoringBasis(BasisKind.DECISION, None, valid_from=date(2026, 1, 1))


# -- bed exit --------------------------------------------------------------------------


def test_bed_exit_not_back_within_10_minutes_raises_alert_at_exit_plus_10() -> None:
    eng = engine()
    feed(eng, [ev("bed-1", night(3, 0), EventKind.BED_EXIT)])
    intents = of(eng.advance(SITE, night(3, 30)), RuleName.BED_EXIT_NOT_BACK)
    assert [(type(i), i.ts, device_of(i)) for i in intents] == [(Trigger, night(3, 10), "bed-1")]


def test_back_in_bed_within_10_minutes_raises_nothing() -> None:
    events = [ev("bed-1", night(3, 0), EventKind.BED_EXIT),
              ev("bed-1", night(3, 9, 59), EventKind.BED_ENTER)]
    assert of(feed(engine(), events, until=night(4)), RuleName.BED_EXIT_NOT_BACK) == []


def test_bed_exit_then_a_short_outing_hands_over_and_rearms_the_bed_timer_on_return() -> None:
    # Out of the flat the outing's allowed time governs; back in the flat and still not in
    # bed, the bed's allowed time runs again from the return.
    events = [ev("bed-1", night(3, 0), EventKind.BED_EXIT),
              *leave_and_return(night(3, 2), night(3, 5))]
    intents = feed(engine(), events, until=night(4))
    assert [i.ts for i in of(intents, RuleName.BED_EXIT_NOT_BACK)] == [night(3, 15)]
    assert [type(i) for i in of(intents, RuleName.LEFT_FLAT)] == [Trigger, Clear]


def test_bed_exit_in_daytime_or_switched_off_raises_nothing() -> None:
    off = RuleBook(rooms={"flat-1": {RuleName.BED_EXIT_NOT_BACK: RuleOverride(enabled=False)}})
    day = [ev("bed-1", local(2026, 11, 24, 13, 0), EventKind.BED_EXIT)]
    at_night = [ev("bed-1", night(3, 0), EventKind.BED_EXIT)]
    assert of(feed(engine(), day, until=local(2026, 11, 24, 14)),
              RuleName.BED_EXIT_NOT_BACK) == []
    assert of(feed(engine(off), at_night, until=night(4)), RuleName.BED_EXIT_NOT_BACK) == []


def test_bed_exit_severity_and_minutes_can_be_set_per_room() -> None:
    rules = RuleBook(rooms={"flat-1": {RuleName.BED_EXIT_NOT_BACK: RuleOverride(
        minutes=5, severity=Severity.HIGH)}})
    intents = feed(engine(rules), [ev("bed-1", night(3, 0), EventKind.BED_EXIT)], night(4))
    [alert] = of(intents, RuleName.BED_EXIT_NOT_BACK)
    assert isinstance(alert, Trigger)
    assert (alert.ts, alert.severity) == (night(3, 5), Severity.HIGH)


# -- common motion -----------------------------------------------------------------------


def test_common_motion_at_night_raises_one_alert_merged_while_it_continues() -> None:
    times = [night(1, 0), night(1, 4), night(1, 9), night(1, 15)]
    intents = of(feed(engine(), [ev("pir-lounge", t, EventKind.MOTION) for t in times]),
                 RuleName.COMMON_MOTION)
    assert {i.episode_key for i in intents} == {f"{SITE}/lounge/common_motion/"
                                                f"{night(1, 0).isoformat()}"}
    assert len({i.event_key for i in intents if isinstance(i, Trigger)}) == 4


def test_common_motion_after_a_quiet_gap_is_a_new_episode() -> None:
    times = [night(1, 0), night(1, 5), night(1, 15), night(1, 16)]
    intents = of(feed(engine(), [ev("pir-lounge", t, EventKind.MOTION) for t in times]),
                 RuleName.COMMON_MOTION)
    starts = sorted({i.episode_key.rsplit("/", 1)[1] for i in intents})
    assert starts == [night(1, 0).isoformat(), night(1, 15).isoformat()]


def test_presence_held_on_keeps_the_episode_going_until_it_goes_off() -> None:
    events = [ev("pir-lounge", night(1, 0), EventKind.PRESENCE_ON),
              ev("pir-lounge", night(1, 40), EventKind.PRESENCE_OFF),
              ev("pir-lounge", night(1, 45), EventKind.MOTION)]
    intents = of(feed(engine(), events), RuleName.COMMON_MOTION)
    assert len({i.episode_key for i in intents}) == 1


def test_common_motion_in_daytime_raises_nothing() -> None:
    events = [ev("pir-lounge", local(2026, 11, 24, 10, 0), EventKind.MOTION)]
    assert of(feed(engine(), events), RuleName.COMMON_MOTION) == []


# -- building exit ---------------------------------------------------------------------


def test_building_exit_opened_at_night_raises_high_alert() -> None:
    events = [ev("exit-1", night(4, 0), EventKind.DOOR_OPEN),
              ev("exit-1", night(4, 1), EventKind.DOOR_CLOSED),
              ev("exit-1", local(2026, 11, 24, 9, 0), EventKind.DOOR_OPEN)]
    [alert] = of(feed(engine(), events), RuleName.BUILDING_EXIT)
    assert isinstance(alert, Trigger)
    assert (alert.ts, alert.severity, alert.room) == (night(4, 0), Severity.HIGH, "main-exit")


# -- sensor offline ----------------------------------------------------------------------


def test_silent_device_is_offline_after_twice_its_heartbeat_and_clears_when_heard() -> None:
    eng = engine()
    feed(eng, [ev(d, night(1, 0), EventKind.HEARTBEAT) for d in layout().devices])
    assert of(eng.advance(SITE, night(1, 9, 59)), RuleName.SENSOR_OFFLINE) == []
    quiet = night(1, 5)
    feed(eng, [ev(d, quiet, EventKind.HEARTBEAT) for d in layout().devices if d != "bed-1"])
    offline = of(eng.advance(SITE, night(1, 14)), RuleName.SENSOR_OFFLINE)
    assert [(type(i), device_of(i), i.ts) for i in offline] == [(Trigger, "bed-1", night(1, 10))]
    back = of(eng.process(ev("bed-1", night(1, 14), EventKind.HEARTBEAT)),
              RuleName.SENSOR_OFFLINE)
    assert back == [Clear(SITE, "flat-1", "bed-1", RuleName.SENSOR_OFFLINE,
                          offline[0].episode_key, night(1, 14))]


@pytest.mark.parametrize(("severity", "calls"), [(None, False), (Severity.HIGH, True)])
def test_a_dead_sensor_is_for_the_technician_unless_the_site_asks_for_a_call(
        severity: Severity | None, calls: bool) -> None:
    # Issue 13 §5: device faults go to the pre-shift check and the maintenance list, not
    # as calls to night staff, unless the site sets them to severity high.
    rules = RuleBook(site={RuleName.SENSOR_OFFLINE: RuleOverride(severity=severity)})
    eng = engine(rules)
    feed(eng, [ev(d, night(1, 0), EventKind.HEARTBEAT) for d in layout().devices])
    feed(eng, [ev(d, night(1, 5), EventKind.HEARTBEAT) for d in layout().devices if d != "bed-1"])
    [offline] = of(eng.advance(SITE, night(1, 14)), RuleName.SENSOR_OFFLINE)
    assert isinstance(offline, Trigger) and offline.call is calls


def test_offline_status_raises_sensor_offline_in_daytime_and_online_clears_it() -> None:
    eng = engine()
    noon = local(2026, 11, 24, 12, 0)
    feed(eng, [ev("exit-1", noon, EventKind.HEARTBEAT)])
    down = eng.process_status(StatusChange(SITE, "exit-1", Presence.OFFLINE, noon))
    again = eng.process_status(StatusChange(SITE, "exit-1", Presence.OFFLINE,
                                            noon + timedelta(minutes=1)))
    up = eng.process_status(StatusChange(SITE, "exit-1", Presence.ONLINE,
                                         noon + timedelta(minutes=2)))
    assert [(type(i), i.rule) for i in down] == [(Trigger, RuleName.SENSOR_OFFLINE)]
    assert again == []
    assert [(type(i), i.episode_key) for i in up] == [(Clear, down[0].episode_key)]


def test_a_device_beating_every_second_keeps_the_engine_small() -> None:
    eng = engine()
    beats = [ev("exit-1", night(1, 0) + timedelta(seconds=s), EventKind.HEARTBEAT)
             for s in range(3600)]
    assert [i for i in feed(eng, beats) if getattr(i, "device", "") == "exit-1"] == []
    # Rooms ignore heartbeats; a run of heartbeats keeps about one per allowed silence
    # (2 x 300 s), not 3,600.
    assert eng.inputs_kept(SITE) <= 3600 // 600 + 2


def test_late_inputs_between_forgotten_heartbeats_give_the_in_order_alerts() -> None:
    def identity(i: Intent) -> tuple[str, str, str, datetime]:
        return (type(i).__name__, i.episode_key, getattr(i, "event_key", ""), i.ts)

    beats = [ev("exit-1", night(1, 0) + timedelta(seconds=10 * s), EventKind.HEARTBEAT)
             for s in range(360)]
    late = [ev("exit-1", night(1, 20, 5), EventKind.DOOR_OPEN, battery=10),
            ev("exit-1", night(1, 20, 6), EventKind.DOOR_CLOSED, battery=50)]
    in_order = feed(engine(), sorted(beats + late, key=lambda e: e.ts), until=night(2, 0))
    live = engine()
    seen = feed(live, beats) + feed(live, late, until=night(2, 0))
    assert {identity(i) for i in seen} == {identity(i) for i in in_order}
    assert {i.rule for i in seen} >= {RuleName.BUILDING_EXIT, RuleName.LOW_BATTERY}
    # A silence longer than allowed is still a silence: heartbeats 11 minutes apart.
    gap = engine()
    offline = feed(gap, [ev("exit-1", night(3, m), EventKind.HEARTBEAT) for m in (0, 11, 12)])
    assert [(type(i), i.ts) for i in of(offline, RuleName.SENSOR_OFFLINE)
            if device_of(i) == "exit-1"] == [
        (Trigger, night(3, 10)), (Clear, night(3, 11))]


def test_device_never_heard_from_is_reported_offline() -> None:
    eng = engine()
    feed(eng, [ev(d, night(1, m), EventKind.HEARTBEAT) for m in (0, 5)
               for d in layout().devices if d != "pir-1"])
    offline = of(eng.advance(SITE, night(1, 11)), RuleName.SENSOR_OFFLINE)
    assert [(device_of(i), i.ts) for i in offline] == [("pir-1", night(1, 10))]


def test_sensor_offline_switched_off_for_a_room_raises_nothing_there() -> None:
    rules = RuleBook(rooms={"lounge": {RuleName.SENSOR_OFFLINE: RuleOverride(enabled=False)}})
    eng = engine(rules)
    feed(eng, [ev("door-1", night(1, 0), EventKind.HEARTBEAT)])
    devices = {device_of(i) for i in of(eng.advance(SITE, night(2, 0)), RuleName.SENSOR_OFFLINE)}
    assert "pir-lounge" not in devices
    assert "door-1" in devices


# -- low battery ---------------------------------------------------------------------------


def test_low_battery_notice_comes_once_until_the_battery_is_back_at_20() -> None:
    levels = [40, 14, 10, 18, 12, 20, 13]
    events = [ev("door-1", night(1, minute), EventKind.HEARTBEAT, battery=level)
              for minute, level in enumerate(levels)]
    intents = of(feed(engine(), events), RuleName.LOW_BATTERY)
    assert [(type(i), i.ts) for i in intents] == [
        (Trigger, night(1, 1)), (Clear, night(1, 5)), (Trigger, night(1, 6))]
    assert {i.severity for i in intents if isinstance(i, Trigger)} == {Severity.NOTICE}


# -- daylight saving time -----------------------------------------------------------------


def test_october_night_escalates_fifteen_real_minutes_after_the_door_opened() -> None:
    opened = local(2026, 10, 25, 2, 30)  # 02:30 CEST, first time round (00:30 UTC)
    closed = local(2026, 10, 25, 2, 50, fold=1)  # 02:50 CET, second time round
    eng = engine()
    intents = feed(eng, [ev("door-1", opened, EventKind.DOOR_OPEN),
                         ev("door-1", closed, EventKind.DOOR_CLOSED)],
                   until=local(2026, 10, 25, 4, 0))
    left = of(intents, RuleName.LEFT_FLAT)
    assert [(type(i), i.ts) for i in left] == [
        (Trigger, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (Escalate, datetime(2026, 10, 25, 0, 45, tzinfo=UTC)),
    ]


def test_march_night_escalates_fifteen_real_minutes_after_the_door_opened() -> None:
    opened = local(2026, 3, 29, 1, 55)  # 01:55 CET; clocks jump 02:00 -> 03:00
    intents = feed(engine(), [ev("door-1", opened, EventKind.DOOR_OPEN)],
                   until=local(2026, 3, 29, 5, 0))
    escalation = [i for i in of(intents, RuleName.LEFT_FLAT) if isinstance(i, Escalate)]
    assert [i.ts for i in escalation] == [local(2026, 3, 29, 3, 10)]  # 03:10 CEST
    assert escalation[0].ts - opened == timedelta(minutes=15)


def test_bed_exit_in_the_repeated_october_hour_fires_ten_real_minutes_later() -> None:
    got_up = local(2026, 10, 25, 2, 55, fold=1)  # 02:55 CET, second time round
    intents = feed(engine(), [ev("bed-1", got_up, EventKind.BED_EXIT)],
                   until=local(2026, 10, 25, 5, 0))
    assert [i.ts for i in of(intents, RuleName.BED_EXIT_NOT_BACK)] == [
        got_up + timedelta(minutes=10)]


# -- late and out-of-order events -----------------------------------------------------------


def test_buffered_door_events_arriving_late_raise_a_late_alert_and_late_escalation() -> None:
    eng = engine()
    feed(eng, [ev("pir-1", night(2, 30), EventKind.MOTION)], until=night(2, 40))
    flushed = leave_and_return(night(2, 0), night(2, 35))[:2]
    intents = of(feed(eng, flushed), RuleName.LEFT_FLAT)
    key = f"{SITE}/flat-1/left_flat/{night(2, 0).isoformat()}"
    assert intents == [
        Trigger(SITE, "flat-1", "door-1", RuleName.LEFT_FLAT, Severity.NORMAL, night(2, 0),
                key, f"{SITE}/door-1/door-1@{night(2, 0).isoformat()}/door.open", True,
                "flat door opened at night"),
        Escalate(SITE, "flat-1", RuleName.LEFT_FLAT, key, night(2, 15), True),
    ]
    # The motion at 02:30 (known before) now reads as the resident being back.
    assert of(eng.advance(SITE, night(4, 0)), RuleName.LEFT_FLAT) == []


def test_late_bed_exit_whose_deadline_has_passed_fires_at_once_marked_late() -> None:
    eng = engine()
    eng.advance(SITE, night(3, 30))
    intents = of(eng.process(ev("bed-1", night(3, 0), EventKind.BED_EXIT)),
                 RuleName.BED_EXIT_NOT_BACK)
    assert [(i.ts, i.late) for i in intents if isinstance(i, Trigger)] == [(night(3, 10), True)]


def test_late_bed_enter_arriving_before_the_exit_prevents_the_alert() -> None:
    eng = engine()
    eng.advance(SITE, night(3, 30))
    intents = feed(eng, [ev("bed-1", night(3, 5), EventKind.BED_ENTER),
                         ev("bed-1", night(3, 0), EventKind.BED_EXIT)])
    assert of(intents, RuleName.BED_EXIT_NOT_BACK) == []


def test_late_common_motion_of_a_finished_episode_is_marked_late() -> None:
    eng = engine()
    eng.advance(SITE, night(2, 0))
    intents = of(eng.process(ev("pir-lounge", night(1, 0), EventKind.MOTION)),
                 RuleName.COMMON_MOTION)
    [alert] = [i for i in intents if isinstance(i, Trigger)]
    assert alert.late
    assert [i.ts for i in intents if isinstance(i, Clear)] == [night(1, 10)]  # ended by itself


def test_slightly_delayed_event_with_deadline_ahead_is_not_late() -> None:
    eng = engine()
    eng.advance(SITE, night(2, 0, 5))
    [alert] = of(eng.process(ev("door-1", night(2, 0), EventKind.DOOR_OPEN)),
                 RuleName.LEFT_FLAT)
    assert isinstance(alert, Trigger)
    assert not alert.late


def test_the_same_event_delivered_twice_is_evaluated_once() -> None:
    eng = engine()
    door = ev("door-1", night(2, 0), EventKind.DOOR_OPEN)
    assert of(eng.process(door), RuleName.LEFT_FLAT) != []
    assert eng.process(door) == []


# -- determinism ------------------------------------------------------------------------


def _a_night() -> list[Event]:
    start = night(21, 50)
    events = [ev(d, start + timedelta(minutes=5 * k), EventKind.HEARTBEAT,
                 battery=max(5, 30 - k))
              for k in range(30) for d in layout().devices if (d, k) != ("bed-1", 12)]
    events += leave_and_return(night(23, 5), night(23, 30))
    events += [ev("bed-1", night(0, 10), EventKind.BED_EXIT),
               ev("bed-1", night(0, 12), EventKind.BED_ENTER),
               ev("bed-1", night(1, 0), EventKind.BED_EXIT)]
    events += [ev("pir-lounge", night(0, m), EventKind.MOTION) for m in (1, 3, 8, 30, 33)]
    events += [ev("exit-1", night(2, 0), EventKind.DOOR_OPEN)]
    return sorted(events, key=lambda e: (e.ts, e.device, e.id))


def test_replaying_the_same_events_into_a_fresh_engine_gives_identical_intents() -> None:
    first = feed(engine(), _a_night(), until=night(7, 0))
    second = feed(engine(), _a_night(), until=night(7, 0))
    assert first == second
    assert {i.rule for i in first} == set(RuleName)


def test_live_night_with_clock_ticks_and_shuffled_delivery_gives_the_replayed_alerts() -> None:
    def identity(i: Intent) -> tuple[str, str, str]:
        return (type(i).__name__, i.episode_key, getattr(i, "event_key", ""))

    replayed = feed(engine(), _a_night(), until=night(7, 0))
    live = engine()
    seen: list[Intent] = []
    events = _a_night()
    rng = random.Random(7)
    # Deliver in small shuffled batches (a few seconds of jitter), ticking every minute.
    batches = [list(g) for _, g in itertools.groupby(events, key=lambda e: e.ts)]
    for batch in batches:
        rng.shuffle(batch)
        seen += feed(live, batch)
        seen += live.advance(SITE, batch[0].ts + timedelta(seconds=30))
    seen += live.advance(SITE, night(7, 0))
    assert {identity(i) for i in seen} == {identity(i) for i in replayed}
    assert [i for i in seen if getattr(i, "late", False)] == []


# -- engine surface -------------------------------------------------------------------------


def test_an_illegal_excursion_transition_raises() -> None:
    with pytest.raises(IllegalTransition, match="door_closed is not allowed from state home"):
        step(EXCURSION, Excursion.HOME, ExcursionMove.DOOR_CLOSED)


def test_event_for_a_site_the_engine_does_not_know_raises_unknown_site() -> None:
    event = Event("elsewhere", "door-1", "1", night(2, 0), EventKind.DOOR_OPEN)
    with pytest.raises(UnknownSite, match="no layout for site 'elsewhere'"):
        engine().process(event)


def test_event_from_a_device_missing_from_the_layout_raises_no_alert() -> None:
    assert engine().process(ev("ghost", night(2, 0), EventKind.DOOR_OPEN)) == []


def test_device_added_by_a_layout_update_is_watched_from_then_on() -> None:
    eng = engine()
    feed(eng, [ev(d, night(1, 0), EventKind.HEARTBEAT) for d in layout().devices])
    bigger = layout()
    devices = {**bigger.devices, "bed-2": DeviceInfo("flat-2", DeviceKind.BED, heartbeat_s=60)}
    eng.update_layout(SiteLayout(SITE, bigger.night, bigger.rooms, devices), RuleBook())
    offline = of(eng.advance(SITE, night(1, 3)), RuleName.SENSOR_OFFLINE)
    assert [(device_of(i), i.ts) for i in offline] == [("bed-2", night(1, 2))]


def test_rule_book_refuses_unknown_rules_and_non_positive_minutes() -> None:
    with pytest.raises(ValueError, match="unknown rule 'snoring'"):
        RuleBook(site={"snoring": RuleOverride()})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least 1"):
        RuleBook(rooms={"flat-1": {RuleName.LEFT_FLAT: RuleOverride(minutes=0)}})


# -- situations: calls vs quiet (issue 13) ------------------------------------------------


def smoke_break(out_at: datetime, minutes: int) -> list[Event]:
    """Flat 1's resident goes out through the lounge and the main exit, and comes back."""
    back = out_at + timedelta(minutes=minutes)
    return [ev("door-1", out_at, EventKind.DOOR_OPEN),
            ev("door-1", out_at + timedelta(seconds=5), EventKind.DOOR_CLOSED),
            ev("pir-lounge", out_at + timedelta(seconds=40), EventKind.MOTION),
            ev("exit-1", out_at + timedelta(seconds=80), EventKind.DOOR_OPEN),
            ev("exit-1", out_at + timedelta(seconds=85), EventKind.DOOR_CLOSED),
            ev("exit-1", back - timedelta(seconds=80), EventKind.DOOR_OPEN),
            ev("exit-1", back - timedelta(seconds=75), EventKind.DOOR_CLOSED),
            ev("pir-lounge", back - timedelta(seconds=40), EventKind.MOTION),
            ev("door-1", back, EventKind.DOOR_OPEN),
            ev("door-1", back + timedelta(seconds=5), EventKind.DOOR_CLOSED)]


def resident(intents: Iterable[Intent]) -> list[Intent]:
    return [i for i in intents if i.rule not in (RuleName.SENSOR_OFFLINE, RuleName.LOW_BATTERY)]


def calls(intents: Iterable[Intent]) -> list[Intent]:
    return [i for i in intents if isinstance(i, Escalate) or (isinstance(i, Trigger) and i.call)]


# A shelter whose residents go out to smoke loosens the default "building exits call at
# once": an outing past the exit calls only when its allowed time is up.
SHELTER = RuleBook(site={RuleName.BUILDING_EXIT: RuleOverride(minutes=15)})


def test_smoke_break_back_in_time_is_one_quiet_situation_that_closes_itself() -> None:
    intents = resident(feed(engine(SHELTER), smoke_break(night(1, 0), 8), until=night(4)))
    outing = f"{SITE}/flat-1/left_flat/{night(1, 0).isoformat()}"
    assert {i.episode_key for i in intents} == {outing}  # motion and exits merged into it
    assert [type(i) for i in intents] == [Trigger] * 5 + [Clear]
    assert calls(intents) == []
    exits = [i for i in intents if isinstance(i, Trigger) and i.device == "exit-1"]
    assert {i.severity for i in exits} == {Severity.HIGH}  # severity up: building left


def test_smoke_break_where_building_exits_always_call_is_a_call_at_once() -> None:
    # The default: a building exit at night is a call at once (a dementia or autism site).
    intents = resident(feed(engine(), smoke_break(night(1, 0), 8), until=night(4)))
    [call] = calls(intents)
    assert (call.ts, call.rule, call.room) == (night(1, 1, 20), RuleName.LEFT_FLAT, "flat-1")
    assert not any(isinstance(i, Clear) for i in intents)  # a call stays for staff
    assert not any(isinstance(i, Escalate) for i in intents)


def test_outing_past_its_allowed_time_becomes_a_call_at_the_deadline() -> None:
    intents = resident(feed(engine(SHELTER), smoke_break(night(1, 0), 40), until=night(4)))
    assert [(type(i), i.ts) for i in calls(intents)] == [(Escalate, night(1, 15))]
    assert not any(isinstance(i, Clear) for i in intents)


def test_building_exit_shortens_the_allowed_time_when_the_site_says_so() -> None:
    rules = RuleBook(site={RuleName.BUILDING_EXIT: RuleOverride(minutes=5)})
    intents = resident(feed(engine(rules), smoke_break(night(1, 0), 40), until=night(4)))
    assert [(type(i), i.ts) for i in calls(intents)] == [(Escalate, night(1, 6, 20))]


def test_unexplained_common_motion_is_a_quiet_situation_that_ends_by_itself() -> None:
    events = [ev("pir-lounge", night(1, 0), EventKind.MOTION),
              ev("pir-lounge", night(1, 3), EventKind.MOTION)]
    intents = resident(feed(engine(), events, until=night(4)))
    assert [(type(i), i.ts) for i in intents] == [
        (Trigger, night(1, 0)), (Trigger, night(1, 3)), (Clear, night(1, 13))]
    assert calls(intents) == []


def test_common_motion_during_an_outing_raises_no_alert_of_its_own() -> None:
    events = [ev("door-2", night(2, 0), EventKind.DOOR_OPEN),
              ev("door-2", night(2, 0, 5), EventKind.DOOR_CLOSED),
              ev("pir-lounge", night(2, 1), EventKind.MOTION)]
    intents = resident(feed(engine(), events))
    assert of(intents, RuleName.COMMON_MOTION) == []
    [merged] = [i for i in intents if isinstance(i, Trigger) and i.device == "pir-lounge"]
    assert merged.episode_key == f"{SITE}/flat-2/left_flat/{night(2, 0).isoformat()}"


def test_coming_in_then_a_flat_door_is_arriving_home_not_leaving() -> None:
    arrive = [ev("exit-1", night(0, 30), EventKind.DOOR_OPEN),
              ev("exit-1", night(0, 30, 5), EventKind.DOOR_CLOSED),
              ev("pir-lounge", night(0, 31), EventKind.MOTION),
              ev("door-2", night(0, 32), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 32, 5), EventKind.DOOR_CLOSED)]
    later = [ev("door-2", night(2, 0), EventKind.DOOR_OPEN),
             ev("door-2", night(2, 0, 5), EventKind.DOOR_CLOSED)]
    eng = engine(SHELTER)
    came_in = resident(feed(eng, arrive, until=night(1, 30)))
    assert of(came_in, RuleName.LEFT_FLAT) == []  # no outing, no call 15 min later
    assert [type(i) for i in of(came_in, RuleName.BUILDING_EXIT)] == [Trigger] * 3 + [Clear]
    assert calls(came_in) == []
    # The flat is known to be occupied: its next door opening is leaving, not coming back.
    went_out = resident(feed(eng, later, until=night(3)))
    assert [(type(i), i.ts) for i in went_out] == [(Trigger, night(2, 0)),
                                                   (Escalate, night(2, 15))]


def test_flat_door_long_after_someone_came_in_is_leaving() -> None:
    events = [ev("exit-1", night(0, 30), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 40), EventKind.DOOR_OPEN)]
    intents = resident(feed(engine(), events))
    assert [i.room for i in of(intents, RuleName.LEFT_FLAT)] == ["flat-2"]


def test_unexplained_building_exit_calls_at_once_unless_the_site_loosened_it() -> None:
    opened = [ev("exit-1", night(3, 0), EventKind.DOOR_OPEN)]
    quiet = resident(feed(engine(SHELTER), opened, until=night(4)))
    loud = resident(feed(engine(), opened, until=night(4)))
    assert calls(quiet) == [] and len(quiet) == 1
    assert [(i.ts, i.rule) for i in calls(loud)] == [(night(3, 0), RuleName.BUILDING_EXIT)]


def test_bed_exit_not_back_is_a_call() -> None:
    intents = feed(engine(), [ev("bed-1", night(3, 0), EventKind.BED_EXIT)], until=night(4))
    assert [(i.ts, i.rule) for i in calls(resident(intents))] == [
        (night(3, 10), RuleName.BED_EXIT_NOT_BACK)]


def test_fall_after_a_lost_bed_enter_is_still_called() -> None:
    # 01:00 up, back in bed at 01:05 but that bed.enter is lost; 03:00 up again and falls.
    events = [ev("bed-1", night(1, 0), EventKind.BED_EXIT),
              ev("bed-1", night(3, 0), EventKind.BED_EXIT)]
    intents = feed(engine(), events, until=night(4))
    assert [i.ts for i in calls(resident(intents))] == [night(1, 10), night(3, 10)]


def test_a_bed_timer_running_out_after_the_night_is_handed_over_quietly_not_called() -> None:
    # Up at 06:55; the night ends at 07:00 and the timer at 07:05: the day has begun, so no
    # call to night staff, but an open quiet situation for the day shift's handover.
    intents = feed(engine(), [ev("bed-1", night(6, 55), EventKind.BED_EXIT)],
                   until=night(8))
    beds = of(intents, RuleName.BED_EXIT_NOT_BACK)
    assert [(type(i), i.ts) for i in beds] == [(Trigger, night(7, 5))]
    trigger = beds[0]
    assert isinstance(trigger, Trigger) and not trigger.call
    assert "handed over" in trigger.detail
    # The same timer inside the night is a call, as before.
    inside = feed(engine(), [ev("bed-1", night(6, 49), EventKind.BED_EXIT)], until=night(8))
    assert [i.ts for i in calls(resident(inside))] == [night(6, 59)]


@pytest.mark.parametrize("seen", [
    ("bed-1", EventKind.BED_ENTER), ("door-1", EventKind.DOOR_OPEN)])
def test_a_handed_over_bed_situation_closes_when_the_resident_is_seen_up_and_about(
        seen: tuple[str, EventKind]) -> None:
    device, kind = seen
    events = [ev("bed-1", night(6, 55), EventKind.BED_EXIT), ev(device, night(7, 20), kind)]
    beds = of(feed(engine(), events, until=night(8)), RuleName.BED_EXIT_NOT_BACK)
    assert [(type(i), i.ts) for i in beds] == [(Trigger, night(7, 5)), (Clear, night(7, 20))]
    assert beds[0].episode_key == beds[1].episode_key


def bed_report(ts: datetime, occupied: bool) -> Event:
    """A heartbeat of bed-1 reporting the bed's state (protocol v1's ``occupied``)."""
    return Event(SITE, "bed-1", f"bed-1@{ts.isoformat()}/report", ts, EventKind.HEARTBEAT,
                 None, occupied)


def reports(first: datetime, last: datetime, occupied: bool) -> list[Event]:
    """bed-1's heartbeats every 5 minutes (its interval) from ``first`` to ``last``."""
    count = int((last - first) / timedelta(minutes=5)) + 1
    return [bed_report(first + timedelta(minutes=5 * i), occupied) for i in range(count)]


def test_a_fall_whose_bed_exit_was_lost_is_called_from_the_beds_own_report() -> None:
    # In bed, reported occupied every 5 min up to 02:58; the bed.exit at 03:00 is lost.
    # The 03:03 report says "empty": out of bed since 02:58 at the latest, called at 03:08.
    events = [ev("bed-1", night(23, 0), EventKind.BED_ENTER),
              *reports(night(23, 3), night(2, 58), occupied=True),
              *reports(night(3, 3), night(3, 58), occupied=False)]
    intents = feed(engine(), events, until=night(4))
    [call] = calls(resident(intents))
    assert (call.rule, call.ts) == (RuleName.BED_EXIT_NOT_BACK, night(3, 8))
    assert isinstance(call, Trigger) and "bed.exit never arrived" in call.detail
    # Without the state in its heartbeats, nothing could have been seen.
    bare = [replace(e, occupied=None) for e in events]
    assert calls(resident(feed(engine(), bare, until=night(4)))) == []


def test_a_bed_reported_occupied_cancels_the_timer_of_a_lost_bed_enter() -> None:
    events = [ev("bed-1", night(3, 0), EventKind.BED_EXIT),
              bed_report(night(3, 6), occupied=True)]   # back at 03:04; the enter was lost
    assert calls(resident(feed(engine(), events, until=night(4)))) == []


def test_an_empty_bed_report_long_after_the_last_in_bed_is_no_lost_exit() -> None:
    # In bed at 06:55 (the night's end); the next report with a state is the evening's,
    # 15 hours later: when the bed was left is unknown, nobody fell at 22:05.
    events = [bed_report(night(6, 55), occupied=True),
              bed_report(local(2026, 11, 24, 22, 5), occupied=False)]
    assert calls(resident(feed(engine(), events, until=local(2026, 11, 24, 23)))) == []
    # Nor an empty report before the resident was ever seen in bed tonight.
    early = [bed_report(night(22, 5), occupied=False), bed_report(night(22, 10), False)]
    assert calls(resident(feed(engine(), early, until=night(23)))) == []


def test_an_empty_bed_report_while_the_resident_is_out_of_the_flat_arms_no_bed_timer() -> None:
    # Out of the flat (the bed.exit lost): the outing's time governs, not a bed timer.
    events = sorted([*reports(night(1, 0), night(1, 55), occupied=True),
                     *leave_and_return(night(2, 0), night(2, 8)),
                     bed_report(night(2, 1), occupied=False),
                     ev("bed-1", night(2, 10), EventKind.BED_ENTER)], key=lambda e: e.ts)
    assert of(calls(resident(feed(engine(), events, until=night(3)))),
              RuleName.BED_EXIT_NOT_BACK) == []


def test_second_bed_exit_while_the_timer_runs_keeps_the_first_deadline() -> None:
    events = [ev("bed-1", night(1, 0), EventKind.BED_EXIT),
              ev("bed-1", night(1, 4), EventKind.BED_EXIT)]
    intents = feed(engine(), events, until=night(4))
    assert [i.ts for i in calls(resident(intents))] == [night(1, 10)]


def test_live_smoke_breaks_with_clock_ticks_give_the_replayed_situations() -> None:
    events = sorted(smoke_break(night(1, 0), 8) + smoke_break(night(2, 0), 40),
                    key=lambda e: (e.ts, e.device, e.id))
    replayed = resident(feed(engine(), events, until=night(4)))
    live = engine()
    seen: list[Intent] = []
    for event in events:
        seen += live.advance(SITE, event.ts - timedelta(seconds=2))
        seen += live.process(event)
    seen += live.advance(SITE, night(4))
    assert sorted(map(identity, resident(seen))) == sorted(map(identity, replayed))


def test_an_arrival_followed_by_a_building_exit_is_read_again_as_leaving() -> None:
    # Someone comes in; flat 2's door opens a minute later (taken as coming home); then a
    # building exit opens: flat 2's resident was going out. Never a blind spot: the outing
    # is raised from the door's time, out of the building, and calls at its allowed time.
    events = [ev("exit-1", night(0, 30), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 31), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 31, 5), EventKind.DOOR_CLOSED),
              ev("exit-1", night(0, 32), EventKind.DOOR_OPEN)]
    intents = of(resident(feed(engine(SHELTER), events, until=night(2))),
                 RuleName.LEFT_FLAT)
    outing = f"{SITE}/flat-2/left_flat/{night(0, 31).isoformat()}"
    assert [(type(i), i.episode_key, i.ts) for i in intents] == [
        (Trigger, outing, night(0, 31)), (Escalate, outing, night(0, 46))]
    [trigger] = [i for i in intents if isinstance(i, Trigger)]
    assert trigger.severity is Severity.HIGH


def test_an_exit_opening_an_outing_explains_is_no_arrival_for_another_flat() -> None:
    # Flat 1 goes out through the exit; a minute later flat 2's door opens. That opening
    # was flat 1's, so flat 2 is leaving (seen in the simulated nights: read as coming
    # home, a resident who got lost inside raised nothing).
    events = [ev("door-1", night(0, 30), EventKind.DOOR_OPEN),
              ev("door-1", night(0, 30, 5), EventKind.DOOR_CLOSED),
              ev("exit-1", night(0, 31), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 32), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 32, 5), EventKind.DOOR_CLOSED)]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    flat_2 = f"{SITE}/flat-2/left_flat/{night(0, 32).isoformat()}"
    assert (Escalate, night(0, 47)) in [(type(i), i.ts) for i in intents
                                        if i.episode_key == flat_2]


def test_a_return_followed_by_a_building_exit_is_read_again_as_leaving() -> None:
    # Flat 2 believed out; its door opens (taken as coming back), and a building exit opens
    # a minute later: the belief was wrong, the resident went out of the flat and the
    # building. Never a blind spot: the outing is raised from the door's time.
    events = [ev("door-2", night(0, 30), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 30, 5), EventKind.DOOR_CLOSED),
              ev("door-2", night(0, 35), EventKind.DOOR_OPEN),
              ev("door-2", night(0, 35, 5), EventKind.DOOR_CLOSED),
              ev("exit-1", night(0, 36), EventKind.DOOR_OPEN)]
    intents = of(resident(feed(engine(SHELTER), events, until=night(2))),
                 RuleName.LEFT_FLAT)
    again = f"{SITE}/flat-2/left_flat/{night(0, 35).isoformat()}"
    assert [(type(i), i.ts) for i in intents if i.episode_key == again] == [
        (Trigger, night(0, 35)), (Escalate, night(0, 50))]


def _opens(device: str, at: datetime) -> list[Event]:
    return [ev(device, at, EventKind.DOOR_OPEN),
            ev(device, at + timedelta(seconds=5), EventKind.DOOR_CLOSED)]


def test_an_outing_that_stayed_inside_does_not_claim_someone_coming_in() -> None:
    # Flat 1 went to the lounge ten minutes ago; someone comes in through the exit and
    # flat 2's door opens a minute later: flat 2's resident coming home (the lounge outing
    # cannot be at the exit). Claimed by flat 1's outing, every homecoming behind a long
    # outing read as leaving: needless calls, six a night at the simulated shelter.
    events = [*_opens("door-1", night(0, 20)), ev("pir-lounge", night(0, 21), EventKind.MOTION),
              *_opens("exit-1", night(0, 30)), *_opens("door-2", night(0, 31))]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    assert [i.room for i in of(intents, RuleName.LEFT_FLAT)] == ["flat-1"] * 3
    assert [(type(i), i.room, i.ts) for i in calls(intents)] == [
        (Escalate, "flat-1", night(0, 35))]  # flat 1 keeps its own deadline
    assert [type(i) for i in of(intents, RuleName.BUILDING_EXIT)][-1] is Clear  # came home


def test_an_outing_out_of_the_building_claims_one_opening_to_come_back_in() -> None:
    # Flat 1 left the building at 00:01 and is still out (a call at 00:16). The exit opens
    # at 00:30 (flat 1 coming back in, perhaps) and again at 00:40, then flat 2's door: the
    # second opening is someone else arriving, and flat 2 came home.
    events = [*_opens("door-1", night(0, 0)), *_opens("exit-1", night(0, 1)),
              *_opens("exit-1", night(0, 30)), *_opens("exit-1", night(0, 40)),
              ev("pir-lounge", night(0, 40, 30), EventKind.MOTION),
              *_opens("door-2", night(0, 41))]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    flat_1 = f"{SITE}/flat-1/left_flat/{night(0, 0).isoformat()}"
    assert [i.ts for i in intents if isinstance(i, Trigger) and i.device == "exit-1"
            and i.episode_key == flat_1] == [night(0, 1), night(0, 30)]
    assert [(type(i), i.room, i.ts) for i in calls(intents)] == [
        (Escalate, "flat-1", night(0, 15))]
    assert [i.room for i in of(intents, RuleName.LEFT_FLAT) if i.room == "flat-2"] == []


def test_a_return_before_an_exit_an_outing_explains_is_not_read_again() -> None:
    # Flat 2 comes back at 00:35; flat 1 leaves at 00:35:30 and goes out for a smoke at
    # 00:36. The exit is flat 1's walk out, not a doubt about flat 2's return.
    events = [*_opens("door-2", night(0, 30)), *_opens("door-2", night(0, 35)),
              *smoke_break(night(0, 35, 30), 8)]
    intents = resident(feed(engine(SHELTER), sorted(events, key=lambda e: e.ts),
                            until=night(2)))
    assert calls(intents) == []
    assert {i.room for i in intents if isinstance(i, Trigger) and i.device == "exit-1"} \
        == {"flat-1"}


def test_a_homecoming_that_claims_the_opening_undoes_the_read_again() -> None:
    # Flat 2 comes home at 00:31 through the exit opened at 00:30. The exit opens again at
    # 00:32: flat 2's homecoming is read again as leaving (quiet). Flat 1, believed home
    # (its resident out since before the night), opens its door at 00:33: the 00:32
    # opening was flat 1's resident coming in, so flat 2 came home after all (a needless
    # call at 00:46, once per late homecoming at the simulated shelter).
    events = [*_opens("exit-1", night(0, 30)), *_opens("door-2", night(0, 31)),
              *_opens("exit-1", night(0, 32)), *_opens("door-1", night(0, 33))]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    again = f"{SITE}/flat-2/left_flat/{night(0, 31).isoformat()}"
    assert [(type(i), i.ts) for i in intents if i.episode_key == again] == [
        (Trigger, night(0, 31)), (Clear, night(0, 33))]
    assert calls(intents) == []
    assert of(intents, RuleName.LEFT_FLAT)[-1].room == "flat-2"  # no outing for flat 1


def test_a_read_again_stays_when_nobody_comes_home_through_the_opening() -> None:
    # The same without flat 1's homecoming: flat 2 may have gone out again; it calls.
    events = [*_opens("exit-1", night(0, 30)), *_opens("door-2", night(0, 31)),
              *_opens("exit-1", night(0, 32))]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    assert [(type(i), i.room, i.ts) for i in calls(intents)] == [
        (Escalate, "flat-2", night(0, 46))]


def test_a_homecoming_takes_the_opening_nobody_explained_before_an_outings_own() -> None:
    # Flat 1 walks out through the lounge and the exit at 00:31 and back in at 00:31:20
    # (its openings); someone comes in at 00:31:45, walks the lounge, and flat 2's door
    # opens at 00:32. Flat 2 takes the 00:31:45 opening (nobody else's), and that
    # situation ends as came home; taking flat 1's, it stayed open for nobody.
    events = sorted([*_opens("door-1", night(0, 30)),
                     ev("pir-lounge", night(0, 30, 30), EventKind.MOTION),
                     *_opens("exit-1", night(0, 31)), *_opens("exit-1", night(0, 31, 20)),
                     *_opens("exit-1", night(0, 31, 45)),
                     ev("pir-lounge", night(0, 31, 50), EventKind.MOTION),
                     *_opens("door-2", night(0, 32))], key=lambda e: e.ts)
    intents = resident(feed(corridor_engine(), events, until=night(2)))
    assert [(type(i), i.ts) for i in of(intents, RuleName.BUILDING_EXIT)] == [
        (Trigger, night(0, 31, 45)), (Trigger, night(0, 32)), (Clear, night(0, 32))]
    assert [i for i in of(intents, RuleName.LEFT_FLAT) if i.room == "flat-2"] == []


def test_a_return_seen_out_of_the_building_and_back_is_not_read_again() -> None:
    # Flat 2 goes out for a smoke (door, exit out, exit back in, door home at 00:40); an
    # exit opening at 00:41 is someone else's: flat 2 is not read again as leaving.
    events = [*_opens("door-2", night(0, 30)), *_opens("exit-1", night(0, 30, 30)),
              *_opens("exit-1", night(0, 39)), *_opens("door-2", night(0, 40)),
              *_opens("exit-1", night(0, 41))]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    assert calls(intents) == []
    assert [i.episode_key for i in of(intents, RuleName.LEFT_FLAT)] == [
        f"{SITE}/flat-2/left_flat/{night(0, 30).isoformat()}"] * 4


def test_two_smokers_each_come_back_in_by_their_own_opening() -> None:
    # Flats 1 and 2 go out for a smoke (00:30, 00:31). Flat 1 comes back in at 00:35: the
    # opening is given to flat 2 (it left last), but flat 1's door then says it was flat
    # 1's; flat 2 comes back in at 00:38 and home at 00:39. Nobody needed anyone: no call
    # (flat 1's homecoming was read again as leaving at 00:38, a call at 00:51).
    events = [*_opens("door-1", night(0, 30)), *_opens("exit-1", night(0, 30, 30)),
              *_opens("door-2", night(0, 31)), *_opens("exit-1", night(0, 31, 30)),
              *_opens("exit-1", night(0, 35)), *_opens("door-1", night(0, 36)),
              *_opens("exit-1", night(0, 38)), *_opens("door-2", night(0, 39))]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    assert calls(intents) == []
    assert {i.episode_key for i in of(intents, RuleName.LEFT_FLAT)} == {
        f"{SITE}/flat-1/left_flat/{night(0, 30).isoformat()}",
        f"{SITE}/flat-2/left_flat/{night(0, 31).isoformat()}"}
    assert [(type(i), i.room) for i in intents if isinstance(i, Clear)] == [
        (Clear, "flat-1"), (Clear, "flat-2")]


def test_a_smoker_still_out_is_called_when_another_took_the_opening_back_in() -> None:
    # The same, but flat 2 never comes back: its outing calls at its own deadline.
    events = [*_opens("door-1", night(0, 30)), *_opens("exit-1", night(0, 30, 30)),
              *_opens("door-2", night(0, 31)), *_opens("exit-1", night(0, 31, 30)),
              *_opens("exit-1", night(0, 35)), *_opens("door-1", night(0, 36))]
    intents = resident(feed(engine(SHELTER), events, until=night(2)))
    assert [(type(i), i.room, i.ts) for i in calls(intents)] == [
        (Escalate, "flat-2", night(0, 46))]


# -- the flat's corridor: who walked up to a door-only flat's door (issue 13 §4) ----------


def corridor_engine(rulebook: RuleBook = SHELTER) -> RulesEngine:
    """Flat 2 (a door only) opens onto the lounge, which has a motion sensor; a building
    exit is not a call by itself (a shelter), so only the flat's outing can call."""
    base = layout()
    rooms = dict(base.rooms)
    rooms["flat-2"] = RoomInfo(RoomKind.FLAT, "Flat 2", [CONSENT], corridor="lounge")
    corridor_layout = SiteLayout(SITE, base.night, rooms, base.devices)
    return RulesEngine({SITE: corridor_layout}, {SITE: rulebook})


def test_a_corridor_must_be_a_common_room() -> None:
    base = layout()
    rooms = dict(base.rooms)
    rooms["flat-2"] = RoomInfo(RoomKind.FLAT, "Flat 2", [CONSENT], corridor="main-exit")
    with pytest.raises(LayoutError, match="not a common room"):
        SiteLayout(SITE, base.night, rooms, base.devices)


def test_door_opened_with_nobody_in_the_corridor_is_a_departure_not_a_homecoming() -> None:
    # Someone comes in through the main exit; a minute later flat 2's door opens, but
    # nobody walked through its corridor first: its resident is leaving, not the one who
    # came in coming home. Read as a homecoming, a resident lost inside is a blind spot.
    events = [ev("exit-1", night(1, 0), EventKind.DOOR_OPEN),
              ev("exit-1", night(1, 0, 5), EventKind.DOOR_CLOSED),
              ev("door-2", night(1, 1), EventKind.DOOR_OPEN),
              ev("door-2", night(1, 1, 5), EventKind.DOOR_CLOSED)]
    intents = resident(feed(corridor_engine(), events, until=night(2)))
    assert [(type(i), i.ts) for i in calls(of(intents, RuleName.LEFT_FLAT))] == [
        (Escalate, night(1, 16))]


def test_homecoming_through_the_corridor_still_claims_the_entry() -> None:
    # The same, but the lounge saw someone just before the door: a homecoming, no outing.
    events = [ev("exit-1", night(1, 0), EventKind.DOOR_OPEN),
              ev("exit-1", night(1, 0, 5), EventKind.DOOR_CLOSED),
              ev("pir-lounge", night(1, 0, 40), EventKind.MOTION),
              ev("door-2", night(1, 1), EventKind.DOOR_OPEN),
              ev("door-2", night(1, 1, 5), EventKind.DOOR_CLOSED)]
    intents = resident(feed(corridor_engine(), events, until=night(2)))
    assert calls(intents) == []
    assert [i for i in intents if isinstance(i, Trigger) and i.rule is RuleName.LEFT_FLAT] == []


def _walk_out_then_door_2(walk_in: bool) -> list[Event]:
    """Flat 1 walks out through the lounge and the exit at 00:31 (its opening); flat 2's
    door opens at 00:32, after someone walked the lounge (``walk_in``) or not."""
    events = [*_opens("door-1", night(0, 30)),
              ev("pir-lounge", night(0, 30, 30), EventKind.MOTION),
              *_opens("exit-1", night(0, 31)), *_opens("door-2", night(0, 32))]
    if walk_in:
        events.append(ev("pir-lounge", night(0, 31, 40), EventKind.MOTION))
    return sorted(events, key=lambda e: e.ts)


def test_a_walk_up_the_corridor_after_an_explained_exit_is_a_homecoming() -> None:
    # The opening was flat 1's walk out, as far as anyone could tell; but someone walked
    # up flat 2's corridor after it and flat 2's door opened: someone came in as flat 1
    # went out, and is home. Read as leaving, every homecoming at a busy exit was a call.
    intents = resident(feed(corridor_engine(), _walk_out_then_door_2(True), until=night(2)))
    assert [i for i in of(intents, RuleName.LEFT_FLAT) if i.room == "flat-2"] == []
    exits = [i for i in intents if isinstance(i, Trigger) and i.device == "exit-1"]
    assert [i.room for i in exits] == ["flat-1"]  # still flat 1's: severity up, its call


def test_without_a_walk_after_an_explained_exit_the_door_is_leaving() -> None:
    intents = resident(feed(corridor_engine(), _walk_out_then_door_2(False), until=night(2)))
    flat_2 = f"{SITE}/flat-2/left_flat/{night(0, 32).isoformat()}"
    assert (Escalate, night(0, 47)) in [(type(i), i.ts) for i in intents
                                        if i.episode_key == flat_2]


def test_believed_out_but_nobody_came_reads_the_door_as_leaving_again() -> None:
    # Flat 2's resident goes out (door), comes home unseen by the door sensor (a lost
    # message), and later leaves for good: with nobody in the corridor before that opening,
    # it is a departure, and it calls when its allowed time is up, instead of being read as
    # the return that would hide the resident for the rest of the night.
    events = [ev("door-2", night(1, 0), EventKind.DOOR_OPEN),
              ev("door-2", night(1, 0, 5), EventKind.DOOR_CLOSED),
              ev("pir-lounge", night(1, 0, 20), EventKind.MOTION),
              # back at 01:05, the door's open/close lost
              ev("door-2", night(2, 0), EventKind.DOOR_OPEN),
              ev("door-2", night(2, 0, 5), EventKind.DOOR_CLOSED)]
    intents = resident(feed(corridor_engine(), events, until=night(3)))
    escalations = [(i.episode_key, i.ts) for i in intents if isinstance(i, Escalate)]
    # The first outing called at 01:15 (it was never seen to end); the second is its own
    # situation and calls at 02:15.
    assert escalations == [
        (f"{SITE}/flat-2/left_flat/{night(1, 0).isoformat()}", night(1, 15)),
        (f"{SITE}/flat-2/left_flat/{night(2, 0).isoformat()}", night(2, 15))]


def test_without_a_corridor_a_door_after_an_entry_is_still_a_homecoming() -> None:
    events = [ev("exit-1", night(1, 0), EventKind.DOOR_OPEN),
              ev("exit-1", night(1, 0, 5), EventKind.DOOR_CLOSED),
              ev("door-2", night(1, 1), EventKind.DOOR_OPEN),
              ev("door-2", night(1, 1, 5), EventKind.DOOR_CLOSED)]
    assert calls(resident(feed(engine(SHELTER), events, until=night(2)))) == []


# -- staff on the floor (issue 13 §3) ------------------------------------------------------


def _staff_engine(*rounds: StaffRound) -> RulesEngine:
    eng = engine(SHELTER)
    eng.update_staff(SITE, rounds)
    return eng


def test_motion_during_a_round_of_the_common_rooms_is_staff_not_a_situation() -> None:
    round_ = StaffRound(None, night(2, 0), night(2, 15))
    walk = [ev("pir-lounge", night(2, 1), EventKind.MOTION),
            ev("pir-lounge", night(2, 5), EventKind.MOTION)]
    assert resident(feed(_staff_engine(round_), walk, until=night(3))) == []
    # After the round, someone nobody knows in the lounge is a (quiet) situation again.
    later = [ev("pir-lounge", night(2, 20), EventKind.MOTION)]
    assert [i.rule for i in resident(feed(_staff_engine(round_), later, until=night(3)))] \
        == [RuleName.COMMON_MOTION, RuleName.COMMON_MOTION]  # raised, then ended by itself


def test_staff_going_into_a_flat_open_its_door_without_an_outing() -> None:
    # Staff go into flat 1 at 02:00 for 20 minutes: in at 02:01, out at 02:18. Without the
    # round, the first opening is the resident leaving, not back by 02:16: a call.
    visit = [*_opens("door-1", night(2, 1)), *_opens("door-1", night(2, 18))]
    with_round = _staff_engine(StaffRound("flat-1", night(2, 0), night(2, 20)))
    assert resident(feed(with_round, visit, until=night(3))) == []
    without = resident(feed(engine(SHELTER), visit, until=night(3)))
    assert [(type(i), i.ts) for i in calls(without)] == [(Escalate, night(2, 16))]


def test_a_round_in_one_flat_does_not_hide_another_flat_or_a_bed() -> None:
    round_ = StaffRound("flat-1", night(2, 0), night(2, 20))
    events = [*_opens("door-2", night(2, 1)), ev("bed-1", night(2, 2), EventKind.BED_EXIT)]
    intents = calls(resident(feed(_staff_engine(round_), events, until=night(3))))
    assert sorted((i.room, i.ts) for i in intents) == [("flat-1", night(2, 12)),
                                                       ("flat-2", night(2, 16))]


def _wired_engine() -> RulesEngine:
    """The shelter site with a staff-room door (in the lounge's building: a common room)
    and a staff tag reader at flat 1's door: the protocol's staff presence."""
    plain = layout()
    wired = SiteLayout(
        site=SITE, night=plain.night,
        rooms={**plain.rooms, "staff-room": RoomInfo(RoomKind.COMMON, "Personalerum")},
        devices={**plain.devices,
                 "staff-door": DeviceInfo("staff-room", DeviceKind.STAFF),
                 "tag-1": DeviceInfo("flat-1", DeviceKind.STAFF)})
    return RulesEngine({SITE: wired}, {SITE: SHELTER})


def test_a_staff_room_door_quiets_the_common_rooms_like_a_round_on_the_board() -> None:
    walk = [ev("staff-door", night(2, 0), EventKind.DOOR_OPEN),
            ev("pir-lounge", night(2, 1), EventKind.MOTION),
            ev("pir-lounge", night(2, 12), EventKind.MOTION)]
    assert resident(feed(_wired_engine(), walk, until=night(3))) == []
    # Without the staff-room door, the same walk is someone nobody knows.
    assert {i.rule for i in resident(feed(_wired_engine(), walk[1:], until=night(3)))} == {
        RuleName.COMMON_MOTION}
    # 15 minutes after the door, motion is nobody known again; a heartbeat of the door
    # contact is a sign of the device's life, not of staff.
    later = [walk[0], ev("staff-door", night(2, 10), EventKind.HEARTBEAT),
             ev("pir-lounge", night(2, 16), EventKind.MOTION)]
    assert [i.rule for i in resident(feed(_wired_engine(), later, until=night(3)))] == [
        RuleName.COMMON_MOTION, RuleName.COMMON_MOTION]


def test_a_staff_tag_at_a_flat_door_is_staff_going_in_and_hides_no_bed_or_other_flat() -> None:
    visit = [ev("tag-1", night(2, 0, 50), EventKind.PRESENCE_ON),
             *_opens("door-1", night(2, 1)), *_opens("door-1", night(2, 10))]
    assert resident(feed(_wired_engine(), visit, until=night(3))) == []
    # The tag quiets flat 1's door only: flat 2's door and flat 1's bed still speak.
    events = sorted([*visit, *_opens("door-2", night(2, 2)),
                     ev("bed-1", night(2, 3), EventKind.BED_EXIT)], key=lambda e: e.ts)
    intents = calls(resident(feed(_wired_engine(), events, until=night(3))))
    assert sorted((i.room, i.rule) for i in intents) == [
        ("flat-1", RuleName.BED_EXIT_NOT_BACK), ("flat-2", RuleName.LEFT_FLAT)]


def test_a_device_moved_to_another_flat_never_counts_its_earlier_events_there() -> None:
    # The bed of flat 1 reports an exit, then is moved to flat 2 (the admin's move). A late
    # input from before that exit replays the site's timeline: the bed's exit must stay
    # flat 1's, not be evaluated again in flat 2 with the new layout.
    eng = engine()
    intents = feed(eng, [ev("bed-1", night(3, 0), EventKind.BED_EXIT),
                         ev("door-2", night(3, 2), EventKind.DOOR_CLOSED)])
    moved = layout()
    moved = replace(moved, devices={**moved.devices,
                                    "bed-1": DeviceInfo("flat-2", DeviceKind.BED)})
    eng.update_layout(moved)
    intents += feed(eng, [ev("pir-1", night(2, 58), EventKind.MOTION)], until=night(4))
    rooms = [(type(i), i.room) for i in of(intents, RuleName.BED_EXIT_NOT_BACK)]
    assert rooms == [(Trigger, "flat-1")]
    # From the move on, the bed speaks for flat 2.
    later = feed(eng, [ev("bed-1", night(4, 30), EventKind.BED_EXIT)], until=night(5))
    assert [(type(i), i.room) for i in of(later, RuleName.BED_EXIT_NOT_BACK)] == [
        (Trigger, "flat-2")]
