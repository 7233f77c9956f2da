"""Rounds staff announce on the board (issue 13 §3): the ``staff_presence`` rows the rules
read (``rules.staff``; ``ingest.rules_store.RulesStore.staff_rounds``)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import psycopg

__all__ = ["StaffPresence", "UnknownFlat", "current_presence", "record_presence"]


class StaffPresence(NamedTuple):
    id: int
    room: str | None
    starts_at: datetime
    ends_at: datetime


class UnknownFlat(LookupError):
    """The room is not a flat of the site."""


def record_presence(conn: psycopg.Connection, site: str, room: str | None,
                    starts_at: datetime, ends_at: datetime) -> StaffPresence:
    """Store one announced round: the site's common rooms (``room`` None) or one flat."""
    if room is not None and conn.execute(
            "SELECT 1 FROM rooms WHERE site = %s AND id = %s AND kind = 'flat'",
            (site, room)).fetchone() is None:
        raise UnknownFlat(room)
    row = conn.execute(
        "INSERT INTO staff_presence (site, room, starts_at, ends_at) VALUES (%s, %s, %s, %s) "
        "RETURNING id, room, starts_at, ends_at", (site, room, starts_at, ends_at)).fetchone()
    assert row is not None
    return StaffPresence(*row)


def current_presence(conn: psycopg.Connection, site: str, at: datetime) -> list[StaffPresence]:
    """The site's rounds in progress at ``at``, the latest first."""
    rows = conn.execute(
        "SELECT id, room, starts_at, ends_at FROM staff_presence WHERE site = %s "
        "AND starts_at <= %s AND ends_at > %s ORDER BY starts_at DESC, id DESC",
        (site, at, at)).fetchall()
    return [StaffPresence(*row) for row in rows]
