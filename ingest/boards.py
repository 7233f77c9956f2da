"""Enrolled boards and their pairing codes in ``boards`` and ``board_pairings``.

Secrets arrive here already hashed (``api.boards``); this module never sees a board's
secret, its device id or a pairing code in clear. Times come from the caller's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

__all__ = [
    "BoardRecord",
    "find_board_by_secret",
    "get_board",
    "insert_pairing",
    "list_boards",
    "live_board_ids",
    "redeem_pairing",
    "revoke_board",
    "seen",
]


@dataclass(frozen=True, slots=True)
class BoardRecord:
    id: int
    site: str
    label: str
    device_hash: str
    enrolled_by: str
    enrolled_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


_BOARD = ("SELECT id, site, label, device_hash, enrolled_by, enrolled_at, last_seen_at, "
          "revoked_at, revoked_by FROM boards ")


def insert_pairing(conn: psycopg.Connection, code_hash: str, site: str, label: str,
                   created_by: str, now: datetime, expires_at: datetime) -> None:
    conn.execute("INSERT INTO board_pairings (code_hash, site, label, created_by, created_at,"
                 " expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                 (code_hash, site, label, created_by, now, expires_at))


def redeem_pairing(conn: psycopg.Connection, code_hash: str, secret_hash: str,
                   device_hash: str, now: datetime) -> BoardRecord | None:
    """Turn an unused, unexpired pairing code into an enrolled board, once (the row lock
    makes a second tablet with the same code find it used). None: no such code."""
    with conn.transaction():
        row = conn.execute("SELECT site, label, created_by FROM board_pairings "
                           "WHERE code_hash = %s AND board_id IS NULL AND expires_at > %s "
                           "FOR UPDATE", (code_hash, now)).fetchone()
        if row is None:
            return None
        site, label, created_by = row
        made = conn.execute(
            "INSERT INTO boards (site, label, secret_hash, device_hash, enrolled_by, "
            "enrolled_at, last_seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (site, label, secret_hash, device_hash, created_by, now, now)).fetchone()
        assert made is not None
        conn.execute("UPDATE board_pairings SET board_id = %s WHERE code_hash = %s",
                     (made[0], code_hash))
    return get_board(conn, int(made[0]))


def get_board(conn: psycopg.Connection, board_id: int) -> BoardRecord | None:
    row = conn.execute(_BOARD + "WHERE id = %s", (board_id,)).fetchone()
    return None if row is None else BoardRecord(*row)


def find_board_by_secret(conn: psycopg.Connection, secret_hash: str) -> BoardRecord | None:
    row = conn.execute(_BOARD + "WHERE secret_hash = %s", (secret_hash,)).fetchone()
    return None if row is None else BoardRecord(*row)


def seen(conn: psycopg.Connection, board_id: int, now: datetime) -> None:
    conn.execute("UPDATE boards SET last_seen_at = %s WHERE id = %s", (now, board_id))


def list_boards(conn: psycopg.Connection) -> list[BoardRecord]:
    """Every board, revoked ones too, newest first."""
    return [BoardRecord(*row) for row in
            conn.execute(_BOARD + "ORDER BY site, enrolled_at DESC, id DESC").fetchall()]


def revoke_board(conn: psycopg.Connection, board_id: int, by: str, now: datetime) -> bool:
    """False when there is no such board or it is revoked already."""
    row = conn.execute("UPDATE boards SET revoked_at = %s, revoked_by = %s "
                       "WHERE id = %s AND revoked_at IS NULL RETURNING id",
                       (now, by, board_id)).fetchone()
    return row is not None


def live_board_ids(conn: psycopg.Connection) -> set[int]:
    """Ids of the boards not revoked: what a board's live stream must still be among."""
    return {int(row[0]) for row in
            conn.execute("SELECT id FROM boards WHERE revoked_at IS NULL").fetchall()}
