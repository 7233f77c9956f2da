"""Rounds staff logged on the board ("Runde gået") and each site's baseline period.

A round covers one flat, one floor (the flats whose door opens onto one corridor) or the
whole site; ``flats`` is how many flats it covered when it was logged, so a later change of
the layout does not rewrite the baseline. Who logged a round is written to the audit log
by the caller, never here. The report (``evaluation.benefit``) counts the rounds per night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, NamedTuple

import psycopg

__all__ = ["BaselinePeriod", "LoggedRound", "RoundScope", "UnknownRoundTarget",
           "baseline_period", "flats_covered", "log_round", "log_round_once", "rounds_between",
           "set_baseline_period"]

RoundScope = Literal["flat", "floor", "site"]


class UnknownRoundTarget(LookupError):
    """The flat or floor of a round is not a flat or corridor of the site."""


@dataclass(frozen=True, slots=True)
class BaselinePeriod:
    site: str
    first: date
    last: date
    set_by: str
    set_at: datetime


class LoggedRound(NamedTuple):
    id: int
    scope: str
    room: str | None
    flats: int
    walked_at: datetime


def flats_covered(conn: psycopg.Connection, site: str, scope: RoundScope,
                  room: str | None) -> int:
    """How many flats a round of ``scope`` covers now; raises ``UnknownRoundTarget`` when
    ``room`` is not a flat (scope flat) or a corridor with flats (scope floor)."""
    if scope == "site":
        row = conn.execute("SELECT count(*) FROM rooms WHERE site = %s AND kind = 'flat'",
                           (site,)).fetchone()
    elif scope == "flat":
        row = conn.execute("SELECT count(*) FROM rooms WHERE site = %s AND id = %s "
                           "AND kind = 'flat'", (site, room)).fetchone()
    else:
        row = conn.execute("SELECT count(*) FROM rooms WHERE site = %s AND kind = 'flat' "
                           "AND corridor = %s", (site, room)).fetchone()
    flats = int(row[0]) if row else 0
    if scope != "site" and flats == 0:
        raise UnknownRoundTarget(room)
    return flats


def log_round(conn: psycopg.Connection, site: str, scope: RoundScope, room: str | None,
              walked_at: datetime) -> LoggedRound:
    """Store one round (in the caller's transaction, beside its audit row)."""
    flats = flats_covered(conn, site, scope, None if scope == "site" else room)
    row = conn.execute(
        "INSERT INTO rounds (site, scope, room, flats, walked_at) VALUES (%s, %s, %s, %s, %s) "
        "RETURNING id, scope, room, flats, walked_at",
        (site, scope, None if scope == "site" else room, flats, walked_at)).fetchone()
    assert row is not None
    return LoggedRound(*row)


def log_round_once(conn: psycopg.Connection, site: str, scope: RoundScope, room: str | None,
                   walked_at: datetime) -> LoggedRound | None:
    """``log_round`` unless a round of the same scope and room is stored at that moment
    (None then): a file of paper rounds read twice counts once."""
    target = None if scope == "site" else room
    if conn.execute("SELECT 1 FROM rounds WHERE site = %s AND scope = %s AND room IS NOT "
                    "DISTINCT FROM %s AND walked_at = %s",
                    (site, scope, target, walked_at)).fetchone():
        return None
    return log_round(conn, site, scope, target, walked_at)


def rounds_between(conn: psycopg.Connection, site: str, start: datetime,
                   end: datetime) -> list[LoggedRound]:
    """The site's rounds with ``start <= walked_at < end``, oldest first."""
    rows = conn.execute(
        "SELECT id, scope, room, flats, walked_at FROM rounds WHERE site = %s "
        "AND walked_at >= %s AND walked_at < %s ORDER BY walked_at, id",
        (site, start, end)).fetchall()
    return [LoggedRound(*row) for row in rows]


def set_baseline_period(conn: psycopg.Connection, site: str, first: date, last: date,
                        actor: str) -> BaselinePeriod:
    row = conn.execute(
        "INSERT INTO baseline_periods (site, first_night, last_night, set_by) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (site) DO UPDATE SET "
        "first_night = excluded.first_night, last_night = excluded.last_night, "
        "set_by = excluded.set_by, set_at = now() "
        "RETURNING site, first_night, last_night, set_by, set_at",
        (site, first, last, actor)).fetchone()
    assert row is not None
    return BaselinePeriod(*row)


def baseline_period(conn: psycopg.Connection, site: str) -> BaselinePeriod | None:
    row = conn.execute("SELECT site, first_night, last_night, set_by, set_at "
                       "FROM baseline_periods WHERE site = %s", (site,)).fetchone()
    return BaselinePeriod(*row) if row else None
