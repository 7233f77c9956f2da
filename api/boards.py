"""Enrolled boards: a tablet paired by an admin as the board of one site.

An admin makes a pairing code for a site (``make_pairing``: eight letters and digits,
valid ``board_pairing_minutes``, single use); the tablet enters it on the login page with
a device id of its own, and gets a *board secret* (``pair``). With the secret and the same
device id it renews its short board token whenever it likes (``renew``), all night and
the next: the board's session never runs out mid-shift, and never needs a password (so
no lockout can touch it). Revoking the board (``revoke``) ends its tokens and its live
stream within about a second (``api.revocation``).

Only SHA-256 digests of the secret, the device id and the code are stored: they are long
random values (the code short-lived and single use), so a slow password hash buys nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from core.errors import NatteroError
from core.i18n import mark
from ingest import boards as stored_boards
from ingest.boards import BoardRecord

__all__ = ["BoardError", "Pairing", "make_pairing", "normalise_code", "pair", "renew",
           "revoke"]

#: No 0/O, 1/I/L: read off one screen and typed on another.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MIN_DEVICE_ID = 16


class BoardError(NatteroError):
    """A pairing or renewal that cannot be carried out; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Pairing:
    code: str
    site: str
    label: str
    expires_at: datetime


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_code(text: str) -> str:
    """What was typed, without spaces or dashes, upper-case."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def make_pairing(conn: psycopg.Connection, site: str, label: str, by: str, now: datetime,
                 minutes: int) -> Pairing:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + timedelta(minutes=minutes)
    stored_boards.insert_pairing(conn, _digest(raw), site, label, by, now, expires_at)
    return Pairing(code=f"{raw[:4]}-{raw[4:]}", site=site, label=label, expires_at=expires_at)


def _check_device(device: str) -> None:
    if len(device) < MIN_DEVICE_ID:
        raise BoardError(mark("the device id is too short; the board page makes one itself, "
                         "reload it and enter the code again"))


def pair(conn: psycopg.Connection, code: str, device: str,
         now: datetime) -> tuple[BoardRecord, str]:
    """Enrol the tablet with ``device`` by a pairing code; the board and its secret (shown
    to the tablet once, stored only as a digest)."""
    _check_device(device)
    secret = secrets.token_urlsafe(32)
    board = stored_boards.redeem_pairing(conn, _digest(normalise_code(code)), _digest(secret),
                                         _digest(device), now)
    if board is None:
        raise BoardError(mark("the pairing code is wrong, used or expired; ask an admin for a "
                         "new one on the admin page"))
    return board, secret


def renew(conn: psycopg.Connection, secret: str, device: str, now: datetime) -> BoardRecord:
    """The board the secret belongs to, if it is not revoked and is on the same device."""
    board = stored_boards.find_board_by_secret(conn, _digest(secret))
    if board is None or board.revoked_at is not None:
        raise BoardError(mark("this board was revoked or is not enrolled; ask an admin for a new "
                         "pairing code"))
    if board.device_hash != _digest(device):
        raise BoardError(mark("this board's credential belongs to another device; enrol this "
                         "tablet with a new pairing code"))
    stored_boards.seen(conn, board.id, now)
    return board


def revoke(conn: psycopg.Connection, board_id: int, by: str, now: datetime) -> bool:
    """False when there is no such board or it is revoked already."""
    return stored_boards.revoke_board(conn, board_id, by, now)
