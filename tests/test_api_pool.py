"""The API's database pool across an outage (issue 18: alerts on the board within 15 s of
when they were due, even across a database failover).

psycopg_pool retries a lost connection after 1, 2, 4, 8 ... seconds. Across a failover of
about ten seconds its next try came up to five seconds after the new primary took writes,
and every board's catch-up waited for it. ``api.db.FailoverPool`` tries every half second.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from api.db import RECONNECT_EVERY_S, open_pool
from core.settings import Settings, StackInfo
from tests.support.proxy import CuttableProxy

OUTAGE_S = 4.0  # the library's own pauses would have reached 1 + 2 + 4 s by then


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2
                                     else host))


def test_the_pool_reaches_the_database_again_within_a_second_after_an_outage(
        migrated: StackInfo) -> None:
    target = urlsplit(migrated.database_url)
    proxy = CuttableProxy((target.hostname or "127.0.0.1", target.port or 5432))
    pool = open_pool(Settings(database_url=through(migrated.database_url, proxy.port)),
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
        back = time.monotonic()
        while True:
            try:
                with pool.connection(timeout=10) as conn:
                    conn.execute("SELECT 1")
                break
            except (PoolTimeout, psycopg.OperationalError):
                assert time.monotonic() - back < 10, "the pool never reached the database"
        took = time.monotonic() - back
        assert took < RECONNECT_EVERY_S + 1.0, f"the pool took {took:.1f} s to come back"
    finally:
        pool.close()
        proxy.close()
