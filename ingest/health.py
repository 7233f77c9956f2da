"""Is the store answering? The cheapest round trip, for readiness checks and start-up waits."""

from __future__ import annotations

import psycopg

__all__ = ["ping"]


def ping(conn: psycopg.Connection) -> None:
    """One round trip; raises psycopg's error when the database does not answer."""
    conn.execute("SELECT 1")
