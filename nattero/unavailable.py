"""The one place where "the database or broker is not there" becomes an error a person can act on.

Libraries report a missing service each in their own words (``psycopg.OperationalError``,
SQLAlchemy's wrapper of it, a bare ``ConnectionRefusedError``, a table that is not there
because the schema was never migrated). ``translate`` turns those into
``core.errors.Unavailable`` with what to do next; it imports no driver itself, so
asking costs nothing when the driver was never loaded.
"""

from __future__ import annotations

import sys

from core.errors import Unavailable

__all__ = ["translate"]

_WHAT_TO_DO = ("start the local stack with `nattero up`, or point NATTERO_DATABASE_URL at a "
               "running database")


def translate(exc: BaseException) -> Unavailable | None:
    """``Unavailable`` for a database or broker that cannot be reached; else ``None``."""
    if _is_database_error(exc):
        return Unavailable(f"the database is not reachable ({_first_line(exc)}); {_WHAT_TO_DO}")
    if _is_missing_schema(exc):
        return Unavailable(f"the database has no Nattero schema yet ({_first_line(exc)}); "
                           "run `nattero migrate`")
    if isinstance(exc, ConnectionRefusedError):
        return Unavailable(f"the database or the broker refused the connection "
                           f"({_first_line(exc)}); start the local stack with `nattero up`, or "
                           "check NATTERO_DATABASE_URL, NATTERO_MQTT_HOST and NATTERO_MQTT_PORT")
    return None


def _is_database_error(exc: BaseException) -> bool:
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return True
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.OperationalError)


def _is_missing_schema(exc: BaseException) -> bool:
    errors = sys.modules.get("psycopg.errors")
    wrapped = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError keeps the driver's error
    return errors is not None and (isinstance(exc, errors.UndefinedTable)
                                   or isinstance(wrapped, errors.UndefinedTable))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
