"""Questions about the PostgreSQL server itself (not Nattero's tables)."""

from __future__ import annotations

import psycopg


def in_recovery(conn: psycopg.Connection) -> bool:
    """Whether the server is still replaying WAL (a restore or a standby)."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is not None and bool(row[0])
