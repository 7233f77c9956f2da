"""The audit log: who did what, when. Every login, acknowledge, resolve, export and
administrative change is written here, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def audit(conn: psycopg.Connection, actor: str, action: str, site: str | None = None,
          target: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
    conn.execute("INSERT INTO audit_log (actor, action, site, target, detail) "
                 "VALUES (%s, %s, %s, %s, %s)",
                 (actor, action, site, target, Jsonb(dict(detail or {}))))
