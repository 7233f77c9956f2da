"""Overrides of the rules' defaults, per site or per room, in ``rule_settings``.

The rules engine reads them (``rules.settings``); the admin API writes them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

__all__ = ["StoredRuleSetting", "site_rule_values", "upsert_rule_setting"]


@dataclass(frozen=True, slots=True)
class StoredRuleSetting:
    site: str
    room: str | None
    rule: str
    enabled: bool | None
    minutes: int | None
    severity: str | None
    updated_by: str
    updated_at: datetime


def upsert_rule_setting(conn: psycopg.Connection, site: str, room: str | None, rule: str,
                        enabled: bool | None, minutes: int | None, severity: str | None,
                        updated_by: str) -> StoredRuleSetting:
    """Set one rule for the whole site (``room`` None) or one room, replacing what was there
    (a None field is inherited from the level below)."""
    row = conn.execute(
        "INSERT INTO rule_settings (site, room, rule, enabled, minutes, severity, "
        "updated_by, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now()) "
        "ON CONFLICT (site, coalesce(room, ''), rule) DO UPDATE SET "
        "enabled = excluded.enabled, minutes = excluded.minutes, "
        "severity = excluded.severity, updated_by = excluded.updated_by, "
        "updated_at = excluded.updated_at "
        "RETURNING site, room, rule, enabled, minutes, severity, updated_by, updated_at",
        (site, room, rule, enabled, minutes, severity, updated_by)).fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return StoredRuleSetting(*row)


def site_rule_values(conn: psycopg.Connection, site: str
                     ) -> dict[str, tuple[bool | None, int | None, str | None]]:
    """The site-wide overrides: rule -> (enabled, minutes, severity)."""
    return {rule: (enabled, minutes, severity)
            for rule, enabled, minutes, severity in conn.execute(
                "SELECT rule, enabled, minutes, severity FROM rule_settings "
                "WHERE site = %s AND room IS NULL", (site,))}
