"""Rounds staff logged on paper, read into the store: ``nattero site rounds SITE FILE.csv``.

A site's baseline is measured before the sensors go live, often before the board is in use:
staff note their rounds on paper and the coordinator types them in. The first line names
the columns, in Danish or English; only the time is required::

    tidspunkt;omfang;rum
    2026-11-16T23:05+01:00;hele stedet;
    2026-11-17T02:10+01:00;etage;gang-1
    2026-11-17T04:00+01:00;lejlighed;f12

A time must carry its UTC offset (a local clock time is ambiguous at the autumn change);
``omfang``/``scope`` is ``hele stedet`` (site, the default), ``etage`` (floor: a corridor)
or ``lejlighed`` (flat). Every line is checked before anything is stored, against the site's
rooms too; if any is bad, nothing is, and each bad line is named. A round already stored at
the same moment with the same scope and room is not stored again, so a file read twice
counts once. Each round is audited (``round.log``) like one logged on the board.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ingest import rounds as stored
from ingest.audit import audit
from provisioning.csv_import import csv_lines
from provisioning.errors import ProvisioningError

__all__ = ["ImportedRounds", "RoundLine", "import_rounds", "read_rounds"]

MAX_LINES = 20_000
_COLUMNS = {"tidspunkt": "walked_at", "walked_at": "walked_at", "omfang": "scope",
            "scope": "scope", "rum": "room", "room": "room"}
_SCOPES: dict[str, stored.RoundScope] = {
    "": "site", "hele stedet": "site", "site": "site", "etage": "floor", "floor": "floor",
    "lejlighed": "flat", "flat": "flat"}


@dataclass(frozen=True, slots=True)
class RoundLine:
    line: int
    walked_at: datetime
    scope: stored.RoundScope
    room: str | None


@dataclass(frozen=True, slots=True)
class ImportedRounds:
    site: str
    read: int
    stored: int     # the rest were stored already

    def as_dict(self) -> dict[str, object]:
        return {"site": self.site, "read": self.read, "stored": self.stored}


def read_rounds(text: str) -> list[RoundLine]:
    """The file's rounds; raises ``ProvisioningError`` naming every bad line."""
    lines = csv_lines(text)
    first = next(lines, None)
    if first is None:
        raise ProvisioningError("the file is empty; its first line names the columns, "
                                "e.g. tidspunkt;omfang;rum")
    header = [_COLUMNS.get(name.lower()) for name in first[1]]
    if "walked_at" not in header:
        raise ProvisioningError("the first line names no time column: write tidspunkt (or "
                                "walked_at), e.g. tidspunkt;omfang;rum")
    found: list[RoundLine] = []
    problems: list[str] = []
    for number, cells in lines:
        row = {column: cells[i] if i < len(cells) else ""
               for i, column in enumerate(header) if column is not None}
        try:
            found.append(_round(number, row))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
        if len(found) + len(problems) > MAX_LINES:
            raise ProvisioningError(f"the file has more than {MAX_LINES} rounds; split it")
    if problems:
        raise ProvisioningError("nothing was stored; " + "; ".join(problems[:20])
                                + (f"; and {len(problems) - 20} more" if len(problems) > 20
                                   else ""))
    return found


def _round(number: int, row: dict[str, str]) -> RoundLine:
    try:
        walked_at = datetime.fromisoformat(row["walked_at"])
    except ValueError:
        raise ValueError(f"{row['walked_at']!r} is not a time like 2026-11-16T23:05+01:00"
                         ) from None
    if walked_at.tzinfo is None:
        raise ValueError(f"{row['walked_at']!r} has no UTC offset; write it like "
                         "2026-11-16T23:05+01:00")
    scope = _SCOPES.get(row.get("scope", "").lower())
    if scope is None:
        raise ValueError(f"scope {row['scope']!r} is not hele stedet, etage or lejlighed")
    room = row.get("room") or None
    if scope != "site" and room is None:
        raise ValueError(f"a round of scope {scope} names its room")
    return RoundLine(number, walked_at, scope, None if scope == "site" else room)


def import_rounds(conn: psycopg.Connection, site: str, rounds: list[RoundLine],
                  actor: str) -> ImportedRounds:
    """Store the rounds not stored yet, in one transaction, each audited."""
    new = 0
    with conn.transaction():
        problems = []
        for line in rounds:
            try:
                stored.flats_covered(conn, site, line.scope, line.room)
            except stored.UnknownRoundTarget:
                kind = "flat" if line.scope == "flat" else "corridor with flats"
                problems.append(f"line {line.line}: {line.room!r} is not a {kind} of {site}")
        if problems:
            raise ProvisioningError("nothing was stored; " + "; ".join(problems[:20]))
        for line in rounds:
            logged = stored.log_round_once(conn, site, line.scope, line.room, line.walked_at)
            if logged is not None:
                audit(conn, actor, "round.log", site, str(logged.id),
                      {"scope": logged.scope, "room": logged.room, "flats": logged.flats,
                       "walked_at": logged.walked_at.isoformat(), "from_file": True})
                new += 1
    return ImportedRounds(site, len(rounds), new)
