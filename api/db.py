"""The process's database connections: one pool of autocommit connections for requests.

Routes that need atomicity open ``with conn.transaction():`` themselves, so a failed login
can record the failure and still answer 401. Everything here is synchronous psycopg, used
from FastAPI's threadpool (sync ``def`` routes) or ``run_in_threadpool``; never call it
directly on the event loop.

The pool finds a new primary quickly (``FailoverPool``). Across a database failover of ten
seconds, psycopg_pool as it comes lost up to seven seconds more before a request reached
the new primary, and every request, every board's catch-up and the alert fan-out's reads
waited for it (measured with ``bench/chaos.py``):

- it retries a lost connection after 1, 2, 4, 8 ... seconds, so its next try came up to
  five seconds after the new primary took writes; ``FailoverPool`` tries every
  ``RECONNECT_EVERY_S`` (a refused connection costs the database next to nothing);
- a request tests the idle connections one by one and pauses 0, 1, 2 ... seconds after
  each broken one; when one fails its test, ``FailoverPool`` tests every idle connection
  at once (they all went with the same server) and drops the broken ones.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from core.settings import Settings

APPLICATION_NAME = f"nattero-api:{os.getpid()}"

RECONNECT_EVERY_S = 0.5

__all__ = ["APPLICATION_NAME", "RECONNECT_EVERY_S", "FailoverPool", "open_pool"]


class _SteadyAttempt(AttemptWithBackoff):
    """A reconnection attempt that tries again every ``RECONNECT_EVERY_S`` (with the
    library's jitter) until the pool's ``reconnect_timeout``."""

    INITIAL_DELAY = RECONNECT_EVERY_S
    DELAY_BACKOFF = 1.0


class FailoverPool(ConnectionPool[Connection]):
    """A ``ConnectionPool`` whose lost connections are retried at a steady pace, not with
    a doubling pause, and whose broken idle connections go all at once. Relies on
    psycopg_pool's ``_add_connection`` (pinned in ``pyproject.toml``;
    ``tests/test_api_pool.py`` fails if the pace is lost)."""

    def __init__(self, conninfo: str, **kwargs: Any) -> None:
        super().__init__(conninfo, check=self._check_all_if_broken, **kwargs)

    def _check_all_if_broken(self, conn: Connection) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            # The server went away: the other idle connections are as broken as this one.
            self.check()
            raise

    def _add_connection(self, attempt: AttemptWithBackoff | None,
                        growing: bool = False) -> None:
        super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout),
                                growing)


def open_pool(settings: Settings, max_size: int = 10) -> ConnectionPool[Connection]:
    """Open without waiting, so the API starts (and /readyz says why) while the DB is down."""
    pool = FailoverPool(
        settings.resolved_database_url(), min_size=1, max_size=max_size, open=False,
        kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
        timeout=10, name="nattero-api")
    pool.open(wait=False)
    return pool
