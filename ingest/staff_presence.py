"""Rounds staff announce on the board (issue 13 §3): the ``staff_presence`` rows the rules
read (``rules.staff``; ``ingest.rules_store.RulesStore.staff_rounds``), and the presence an
acknowledged alert implies (``place_for_alert``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg

from core.alerts import DEVICE_RULES, RuleName

__all__ = ["ACK_PRESENCE", "StaffPresence", "UnknownFlat", "current_presence",
           "place_for_alert", "record_presence"]

# How long staff who took an alert are taken to be on the floor: the board's own round.
ACK_PRESENCE = timedelta(minutes=15)


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


def place_for_alert(conn: psycopg.Connection, site: str, room: str, rule: RuleName,
                    at: datetime) -> list[StaffPresence]:
    """Staff who took ("Jeg tager den") a resident alert at ``at`` are on their way to its
    room: their motion in the common rooms is theirs, and for a bed alert the flat's door
    opening is them going in, not the resident leaving. Device alerts place nobody.

    An outing's flat is not entered for the resident (they are out): staff opening its door
    must not be taken for the resident coming home, but the resident's own homecoming must
    still end the outing, so only bed alerts place staff in the flat itself."""
    if rule in DEVICE_RULES:
        return []
    placed = [record_presence(conn, site, None, at, at + ACK_PRESENCE)]
    if rule is RuleName.BED_EXIT_NOT_BACK and conn.execute(
            "SELECT 1 FROM rooms WHERE site = %s AND id = %s AND kind = 'flat'",
            (site, room)).fetchone() is not None:
        placed.append(record_presence(conn, site, room, at, at + ACK_PRESENCE))
    return placed
