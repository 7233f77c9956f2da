"""No blind spots from lost, repeated or late messages (issue 13 §4), property-based.

Hypothesis draws a simulated night of one of the five bundled sites that holds at least one
episode that needed help, then damages its delivery: messages lost, sensors repeating
themselves (the same reading again under a new id, moments later), and arrivals out of
order by up to two minutes. The rules alone (``bench.offline``) must still call for
every needed-help episode in time.

What may be lost is everything except the episode's own evidence: the messages of its flat
and the building exits from a minute before it began to its end. A lost ``bed.enter`` an
hour before, or a homecoming whose door message never came, must not blind the rules to
what follows. The ``bed.exit`` of a fall itself may be lost too (``lose_fall_exit``): the
bed sensor's heartbeats report its state (``occupied``), and the rules must see from them
that the bed was left.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.offline import alert_records, planned_events, rule_book, rule_layout
from core.events import Event, EventKind
from rules import RulesEngine
from simulators.behaviour import plan_night
from simulators.command import DEFAULT_START
from simulators.ground_truth import Episode, EpisodeKind, GroundTruth, score
from simulators.plan import NightPlan
from simulators.profile import SiteProfile, load_profile, profile_names

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

PROFILES = {name: load_profile(name) for name in profile_names()}
NIGHT = DEFAULT_START


def night_with_need(profile: SiteProfile, seed: int) -> tuple[NightPlan, int]:
    """The first night from ``seed`` on with an episode that needed help."""
    for offset in range(200):
        plan = plan_night(profile, NIGHT, seed + offset)
        if any(e.needed_help for e in plan.episodes):
            return plan, seed + offset
    raise AssertionError(f"no needed-help episode at {profile.site} in 200 nights")


def protected(event: Event, needs: list[Episode], exits: set[str], rooms: dict[str, str],
              lose_fall_exit: bool = False) -> bool:
    """Whether ``event`` is a needed-help episode's own evidence (never lost here); with
    ``lose_fall_exit`` a fall's own ``bed.exit`` is not."""
    for episode in needs:
        if (lose_fall_exit and episode.kind is EpisodeKind.FALL
                and event.kind is EventKind.BED_EXIT and rooms[event.device] == episode.room
                and abs(event.ts - episode.start) <= timedelta(minutes=1)):
            return False
        if (episode.start - timedelta(minutes=1) <= event.ts <= episode.end
                and (rooms[event.device] == episode.room or event.device in exits)):
            return True
    return False


def damaged(events: list[Event], needs: list[Episode], plan_rooms: dict[str, str],
            exits: set[str], rng: random.Random, lost: float, repeated: float,
            late_s: int, never: EventKind | None = None,
            lose_fall_exit: bool = False) -> list[Event]:
    """The events in the order the store would take them after the network's damage;
    ``never``: a kind no message of arrives (outside the needed episodes), e.g. every
    ``bed.enter`` of a resident who lies down on top of the sensor."""
    kept: list[tuple[float, Event]] = []
    for event in events:
        fall_exit = lose_fall_exit and not protected(event, needs, exits, plan_rooms, True) \
            and protected(event, needs, exits, plan_rooms)
        if fall_exit or ((rng.random() < lost or event.kind is never) and not protected(
                event, needs, exits, plan_rooms)):
            continue
        arrival = event.ts.timestamp() + rng.uniform(0, late_s)
        kept.append((arrival, event))
        if rng.random() < repeated:  # the sensor says it again, a little later
            # A state report said again is the same report (a bridge resending it); a
            # later time on it would be a state the bed no longer had.
            later = timedelta(0) if event.occupied is not None else timedelta(
                seconds=rng.uniform(1, 30))
            again = replace(event, id=f"{event.id}/again", ts=event.ts + later)
            kept.append((again.ts.timestamp() + rng.uniform(0, late_s), again))
    kept.sort(key=lambda pair: pair[0])
    return [event for _, event in kept]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(site=st.sampled_from(sorted(PROFILES)), seed=st.integers(1, 50_000),
       lost=st.floats(0.0, 0.15), repeated=st.floats(0.0, 0.15), late_s=st.integers(0, 120),
       damage_seed=st.integers(0, 2**32 - 1),
       never=st.sampled_from([None, EventKind.BED_ENTER, EventKind.DOOR_OPEN,
                              EventKind.DOOR_CLOSED, EventKind.MOTION]),
       lose_fall_exit=st.booleans())
def test_lost_repeated_and_late_messages_hide_no_needed_help(
        site: str, seed: int, lost: float, repeated: float, late_s: int,
        damage_seed: int, never: EventKind | None, lose_fall_exit: bool) -> None:
    profile = PROFILES[site]
    plan, used_seed = night_with_need(profile, seed)
    layout = rule_layout(profile, [NIGHT])
    needs = [e for e in plan.episodes if e.needed_help]
    rooms = {device: info.room for device, info in layout.devices.items()}
    exits = {device for device, info in layout.devices.items()
             if layout.rooms[info.room].kind.value == "exit"}
    events = damaged(planned_events([plan]), needs, rooms, exits,
                     random.Random(damage_seed), lost, repeated, late_s, never,
                     lose_fall_exit)

    engine = RulesEngine({site: layout}, {site: rule_book(profile)})
    intents = [intent for event in events for intent in engine.process(event)]
    intents += engine.advance(site, plan.end + timedelta(hours=1))
    truth = GroundTruth()
    truth.add_night(site, NIGHT, plan.episodes)
    missed = score(truth, alert_records(intents)).sites[site].missed
    assert not missed, (
        f"{site} night seed {used_seed}: no call for "
        + ", ".join(f"{e.kind} in {e.room} at {e.start:%H:%M}" for e in missed))


def test_the_damage_spares_the_needed_episodes_own_evidence() -> None:
    # The property above is only as strong as its damage: a check that losing everything
    # else does lose messages, and never the episode's own.
    profile = PROFILES["birkely"]
    plan, _ = night_with_need(profile, 1)
    layout = rule_layout(profile, [date(2026, 11, 24)])
    needs = [e for e in plan.episodes if e.needed_help]
    rooms = {device: info.room for device, info in layout.devices.items()}
    events = planned_events([plan])
    kept = damaged(events, needs, rooms, set(), random.Random(1), 1.0, 0.0, 0)
    assert 0 < len(kept) < len(events)
    assert all(protected(e, needs, set(), rooms) for e in kept)


def test_a_fall_whose_own_bed_exit_is_lost_is_seen_from_the_beds_reports() -> None:
    # Two falls (birkely, seed 255), both bed.exits lost: the beds' heartbeats say "empty"
    # and both are called. The same night with heartbeats that report no state is blind.
    profile = PROFILES["birkely"]
    plan, _ = night_with_need(profile, 255)
    layout = rule_layout(profile, [NIGHT])
    needs = [e for e in plan.episodes if e.needed_help]
    assert sum(e.kind is EpisodeKind.FALL for e in needs) == 2
    rooms = {device: info.room for device, info in layout.devices.items()}
    events = damaged(planned_events([plan]), needs, rooms, set(), random.Random(1), 0.0, 0.0,
                     0, lose_fall_exit=True)
    assert len(events) == len(planned_events([plan])) - 2

    def missed(stream: list[Event]) -> tuple[Episode, ...]:
        engine = RulesEngine({"birkely": layout}, {"birkely": rule_book(profile)})
        intents = [intent for event in stream for intent in engine.process(event)]
        intents += engine.advance("birkely", plan.end + timedelta(hours=1))
        truth = GroundTruth()
        truth.add_night("birkely", NIGHT, plan.episodes)
        return score(truth, alert_records(intents)).sites["birkely"].missed

    assert missed(events) == ()
    assert len(missed([replace(e, occupied=None) for e in events])) == 2
