"""The audit log: who did what, when. Every login, acknowledge, resolve, export and
administrative change is written here, in the caller's transaction. Admins read and export
it (``read_audit``, ``audit_csv``) through ``GET /api/v1/audit`` and ``nattero audit``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def audit(conn: psycopg.Connection, actor: str, action: str, site: str | None = None,
          target: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
    conn.execute("INSERT INTO audit_log (actor, action, site, target, detail) "
                 "VALUES (%s, %s, %s, %s, %s)",
                 (actor, action, site, target, Jsonb(dict(detail or {}))))


AUDIT_FIELDS = ("id", "at", "actor", "action", "site", "target", "detail")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    site: str | None
    target: str | None
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "site": self.site, "target": self.target,
                "detail": self.detail}


def read_audit(conn: psycopg.Connection, *, since: datetime | None = None,
               until: datetime | None = None, actor: str | None = None,
               action: str | None = None, site: str | None = None,
               limit: int | None = 1000) -> list[AuditEntry]:
    """Audit rows, oldest first, filtered by time (``since`` <= at < ``until``), actor,
    action (``alert.resolve``, or a prefix ending in a dot: ``alert.``) and site."""
    where: list[str] = []
    params: list[object] = []
    if since is not None:
        where.append("at >= %s")
        params.append(since)
    if until is not None:
        where.append("at < %s")
        params.append(until)
    if actor is not None:
        where.append("actor = %s")
        params.append(actor)
    if action is not None:
        if action.endswith("."):
            where.append("starts_with(action, %s)")
        else:
            where.append("action = %s")
        params.append(action)
    if site is not None:
        where.append("site = %s")
        params.append(site)
    query = ("SELECT id, at, actor, action, site, target, detail FROM audit_log"
             + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY at, id")
    if limit is not None:
        query += " LIMIT %s"
        params.append(limit)
    return [AuditEntry(*row) for row in conn.execute(query, params).fetchall()]


def audit_csv(entries: Iterable[AuditEntry]) -> str:
    """CSV for a SIEM: one row per entry, ``detail`` as compact JSON, times in ISO 8601 UTC."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_FIELDS)
    for entry in entries:
        writer.writerow([entry.id, entry.at.isoformat(), entry.actor, entry.action,
                         entry.site or "", entry.target or "",
                         json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)])
    return out.getvalue()
