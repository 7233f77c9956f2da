"""The process's settings, read when a verb first needs them.

Importing pydantic-settings costs a tenth of a second that ``nattero --help`` should not pay,
so the verb modules ask here instead of importing ``core.settings`` at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from core.settings import Settings

__all__ = ["connect_store", "current_settings"]


def current_settings() -> Settings:
    from core.settings import get_settings

    return get_settings()


def connect_store() -> psycopg.Connection:
    """An autocommit connection to the configured database (psycopg imported only now)."""
    import psycopg

    return psycopg.connect(current_settings().resolved_database_url(), autocommit=True)
