"""Each flat's learned routine (issue 13 §2): learned from its nights, explained, bounded
by the room's safety limit, and used by the rules; learned live from the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from core.events import DeviceKind, Event, EventKind, RoomKind
from core.i18n import Language, Localizer
from core.intents import Trigger
from core.settings import StackInfo
from ingest.writer import Batch, EventWriter
from rules import (
    BasisKind,
    DeviceInfo,
    MonitoringBasis,
    NightWindow,
    RoomInfo,
    RuleBook,
    RuleName,
    RuleOverride,
    RulesEngine,
    SiteLayout,
)
from rules.routines import MIN_NIGHTS, FlatRoutine, learn_routines
from rules.runtime import RulesRuntime

CPH = ZoneInfo("Europe/Copenhagen")
SITE = "birkely"
FIRST_NIGHT = date(2026, 11, 1)


def at(night: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A local time of the night that starts on ``night`` (hours before noon: next day)."""
    day = night + timedelta(days=1) if hour < 12 else night
    return datetime(day.year, day.month, day.day, hour, minute, second,
                    tzinfo=CPH).astimezone(UTC)


LAYOUT = SiteLayout(
    SITE, NightWindow.parse("22:00-07:00", CPH),
    {"f1": RoomInfo(RoomKind.FLAT, "Lejlighed 1", (MonitoringBasis(BasisKind.CONSENT),)),
     "f2": RoomInfo(RoomKind.FLAT, "Lejlighed 2", (MonitoringBasis(BasisKind.CONSENT),))},
    {"bed-1": DeviceInfo("f1", DeviceKind.BED), "bed-2": DeviceInfo("f2", DeviceKind.BED)})


def ev(device: str, ts: datetime, kind: EventKind) -> Event:
    return Event(SITE, device, f"{device}/{ts.isoformat()}/{kind}", ts, kind)


def history(nights: int, spell_min: tuple[int, ...] = (3, 4, 5), rise: time | None = None,
            device: str = "bed-1") -> list[Event]:
    """``nights`` nights of one flat: toilet visits of ``spell_min`` minutes at 01:00, 02:00
    and so on, and up for the day at ``rise`` (None: after the night ended, unseen)."""
    events: list[Event] = []
    for n in range(nights):
        night = FIRST_NIGHT + timedelta(days=n)
        for i, minutes in enumerate(spell_min):
            out = at(night, 1 + i)
            events += [ev(device, out, EventKind.BED_EXIT),
                       ev(device, out + timedelta(minutes=minutes), EventKind.BED_ENTER)]
        if rise is not None:
            events.append(ev(device, at(night, rise.hour, rise.minute), EventKind.BED_EXIT))
    return events


def learned(nights: int, **kwargs: object) -> FlatRoutine:
    until = at(FIRST_NIGHT + timedelta(days=nights), 12)
    return learn_routines(LAYOUT, history(nights, **kwargs), until)["f1"]  # type: ignore[arg-type]


@pytest.mark.pure
def test_short_visits_learn_a_shorter_timer_with_its_explanation() -> None:
    routine = learned(MIN_NIGHTS)
    assert routine.usual_spell is not None and routine.usual_spell.samples == 3 * MIN_NIGHTS
    # Usually back within 5 min: called after 5 + 2 = 7 min, not the site's 10.
    assert routine.allowed_out_of_bed(timedelta(minutes=10)) == timedelta(minutes=7)
    [(message, values)] = routine.explain(timedelta(minutes=10))
    danish = Localizer("da").gettext(message).format(**values)
    assert danish == ("Er normalt tilbage i sengen inden for 5 min (42 gange på 14 nætter): "
                      "kalder efter 7 min (stedets grænse: 10 min).")


@pytest.mark.pure
def test_learning_never_goes_past_the_safety_limit() -> None:
    routine = learned(MIN_NIGHTS, spell_min=(25, 30, 40))  # a wakeful flat
    assert routine.allowed_out_of_bed(timedelta(minutes=10)) == timedelta(minutes=10)
    assert routine.allowed_out_of_bed(timedelta(minutes=60)) == timedelta(minutes=42)


@pytest.mark.pure
def test_too_few_nights_keep_the_sites_default() -> None:
    routine = learned(MIN_NIGHTS - 1)
    assert routine.usual_spell is None and routine.rises_from is None
    assert routine.allowed_out_of_bed(timedelta(minutes=10)) == timedelta(minutes=10)
    [(message, values)] = routine.explain(timedelta(minutes=10))
    assert Localizer("da").gettext(message).format(**values) == (
        "Ingen rutine endnu (13 af 14 nætter): stedets grænse på 10 min gælder.")


@pytest.mark.pure
def test_a_night_not_over_yet_is_not_learned_from() -> None:
    events = history(MIN_NIGHTS)
    last_night = FIRST_NIGHT + timedelta(days=MIN_NIGHTS - 1)
    # Learned at 03:00 of the last night: that night has not ended, 13 nights have.
    assert learn_routines(LAYOUT, events, at(last_night, 3))["f1"].usual_spell is None


@pytest.mark.pure
def test_rising_time_counts_the_mornings_risen_after_the_night_as_later() -> None:
    # Up at 06:15 on every night: usually up from 06:15.
    assert learned(MIN_NIGHTS, rise=time(6, 15)).rises_from == time(6, 15)
    # Up before the night ended on one night in 14 only (06:15), after it on the others:
    # the earliest tenth of the 14 mornings (two of them) reaches past the night's end,
    # so no rising time is learned.
    events = history(MIN_NIGHTS - 1) + history(1, rise=time(6, 15))
    routine = learn_routines(LAYOUT, events, at(FIRST_NIGHT + timedelta(days=MIN_NIGHTS), 12))
    assert routine["f1"].rises_from is None


def engine_with(routine_events: list[Event], limit: int = 10) -> RulesEngine:
    rules = RuleBook(site={RuleName.BED_EXIT_NOT_BACK: RuleOverride(minutes=limit)})
    engine = RulesEngine({SITE: LAYOUT}, {SITE: rules})
    tonight = FIRST_NIGHT + timedelta(days=MIN_NIGHTS)
    engine.update_routines(SITE, learn_routines(LAYOUT, routine_events, at(tonight, 12)))
    return engine


def bed_calls(engine: RulesEngine, events: list[Event], until: datetime) -> list[Trigger]:
    intents = [i for e in events for i in engine.process(e)] + engine.advance(SITE, until)
    return [i for i in intents if isinstance(i, Trigger) and i.rule is RuleName.BED_EXIT_NOT_BACK]


@pytest.mark.pure
def test_the_rules_call_at_the_flats_learned_time() -> None:
    tonight = FIRST_NIGHT + timedelta(days=MIN_NIGHTS)
    engine = engine_with(history(MIN_NIGHTS))
    # Flat 1 is usually back within 5 min: out for 8, called after 7. Flat 2 has no
    # routine: the site's 10 min, so an 8-minute visit raises nothing.
    events = [ev("bed-1", at(tonight, 3), EventKind.BED_EXIT),
              ev("bed-1", at(tonight, 3, 8), EventKind.BED_ENTER),
              ev("bed-2", at(tonight, 3), EventKind.BED_EXIT),
              ev("bed-2", at(tonight, 3, 8), EventKind.BED_ENTER)]
    [call] = bed_calls(engine, events, at(tonight, 4))
    assert (call.room, call.ts, call.call) == ("f1", at(tonight, 3, 7), True)
    assert call.detail == "out of bed and not back within 7 min"


@pytest.mark.pure
def test_up_after_the_usual_rising_time_is_the_day_beginning() -> None:
    tonight = FIRST_NIGHT + timedelta(days=MIN_NIGHTS)
    engine = engine_with(history(MIN_NIGHTS, rise=time(6, 0)))
    up = [ev("bed-1", at(tonight, 6, 20), EventKind.BED_EXIT)]
    assert bed_calls(engine, up, at(tonight, 6, 59)) == []
    # The same flat out of bed at 05:30, before its rising time: a call as ever.
    engine = engine_with(history(MIN_NIGHTS, rise=time(6, 0)))
    early = [ev("bed-1", at(tonight, 5, 30), EventKind.BED_EXIT)]
    assert [c.ts for c in bed_calls(engine, early, at(tonight, 6, 59))] == [at(tonight, 5, 37)]


@pytest.mark.pure
def test_still_up_when_the_usual_rising_time_comes_is_handed_over_not_called() -> None:
    tonight = FIRST_NIGHT + timedelta(days=MIN_NIGHTS)
    engine = engine_with(history(MIN_NIGHTS, rise=time(6, 0)))
    # Up at 05:56, a timer to 06:03: by then the flat is usually up for the day. A quiet
    # situation for the day shift; back in bed at 06:30 closes it.
    events = [ev("bed-1", at(tonight, 5, 56), EventKind.BED_EXIT),
              ev("bed-1", at(tonight, 6, 30), EventKind.BED_ENTER)]
    intents = [i for e in events for i in engine.process(e)] + engine.advance(
        SITE, at(tonight, 6, 59))
    beds = [i for i in intents if i.rule is RuleName.BED_EXIT_NOT_BACK]
    assert [(type(i).__name__, i.ts) for i in beds] == [
        ("Trigger", at(tonight, 6, 3)), ("Clear", at(tonight, 6, 30))]
    assert isinstance(beds[0], Trigger) and not beds[0].call


def test_the_runtime_learns_routines_from_the_stored_nights(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        add_device: Callable[..., tuple[str, str]]) -> None:
    add_device(site, "bed-f1", room="f1", kind=DeviceKind.BED)
    stored = [Event(site, e.device.replace("bed-1", "bed-f1"), e.id, e.ts, e.kind)
              for e in history(MIN_NIGHTS)]
    tonight = FIRST_NIGHT + timedelta(days=MIN_NIGHTS)
    # Tonight's first event, so the site's clock stands in tonight.
    stored.append(Event(site, "bed-f1", "tonight", at(tonight, 1), EventKind.BED_ENTER))
    writer = EventWriter(migrated.database_url)
    try:
        writer.write(Batch(events=[(e, e.ts) for e in stored]))
    finally:
        writer.close()
    rules = RulesRuntime(migrated.database_url, sites=[site],
                         wall=lambda: at(tonight, 1, 0, 1).timestamp())
    try:
        rules.load()
        routine = rules.routines(site)["f1"]
    finally:
        rules.stop()
    assert routine.usual_spell is not None and routine.usual_spell.nights == MIN_NIGHTS
    assert routine.allowed_out_of_bed(timedelta(minutes=10)) == timedelta(minutes=7)


@pytest.mark.pure
@pytest.mark.parametrize("language", ["da", "en"])
def test_every_explanation_is_in_the_catalogue(language: Language) -> None:
    routine = learned(MIN_NIGHTS, rise=time(6, 15))
    for message, values in routine.explain(timedelta(minutes=10)):
        text = Localizer(language).gettext(message).format(**values)
        assert ("normalt" in text) == (language == "da")


@pytest.mark.pure
def test_the_runtime_learns_again_when_a_night_has_ended() -> None:
    from rules.runtime import _last_night_end

    night = LAYOUT.night
    ended = at(FIRST_NIGHT, 7)  # 07:00 the morning after the first night
    # Through the next day and the next night, the newest ended night stays the same...
    assert _last_night_end(night, at(FIRST_NIGHT, 7, 0, 1)) == ended
    assert _last_night_end(night, at(FIRST_NIGHT + timedelta(days=1), 3)) == ended
    # ...until that night is over too.
    assert _last_night_end(night, at(FIRST_NIGHT + timedelta(days=1), 7)) == at(
        FIRST_NIGHT + timedelta(days=1), 7)
