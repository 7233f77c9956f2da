"""Questions about the PostgreSQL server itself (not Nattero's tables)."""

from __future__ import annotations

import psycopg


def in_recovery(conn: psycopg.Connection) -> bool:
    """Whether the server is still replaying WAL (a restore or a standby)."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is not None and bool(row[0])


def failover_nodes(monitor: psycopg.Connection) -> dict[str, tuple[str, str]]:
    """Each node's (reported, assigned) state, read from a pg_auto_failover monitor."""
    rows = monitor.execute("SELECT nodename, reportedstate::text, goalstate::text "
                           "FROM pgautofailover.node").fetchall()
    return {str(name): (str(reported), str(goal)) for name, reported, goal in rows}
