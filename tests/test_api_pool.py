"""The API's database pool across an outage (issue 18: alerts on the board within 15 s of
when they were due, even across a database failover).

psycopg_pool retries a lost connection after 1, 2, 4, 8 ... seconds, and a request tests
the idle connections one at a time with a pause of 0, 1, 2 ... seconds after each broken
one. Across a failover of about ten seconds, a board's catch-up reached the new primary up
to seven seconds after it took writes. ``api.db.FailoverPool`` tries every half second and
drops every broken idle connection at the first one found.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg_pool import ConnectionPool, PoolTimeout

from api.db import RECONNECT_EVERY_S, open_pool
from core.settings import Settings, StackInfo
from tests.support.proxy import CuttableProxy

OUTAGE_S = 4.0  # the library's own pauses would have reached 1 + 2 + 4 s by then


def first_query_s(pool: ConnectionPool) -> float:
    """Seconds until a query through the pool succeeds."""
    started = time.monotonic()
    while True:
        try:
            with pool.connection(timeout=10) as conn:
                conn.execute("SELECT 1")
            return time.monotonic() - started
        except (PoolTimeout, psycopg.OperationalError):
            assert time.monotonic() - started < 10, "the pool never reached the database"


def test_the_pool_reaches_the_database_again_within_a_second_after_an_outage(
        migrated: StackInfo) -> None:
    proxy = CuttableProxy.to_database(migrated.database_url)
    pool = open_pool(Settings(database_url=proxy.url(migrated.database_url)),
                     max_size=2)
    try:
        with pool.connection(timeout=10) as conn:
            conn.execute("SELECT 1")
        proxy.cut()
        # A request during the outage finds its connection broken and none to replace it.
        with pytest.raises((PoolTimeout, psycopg.OperationalError)), \
                pool.connection(timeout=1) as conn:
            conn.execute("SELECT 1")
        time.sleep(OUTAGE_S - 1)
        proxy.restore()
        took = first_query_s(pool)
        assert took < RECONNECT_EVERY_S + 1.0, f"the pool took {took:.1f} s to come back"
    finally:
        pool.close()
        proxy.close()


def test_idle_connections_broken_by_an_outage_do_not_hold_up_the_first_request_after_it(
        migrated: StackInfo) -> None:
    """Three idle connections, all broken while nobody asked for one: the first request
    after the outage tested them one by one and paused 0 + 1 + 2 s."""
    proxy = CuttableProxy.to_database(migrated.database_url)
    pool = open_pool(Settings(database_url=proxy.url(migrated.database_url)),
                     max_size=3)
    try:
        held = [pool.getconn(timeout=10) for _ in range(3)]
        for conn in held:
            pool.putconn(conn)
        proxy.cut()
        time.sleep(1.0)
        proxy.restore()
        took = first_query_s(pool)
        assert took < 1.0, f"the first request after the outage took {took:.1f} s"
    finally:
        pool.close()
        proxy.close()
