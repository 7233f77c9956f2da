"""The night window: local wall-clock bounds, midnight crossing, DST nights."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.night_window import NightWindow

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

CPH = ZoneInfo("Europe/Copenhagen")
NIGHT = NightWindow.parse("22:00-07:00")


def local(y: int, mo: int, d: int, h: int, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=CPH, fold=fold).astimezone(UTC)


def test_parse_reads_start_end_and_defaults_to_copenhagen() -> None:
    window = NightWindow.parse(" 22:00 - 07:00 ")
    assert (window.start, window.end, window.tz.key) == (time(22), time(7), "Europe/Copenhagen")
    assert window.crosses_midnight


@pytest.mark.parametrize("spec", ["22-07", "22:00", "25:00-07:00", "22:00-07:60", "", "late"])
def test_parse_refuses_malformed_window_with_a_value_error(spec: str) -> None:
    with pytest.raises(ValueError, match="night window"):
        NightWindow.parse(spec)


def test_parse_refuses_unknown_time_zone_and_empty_window() -> None:
    with pytest.raises(ValueError, match="time zone"):
        NightWindow.parse("22:00-07:00", "Europe/Atlantis")
    with pytest.raises(ValueError, match="two different times"):
        NightWindow.parse("22:00-22:00")


def test_night_starts_at_22_and_ends_before_07_local_time() -> None:
    assert not NIGHT.contains(local(2026, 11, 23, 21, 59))
    assert NIGHT.contains(local(2026, 11, 23, 22, 0))
    assert NIGHT.contains(local(2026, 11, 24, 3, 0))
    assert NIGHT.contains(local(2026, 11, 24, 6, 59))
    assert not NIGHT.contains(local(2026, 11, 24, 7, 0))


def test_night_is_named_by_the_date_it_started_on() -> None:
    assert NIGHT.night_of(local(2026, 11, 23, 23, 0)) == date(2026, 11, 23)
    assert NIGHT.night_of(local(2026, 11, 24, 2, 0)) == date(2026, 11, 23)
    assert NIGHT.night_of(local(2026, 11, 24, 12, 0)) is None


def test_ordinary_night_lasts_nine_hours() -> None:
    start, end = NIGHT.bounds(date(2026, 11, 23))
    assert start == datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=9)


def test_october_night_when_clocks_go_back_lasts_ten_real_hours() -> None:
    start, end = NIGHT.bounds(date(2026, 10, 24))
    assert start == datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # 22:00 CEST
    assert end == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)  # 07:00 CET
    assert end - start == timedelta(hours=10)
    # 02:30 comes twice that night; both are inside it.
    first, second = local(2026, 10, 25, 2, 30), local(2026, 10, 25, 2, 30, fold=1)
    assert second - first == timedelta(hours=1)
    assert NIGHT.night_of(first) == NIGHT.night_of(second) == date(2026, 10, 24)


def test_march_night_when_clocks_go_forward_lasts_eight_real_hours() -> None:
    start, end = NIGHT.bounds(date(2026, 3, 28))
    assert start == datetime(2026, 3, 28, 21, 0, tzinfo=UTC)  # 22:00 CET
    assert end == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 07:00 CEST
    assert end - start == timedelta(hours=8)
    assert NIGHT.contains(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 CEST


def test_window_that_does_not_cross_midnight_is_one_local_day() -> None:
    window = NightWindow.parse("01:00-05:00")
    assert not window.crosses_midnight
    assert window.night_of(local(2026, 11, 24, 3, 0)) == date(2026, 11, 24)
    assert not window.contains(local(2026, 11, 24, 0, 30))
    assert not window.contains(local(2026, 11, 24, 5, 0))


def test_bound_in_the_skipped_march_hour_falls_one_hour_later_on_the_new_clock() -> None:
    window = NightWindow.parse("02:30-06:00")
    start, _ = window.bounds(date(2026, 3, 29))
    assert start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST


def test_bound_in_the_repeated_october_hour_means_its_first_occurrence() -> None:
    window = NightWindow.parse("22:00-02:30")
    _, end = window.bounds(date(2026, 10, 24))
    assert end == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, first time round
    assert not window.contains(local(2026, 10, 25, 2, 10, fold=1))


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        NIGHT.contains(datetime(2026, 11, 24, 2, 0))
