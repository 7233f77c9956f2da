"""The store of Web Push: the installation's VAPID key pair, the browsers subscribed, each
push tried, and the boards' presence per site (the "no board connected" watch).

Never sends anything itself (``api.push`` does); never stores a push's text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg.types.json import Jsonb

__all__ = ["VAPID", "BoardSilence", "PushSubscription", "VapidKeys", "claim_delivery",
           "end_silence", "finish_delivery", "forget_subscription", "mark_boards_live",
           "open_silence", "recipients", "record_silence", "save_subscription",
           "silent_sites", "vapid_keys"]

VAPID = "vapid"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class VapidKeys:
    """``private_key``: the raw 32-byte P-256 scalar, base64url (what ``py_vapid`` reads);
    ``public_key``: the uncompressed point, base64url (the board's applicationServerKey)."""

    private_key: str
    public_key: str


def _new_vapid_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return _b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def vapid_keys(conn: psycopg.Connection) -> VapidKeys:
    """This installation's VAPID key pair, made on first use and kept in the database (so
    every API process signs with it, and subscriptions survive a restart). Two processes
    racing agree: the first insert wins."""
    with conn.transaction():
        conn.execute("INSERT INTO installation_secrets (name, value) VALUES (%s, %s) "
                     "ON CONFLICT (name) DO NOTHING", (VAPID, _new_vapid_private_key()))
        row = conn.execute("SELECT value FROM installation_secrets WHERE name = %s",
                           (VAPID,)).fetchone()
    assert row is not None  # inserted just above, and never deleted
    private: str = row[0]
    scalar = int.from_bytes(base64.urlsafe_b64decode(private + "=" * (-len(private) % 4)), "big")
    public = ec.derive_private_key(scalar, ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return VapidKeys(private_key=private, public_key=_b64url(public))


@dataclass(frozen=True, slots=True)
class PushSubscription:
    id: int
    endpoint: str
    p256dh: str
    auth: str
    username: str

    def info(self) -> dict[str, Any]:
        """The form ``pywebpush.webpush`` takes (the browser's ``subscription.toJSON()``)."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def save_subscription(conn: psycopg.Connection, username: str, endpoint: str, p256dh: str,
                      auth: str, site: str | None) -> int:
    """Store (or move to this account and keys) a browser's subscription; its id."""
    row = conn.execute(
        "INSERT INTO push_subscriptions (endpoint, p256dh, auth, username, site) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (endpoint) DO UPDATE SET "
        "p256dh = excluded.p256dh, auth = excluded.auth, username = excluded.username, "
        "site = excluded.site RETURNING id", (endpoint, p256dh, auth, username, site)).fetchone()
    assert row is not None
    return int(row[0])


def forget_subscription(conn: psycopg.Connection, *, endpoint: str | None = None,
                        subscription_id: int | None = None, username: str | None = None) -> int:
    """Delete a subscription (by endpoint, optionally only the account's own, or by id);
    how many rows went."""
    if subscription_id is not None:
        return conn.execute("DELETE FROM push_subscriptions WHERE id = %s",
                            (subscription_id,)).rowcount
    return conn.execute(
        "DELETE FROM push_subscriptions WHERE endpoint = %s AND (%s::text IS NULL OR "
        "username = %s)", (endpoint, username, username)).rowcount


def recipients(conn: psycopg.Connection, site: str, username: str | None = None
               ) -> list[PushSubscription]:
    """The subscriptions that may be told about ``site``: of enabled admin and staff
    accounts that see it now, for boards of that site or of all their sites; ``username``:
    only that account's (a person the escalation calls)."""
    rows = conn.execute(
        "SELECT s.id, s.endpoint, s.p256dh, s.auth, s.username FROM push_subscriptions s "
        "JOIN users u ON u.username = s.username WHERE NOT u.disabled "
        "AND (u.role = 'admin' OR (u.role = 'staff' AND %s = ANY(u.sites))) "
        "AND (s.site IS NULL OR s.site = %s) AND (%s::text IS NULL OR s.username = %s) "
        "ORDER BY s.id", (site, site, username, username)).fetchall()
    return [PushSubscription(*row) for row in rows]


def claim_delivery(conn: psycopg.Connection, subscription_id: int, key: str,
                   site: str) -> bool:
    """Whether this process is the one to send push ``key`` to the subscription (the first
    to claim it; another API process that saw the same change gets False)."""
    return conn.execute(
        "INSERT INTO push_deliveries (subscription_id, key, site) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING", (subscription_id, key, site)).rowcount == 1


def finish_delivery(conn: psycopg.Connection, subscription_id: int, key: str, *, sent: bool,
                    attempts: int, error: str | None) -> None:
    conn.execute(
        "UPDATE push_deliveries SET status = %s, attempts = %s, last_error = %s, at = now() "
        "WHERE subscription_id = %s AND key = %s",
        ("sent" if sent else "failed", attempts, error, subscription_id, key))
    if sent:
        conn.execute("UPDATE push_subscriptions SET last_sent_at = now() WHERE id = %s",
                     (subscription_id,))


# -- the boards' presence --------------------------------------------------------------------

def mark_boards_live(conn: psycopg.Connection, sites: list[str], at: datetime) -> None:
    """A board of each of ``sites`` has a live WebSocket at ``at``."""
    if sites:
        conn.execute(
            "INSERT INTO board_presence (site, last_live_at) SELECT unnest(%s::text[]), %s "
            "ON CONFLICT (site) DO UPDATE SET last_live_at = "
            "greatest(board_presence.last_live_at, excluded.last_live_at)", (sites, at))


@dataclass(frozen=True, slots=True)
class BoardSilence:
    site: str
    silent_since: datetime
    recorded_at: datetime


def silent_sites(conn: psycopg.Connection) -> list[tuple[str, str, str, str, str, datetime | None]]:
    """Every site: (id, name, tz, night_start, night_end, last time a board was live)."""
    rows = conn.execute(
        "SELECT s.id, s.name, s.tz, s.night_start::text, s.night_end::text, p.last_live_at "
        "FROM sites s LEFT JOIN board_presence p ON p.site = s.id ORDER BY s.id").fetchall()
    return [tuple(row) for row in rows]


def open_silence(conn: psycopg.Connection, site: str) -> BoardSilence | None:
    """The site's ongoing "no board connected", if any."""
    row = conn.execute("SELECT site, silent_since, recorded_at FROM board_silences "
                       "WHERE site = %s AND ended_at IS NULL", (site,)).fetchone()
    return BoardSilence(*row) if row else None


def record_silence(conn: psycopg.Connection, site: str, silent_since: datetime,
                   detail: dict[str, Any]) -> bool:
    """Record that no board of ``site`` has been connected since ``silent_since``; False
    when it was already recorded (by this or another process)."""
    return conn.execute(
        "INSERT INTO board_silences (site, silent_since, detail) VALUES (%s, %s, %s) "
        "ON CONFLICT (site) WHERE ended_at IS NULL DO NOTHING",
        (site, silent_since, Jsonb(detail))).rowcount == 1


def end_silence(conn: psycopg.Connection, site: str, at: datetime) -> bool:
    """A board of ``site`` is connected again (or the night is over); whether one was open."""
    return conn.execute("UPDATE board_silences SET ended_at = %s WHERE site = %s "
                        "AND ended_at IS NULL", (at, site)).rowcount == 1
