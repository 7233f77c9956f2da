"""Wrong passwords per (account, client) in ``login_locks``: count, lock, clear, unlock.

The rules (how many failures are free, how long each lock lasts) belong to
``api.lockout``; this module only reads and writes rows. Times come from the caller's
clock, never from the database's ``now()``, so a test can move them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

__all__ = ["ClientLock", "clear_client", "count_failure", "lock_client", "locked_clients",
           "read_lock", "unlock_account"]


@dataclass(frozen=True, slots=True)
class ClientLock:
    """One client's failures against one account since its last success, and the lock."""

    failures: int
    locked_until: datetime | None
    last_failed_at: datetime


def read_lock(conn: psycopg.Connection, user_id: int, client: str) -> ClientLock | None:
    row = conn.execute("SELECT failures, locked_until, last_failed_at FROM login_locks "
                       "WHERE user_id = %s AND client = %s", (user_id, client)).fetchone()
    return None if row is None else ClientLock(*row)


def count_failure(conn: psycopg.Connection, user_id: int, client: str, now: datetime,
                  forget_before: datetime) -> int:
    """One more failure of ``client``; a count whose last failure is older than
    ``forget_before`` starts again at one. Returns the count."""
    row = conn.execute(
        "INSERT INTO login_locks AS l (user_id, client, failures, last_failed_at) "
        "VALUES (%(user)s, %(client)s, 1, %(now)s) "
        "ON CONFLICT (user_id, client) DO UPDATE SET "
        " failures = CASE WHEN l.last_failed_at < %(forget)s THEN 1 ELSE l.failures + 1 END,"
        " last_failed_at = %(now)s RETURNING failures",
        {"user": user_id, "client": client, "now": now, "forget": forget_before}).fetchone()
    assert row is not None
    return int(row[0])


def lock_client(conn: psycopg.Connection, user_id: int, client: str,
                until: datetime) -> None:
    conn.execute("UPDATE login_locks SET locked_until = %s WHERE user_id = %s AND client = %s",
                 (until, user_id, client))


def clear_client(conn: psycopg.Connection, user_id: int, client: str) -> None:
    """After a successful login from ``client``: nothing counted, no lock."""
    conn.execute("DELETE FROM login_locks WHERE user_id = %s AND client = %s",
                 (user_id, client))


def unlock_account(conn: psycopg.Connection, user_id: int) -> int:
    """An admin's unlock: every client's count and lock of the account go (and the old
    per-account lock). Returns how many clients were counted or locked."""
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = %s",
                 (user_id,))
    return conn.execute("DELETE FROM login_locks WHERE user_id = %s", (user_id,)).rowcount


def locked_clients(conn: psycopg.Connection, now: datetime) -> dict[int, int]:
    """``{user_id: clients locked at now}`` of every account with at least one."""
    rows = conn.execute("SELECT user_id, count(*) FROM login_locks WHERE locked_until > %s "
                        "GROUP BY user_id", (now,)).fetchall()
    return {int(row[0]): int(row[1]) for row in rows}
