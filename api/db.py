"""The process's database connections: one pool of autocommit connections for requests.

Routes that need atomicity open ``with conn.transaction():`` themselves, so a failed login
can record the failure and still answer 401. Everything here is synchronous psycopg, used
from FastAPI's threadpool (sync ``def`` routes) or ``run_in_threadpool``; never call it
directly on the event loop.

The pool finds a new primary quickly. psycopg_pool retries a lost connection after 1, 2,
4, 8 ... seconds; across a database failover of ten seconds its next try then came up to
five seconds after the new primary took writes, and every request, every board's
catch-up and the alert fan-out's reads waited for it (measured with ``bench/chaos.py``).
``FailoverPool`` retries every ``RECONNECT_EVERY_S`` instead: a refused connection costs
the database next to nothing.
"""

from __future__ import annotations

import os

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
    a doubling pause. Relies on psycopg_pool's ``_add_connection`` (pinned in
    ``pyproject.toml``; ``tests/test_api_pool.py`` fails if the pace is lost)."""

    def _add_connection(self, attempt: AttemptWithBackoff | None,
                        growing: bool = False) -> None:
        super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout),
                                growing)


def open_pool(settings: Settings, max_size: int = 10) -> ConnectionPool[Connection]:
    """Open without waiting, so the API starts (and /readyz says why) while the DB is down."""
    pool = FailoverPool(
        settings.resolved_database_url(), min_size=1, max_size=max_size, open=False,
        kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
        check=ConnectionPool.check_connection, timeout=10, name="nattero-api")
    pool.open(wait=False)
    return pool
