"""The process's database connections: one pool of autocommit connections for requests.

Routes that need atomicity open ``with conn.transaction():`` themselves, so a failed login
can record the failure and still answer 401. Everything here is synchronous psycopg, used
from FastAPI's threadpool (sync ``def`` routes) or ``run_in_threadpool``; never call it
directly on the event loop.
"""

from __future__ import annotations

import os

from psycopg_pool import ConnectionPool

from core.settings import Settings

APPLICATION_NAME = f"nattero-api:{os.getpid()}"


def open_pool(settings: Settings, max_size: int = 10) -> ConnectionPool:
    """Open without waiting, so the API starts (and /readyz says why) while the DB is down."""
    pool = ConnectionPool(
        settings.resolved_database_url(), min_size=1, max_size=max_size, open=False,
        kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
        check=ConnectionPool.check_connection, timeout=10, name="nattero-api")
    pool.open(wait=False)
    return pool
