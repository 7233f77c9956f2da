"""The engine's cost per event stays bounded however late the events come (issue 13 §6).

A late input is re-evaluated from its place on only until the room's state is again what it
was; these tests hold that shortcut to the full replay it replaces (same intents, same
``late`` flags, whatever the arrival order) and to a cost of a few steps per event.
"""

from __future__ import annotations

import random
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.alerts import DEVICE_RULES
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.intents import Intent, identity
from rules import DeviceInfo, NightWindow, RoomInfo, RulesEngine, SiteLayout
from rules.timeline import Timeline
from tests.test_rules_engine import SITE, ev, layout, night

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

BURST_SITE = "burst"
BURST_START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 02:00 in Copenhagen: night


def full_replay() -> AbstractContextManager[object]:
    """Turn the shortcut off: every late input is replayed to the end (the old engine)."""
    return patch.object(Timeline, "_converged", staticmethod(lambda state, snapshot: False))


def run(events: list[Event], until: datetime, site: str = SITE,
        lay: SiteLayout | None = None) -> tuple[list[Intent], RulesEngine]:
    eng = RulesEngine({site: lay or layout()})
    intents: list[Intent] = []
    for event in events:
        intents += eng.process(event)
    intents += eng.advance(site, until)
    return intents, eng


# One night of a small site: which device, what it can say.
_SAYS = {
    "door-1": (EventKind.DOOR_OPEN, EventKind.DOOR_CLOSED),
    "door-2": (EventKind.DOOR_OPEN, EventKind.DOOR_CLOSED),
    "bed-1": (EventKind.BED_EXIT, EventKind.BED_ENTER),
    "pir-1": (EventKind.MOTION,),
    "pir-lounge": (EventKind.MOTION, EventKind.MOTION, EventKind.HEARTBEAT),
    "exit-1": (EventKind.DOOR_OPEN, EventKind.DOOR_CLOSED),
}


@st.composite
def nights_delivered(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """Events of a night (22:30-06:30, minutes apart, so timers fall in between) and the
    order they arrive in: some in order, some held back by a few seconds to an hour."""
    count = draw(st.integers(min_value=1, max_value=60))
    start = night(22, 30)
    events: list[Event] = []
    for n in range(count):
        device = draw(st.sampled_from(sorted(_SAYS)))
        kind = draw(st.sampled_from(_SAYS[device]))
        ts = start + timedelta(seconds=draw(st.integers(min_value=0, max_value=8 * 3600)))
        events.append(Event(SITE, device, f"e{n}", ts, kind))
    events.sort(key=lambda e: e.ts)
    delays = [timedelta(seconds=draw(st.sampled_from((0, 0, 0, 5, 90, 700, 3600))))
              for _ in events]
    arrival = [e for _, e in sorted(zip(delays, events, strict=True),
                                    key=lambda pair: pair[1].ts + pair[0])]
    return events, arrival


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nights_delivered())
def test_late_inputs_give_exactly_the_intents_of_a_full_replay(
        night_: tuple[list[Event], list[Event]]) -> None:
    in_order, arrival = night_
    until = night(7, 30)
    shortcut, _ = run(arrival, until)
    with full_replay():
        replayed, _ = run(arrival, until)
    assert shortcut == replayed  # the same intents, in the same order, with the same `late`
    # And every resident intent of the in-order night is among them (late input may add
    # stale ones). Device silence is left out: a device's clock starts with the first input
    # that arrives, so an in-order replay starts it earlier.
    ordered, _ = run(in_order, until)
    assert ({identity(i) for i in ordered if i.rule not in DEVICE_RULES}
            <= {identity(i) for i in shortcut})


def _burst(events: int, devices: int, seed: int) -> tuple[SiteLayout, list[Event]]:
    """Motion from ``devices`` sensors of one common room, 10 ms apart each, arriving as a
    reconnecting hub flushes them: each sensor's stream in order, the streams interleaved
    in chunks at different speeds, so most events are older than the newest one seen."""
    lay = SiteLayout(BURST_SITE, NightWindow.parse("22:00-07:00", "Europe/Copenhagen"),
                     {"lounge": RoomInfo(RoomKind.COMMON, "Lounge")},
                     {f"pir-{n}": DeviceInfo("lounge", DeviceKind.MOTION)
                      for n in range(devices)})
    per_device = events // devices
    streams = [[Event(BURST_SITE, f"pir-{n}", f"{n}-{i}",
                      BURST_START + timedelta(milliseconds=10 * i), EventKind.MOTION, 90)
                for i in range(per_device)] for n in range(devices)]
    rng = random.Random(seed)
    speed = [rng.uniform(0.05, 1.0) for _ in streams]
    arrival = [streams[0][0]]  # the earliest first, as in the night the hub missed
    sent = [1] + [0] * (devices - 1)
    while len(arrival) < per_device * devices:
        n = rng.randrange(devices)
        if sent[n] < per_device and rng.random() < speed[n]:
            chunk = rng.randint(1, 40)
            arrival += streams[n][sent[n]:sent[n] + chunk]
            sent[n] = min(sent[n] + chunk, per_device)
    return lay, arrival


def test_a_burst_of_interleaved_late_motion_costs_a_few_steps_per_event() -> None:
    lay, arrival = _burst(20_000, 50, seed=1)
    watermark = max(e.ts for e in arrival)
    newest = arrival[0].ts
    held_back = 0
    for e in arrival:
        held_back += e.ts < newest
        newest = max(newest, e.ts)
    assert held_back > len(arrival) // 2  # most of the burst really is late
    started = time.process_time()
    intents, eng = run(arrival, watermark, BURST_SITE, lay)
    spent = time.process_time() - started
    # One step in the sensor's timeline, one or two in the room's: not a replay each.
    assert eng.steps(BURST_SITE) <= 4 * len(arrival)
    assert spent < 30  # about 1 s on one core; the full replay took over an hour
    ordered, _ = run(sorted(arrival, key=lambda e: (e.ts, e.device, e.id)), watermark,
                     BURST_SITE, lay)
    assert {identity(i) for i in intents} == {identity(i) for i in ordered}
    assert len(intents) == len(arrival)  # one trigger (a merge) per motion, none lost
    assert [i for i in intents if getattr(i, "late", False)] == []  # the episode goes on


def test_a_room_keeps_at_most_its_cap_of_inputs_and_still_alerts() -> None:
    lay, arrival = _burst(3_000, 3, seed=2)
    eng = RulesEngine({BURST_SITE: lay}, max_inputs=500)
    intents = [i for e in arrival for i in eng.process(e)]
    # 500 per timeline and up to an eighth more before a trim, in the room and each sensor.
    assert eng.inputs_kept(BURST_SITE) <= 4 * (500 + 500 // 8)
    assert len({identity(i) for i in intents}) == len(arrival)


def test_a_late_door_opening_replays_past_the_point_where_the_flat_differs() -> None:
    # The shortcut must not stop early: a late opening changes every state after it.
    events = [ev("door-1", night(2, 0), EventKind.DOOR_OPEN),
              ev("door-1", night(2, 0, 20), EventKind.DOOR_CLOSED),
              ev("pir-1", night(2, 30), EventKind.MOTION),
              ev("door-1", night(2, 31), EventKind.DOOR_OPEN),
              ev("door-1", night(2, 31, 20), EventKind.DOOR_CLOSED)]
    arrival = events[1:] + events[:1]
    shortcut, _ = run(arrival, night(4, 0))
    with full_replay():
        replayed, _ = run(arrival, night(4, 0))
    assert shortcut == replayed
    assert any(i.episode_key.endswith(night(2, 0).isoformat()) and getattr(i, "late", False)
               for i in shortcut)
