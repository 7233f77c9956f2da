"""When each flat's monitoring basis runs out: for the admin page's warning and the board's
pre-shift check.

A flat is covered on a day when one of its bases is valid that day (``valid_from`` and
``valid_to`` both inclusive, in the site's local date, as ``ingest.sites`` decides
"monitored"). Bases that follow each other without a gap count as one: a decision renewed
before it ends is not a warning. Flats that never had a basis are not listed here (the
board shows them "not monitored" already). Never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import psycopg

__all__ = ["WARNING_DAYS", "BasisEnd", "basis_ends", "covered_until"]

# How far ahead an ending basis is warned of: a municipal decision takes weeks to renew.
WARNING_DAYS = 30


@dataclass(frozen=True, slots=True)
class BasisEnd:
    site: str
    room: str
    label: str
    ends: date            # the last day the flat is covered
    expired: bool         # ``ends`` is before the site's today: not monitored now
    kind: str             # of the basis that ends: consent | decision
    reference: str | None


def covered_until(bases: list[tuple[date, date | None]], today: date) -> date | None:
    """The last day from ``today`` on that the flat is covered without a gap; ``None`` when
    it is covered for good. Not covered today: the day its last basis before today ended
    (``today - 1`` when it has none before today)."""
    day = timedelta(days=1)
    end = today - day  # the last day covered from today on, so far
    for start, stop in sorted(bases, key=lambda basis: basis[0]):
        if start > end + day:
            break  # a gap: what follows it does not cover the days before
        if stop is None:
            return None
        end = max(end, stop)
    if end >= today:
        return end
    return max((stop for _, stop in bases if stop is not None and stop < today),
               default=today - day)


def basis_ends(conn: psycopg.Connection, within_days: int,
               sites: list[str] | None = None) -> list[BasisEnd]:
    """Flats (of ``sites``, or all) whose basis has ended or ends within ``within_days``
    days of their site's today, soonest first."""
    rows = conn.execute(
        "SELECT r.site, r.id, r.label, (now() AT TIME ZONE s.tz)::date AS today,"
        " b.valid_from, b.valid_to, b.kind, b.reference "
        "FROM rooms r JOIN sites s ON s.id = r.site "
        "JOIN room_bases b ON b.site = r.site AND b.room = r.id "
        "WHERE r.kind = 'flat' AND (%(sites)s::text[] IS NULL OR r.site = ANY(%(sites)s)) "
        "ORDER BY r.site, r.id, b.valid_from, b.id", {"sites": sites}).fetchall()
    flats: dict[tuple[str, str], list[tuple[str, date, date, date | None, str, str | None]]] = {}
    for site, room, label, today, valid_from, valid_to, kind, reference in rows:
        flats.setdefault((site, room), []).append(
            (label, today, valid_from, valid_to, kind, reference))
    found: list[BasisEnd] = []
    for (site, room), bases in flats.items():
        label, today = bases[0][0], bases[0][1]
        ends = covered_until([(b[2], b[3]) for b in bases], today)
        if ends is None or ends > today + timedelta(days=within_days):
            continue
        last = next((basis for basis in bases if basis[3] == ends), bases[-1])
        found.append(BasisEnd(site, room, label, ends, ends < today, last[4], last[5]))
    return sorted(found, key=lambda end: (end.ends, end.site, end.room))
