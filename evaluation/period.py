"""Evaluation periods and night windows in a site's local time.

A period is given as two local dates, both inclusive: ``2026-11-01``..``2026-11-30`` is
all of November. For exports it covers whole local days; for reports it names the nights
that *begin* on those evenings. A night belongs to the noon-to-noon day it starts in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from core.night_window import NightWindow
from evaluation.errors import PeriodError, UnknownSite
from ingest.sites import sites_by_id

MAX_DAYS = 400


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError("the period ends ({last}) before it starts ({first}); choose a "
                              "first night before the last", last=self.last, first=self.first)
        if self.days > MAX_DAYS:
            raise PeriodError("the period has {days} days; at most {most} at once",
                              days=self.days, most=MAX_DAYS)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def nights(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """Local midnight of the first day to local midnight after the last, as UTC."""
        start = datetime.combine(self.first, time(0), tz).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tz).astimezone(UTC)
        return start, end

    def label(self) -> str:
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def whole_months(self) -> Period:
        """The period widened to whole calendar months (the room pseudonyms' blocks)."""
        after = date(self.last.year + self.last.month // 12, self.last.month % 12 + 1, 1)
        return Period(self.first.replace(day=1), after - timedelta(days=1))

    @property
    def is_whole_months(self) -> bool:
        return self.whole_months() == self


@dataclass(frozen=True, slots=True)
class SiteInfo:
    id: str
    name: str
    window: NightWindow  # the one DST-correct night window (core.night_window)

    @property
    def tz(self) -> ZoneInfo:
        return self.window.tz

    @property
    def night_start(self) -> time:
        return self.window.start

    @property
    def night_end(self) -> time:
        return self.window.end

    def night_window(self, night: date) -> tuple[datetime, datetime]:
        """The night beginning on the evening of ``night``, as aware UTC datetimes."""
        return self.window.bounds(night)

    def night_of(self, moment: datetime) -> date:
        """The evening a moment is counted under: noon-to-noon in local time, so a day's
        events before the night also belong to one evening (unlike ``NightWindow.night_of``,
        which is None outside the night)."""
        return (moment.astimezone(self.tz) - timedelta(hours=12)).date()

    def complete_at(self, period: Period) -> datetime:
        """When the last night that touches ``period``'s days has ended (aware UTC): from
        then on no event of the period is still to come. The period ends at local
        midnight after its last day; the night that began that evening ends later."""
        _, end = period.bounds(self.tz)
        return max(end, self.window.bounds(period.last)[1])

    def last_complete_day(self, now: datetime) -> date:
        """The latest local day an export may end on at ``now``."""
        day = now.astimezone(self.tz).date()
        while self.complete_at(Period(day, day)) > now:
            day -= timedelta(days=1)
        return day

    def night_hours(self) -> list[int]:
        """Local clock hours of the night window in order, e.g. 22, 23, 0, ..., 6."""
        hours: list[int] = []
        hour = self.night_start.hour
        while True:
            hours.append(hour)
            hour = (hour + 1) % 24
            end = self.night_end.hour + (1 if self.night_end.minute else 0)
            if hour == end % 24 or len(hours) == 24:
                return hours


def load_sites(conn: psycopg.Connection, sites: list[str]) -> list[SiteInfo]:
    """The sites asked for, in the order given; raises UnknownSite naming those missing."""
    found = {site: SiteInfo(r.id, r.name, NightWindow(r.night_start, r.night_end, ZoneInfo(r.tz)))
             for site, r in sites_by_id(conn, sites).items()}
    missing = [s for s in sites if s not in found]
    if missing:
        raise UnknownSite("site(s) {sites} do not exist; see the list of sites you may "
                          "open (GET /api/v1/sites)", sites=", ".join(missing))
    return [found[s] for s in dict.fromkeys(sites)]
