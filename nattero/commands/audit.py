"""Admin changes made on the command line go to the audit log, like the API's do."""

from __future__ import annotations

import getpass
import os
from typing import Any

from nattero.commands.config import current_settings

__all__ = ["cli_actor", "record"]


def cli_actor() -> str:
    """``cli:<login>`` of the person at the keyboard (through sudo, the one who ran it)."""
    return f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"


def record(action: str, site: str | None, target: str | None,
           detail: dict[str, Any] | None = None) -> None:
    import psycopg

    from ingest.audit import audit

    with psycopg.connect(current_settings().resolved_database_url(), autocommit=True) as conn:
        audit(conn, cli_actor(), action, site, target, detail or {})
