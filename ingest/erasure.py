"""Erasure (GDPR art. 17): a room's history when its resident moves out, and a user account.

``erase_room`` deletes every row that records what happened in one room: its raw events, the
15-minute and hourly rollups and time-out-of-flat rows, its alerts (with their change stream
and triggers), the dead letters its devices sent and their per-minute counts, the room's
monitoring bases (the consent or decision was the old resident's) and the coordinator's
resident-outcome notes. The room, its devices and its rule settings stay: they describe the
building, not the person, and the next resident's flat is monitored from its own new basis.
Rounds staff logged for it stay too, counted in the baseline, but lose the room. Audit rows
about the room keep who did what and when, but lose the room (``target`` and
``detail.room``).

``erase_user`` removes a *disabled* account and puts one random pseudonym
(``slettet-<hex>``) wherever the login name was written: the audit log (actor, target), the
alerts it acknowledged or resolved (and their change stream), rule settings, bases and
resident-outcome notes it recorded. The audit trail stays whole (every action of that
person has the same pseudonym), and nothing links the pseudonym back to the name.

Both run in the caller's transaction and write their own audit row; neither ever touches
another room or another account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from core.errors import NatteroError

__all__ = ["ErasureError", "RoomErasure", "UserErasure", "erase_room", "erase_user"]


class ErasureError(NatteroError, ValueError):
    """Nothing was erased; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RoomErasure:
    site: str
    room: str
    deleted: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {"site": self.site, "room": self.room, "deleted": dict(self.deleted)}


@dataclass(frozen=True, slots=True)
class UserErasure:
    pseudonym: str
    rewritten: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {"pseudonym": self.pseudonym, "rewritten": dict(self.rewritten)}


def erase_room(conn: psycopg.Connection, site: str, room: str, actor: str) -> RoomErasure:
    """Delete every row of ``room``'s history on ``site``; returns the rows deleted per table."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM rooms WHERE site = %s AND id = %s",
                        (site, room)).fetchone() is None:
            raise ErasureError(f"room '{room}' does not exist on site '{site}'; list the "
                               f"rooms with: nattero room list {site}")
        devices = conn.execute(
            "SELECT id, external_id, source FROM devices WHERE site = %s AND room = %s",
            (site, room)).fetchall()
        senders = [f"nattero/v1/{site}/{device}" for device, _ext, _src in devices]
        # Bridged devices are charged by their bridge topic: zigbee2mqtt/{name},
        # application/{app}/device/{dev_eui}.
        patterns = [f"{sender}/%" for sender in senders]
        for _device, external_id, source in devices:
            if external_id and source == "zigbee2mqtt":
                senders.append(f"zigbee2mqtt/{external_id}")
                patterns.append(f"zigbee2mqtt/{external_id}%")
            elif external_id and source == "chirpstack":
                patterns.append(f"application/%/device/{external_id}/%")
        deleted: dict[str, int] = {}
        row = conn.execute(
            "WITH gone AS (DELETE FROM alerts WHERE site = %s AND room = %s "
            "RETURNING id, episode_key), "
            "triggers AS (DELETE FROM alert_triggers t USING gone "
            "WHERE t.episode_key = gone.episode_key RETURNING 1) "
            "SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM triggers)",
            (site, room)).fetchone()
        deleted["alerts"], deleted["alert_triggers"] = (int(row[0]), int(row[1])) if row \
            else (0, 0)
        # Change rows of those alerts went with them (ON DELETE CASCADE); a snapshot that
        # names the room under another alert id (none today) would go here.
        deleted["alert_changes"] = conn.execute(
            "DELETE FROM alert_changes WHERE site = %s AND alert->>'room' = %s",
            (site, room)).rowcount
        # The coordinator's outcome notes describe the old resident (migration 0013).
        for table in ("events", "event_rollup", "event_rollup_1h", "event_rollup_out",
                      "room_bases", "resident_outcomes", "staff_presence"):
            deleted[table] = conn.execute(
                f"DELETE FROM {table} WHERE site = %s AND room = %s",
                (site, room)).rowcount
        deleted["dead_letters"] = conn.execute(
            "DELETE FROM dead_letters WHERE sender = ANY(%s) OR topic LIKE ANY(%s)",
            (senders, patterns)).rowcount if devices else 0
        deleted["dead_letter_minutes"] = conn.execute(
            "DELETE FROM dead_letter_minutes WHERE sender = ANY(%s) OR sender LIKE ANY(%s)",
            (senders, patterns)).rowcount if devices else 0
        # Rounds stay, counted in the baseline (the staff's work), but no longer say which
        # flat was checked when.
        deleted["rounds_unlinked"] = conn.execute(
            "UPDATE rounds SET room = NULL WHERE site = %s AND room = %s", (site, room)).rowcount
        conn.execute("UPDATE devices SET battery = NULL WHERE site = %s AND room = %s",
                     (site, room))
        deleted["audit_log_rows_unlinked"] = conn.execute(
            "UPDATE audit_log SET target = CASE WHEN target = %(room)s THEN NULL "
            "ELSE target END, detail = detail - 'room' "
            "WHERE site = %(site)s AND (target = %(room)s OR detail->>'room' = %(room)s)",
            {"site": site, "room": room}).rowcount
        conn.execute("INSERT INTO audit_log (actor, action, site, target, detail) "
                     "VALUES (%s, 'room.erase', %s, NULL, %s)",
                     (actor, site, Jsonb({"deleted": deleted})))
    return RoomErasure(site, room, deleted)


def erase_user(conn: psycopg.Connection, username: str, actor: str) -> UserErasure:
    """Delete a disabled account and pseudonymise every place its login name was written."""
    with conn.transaction():
        row = conn.execute("SELECT disabled FROM users WHERE username = %s FOR UPDATE",
                           (username,)).fetchone()
        if row is None:
            raise ErasureError(f"there is no user '{username}'; list them with: "
                               "nattero user list")
        if not row[0]:
            raise ErasureError(f"user '{username}' is still active; disable it first with: "
                               f"nattero user disable {username}")
        pseudonym = f"slettet-{secrets.token_hex(6)}"
        rewritten: dict[str, int] = {}
        conn.execute("DELETE FROM users WHERE username = %s", (username,))
        rewritten["audit_log"] = conn.execute(
            "UPDATE audit_log SET actor = CASE WHEN actor = %(u)s THEN %(p)s ELSE actor END, "
            "target = CASE WHEN target = %(u)s THEN %(p)s ELSE target END "
            "WHERE actor = %(u)s OR target = %(u)s", {"u": username, "p": pseudonym}).rowcount
        rewritten["alerts"] = conn.execute(
            "UPDATE alerts SET "
            "acknowledged_by = CASE WHEN acknowledged_by = %(u)s THEN %(p)s "
            "ELSE acknowledged_by END, "
            "resolved_by = CASE WHEN resolved_by = %(u)s THEN %(p)s ELSE resolved_by END "
            "WHERE acknowledged_by = %(u)s OR resolved_by = %(u)s",
            {"u": username, "p": pseudonym}).rowcount
        rewritten["alert_changes"] = conn.execute(
            "UPDATE alert_changes SET alert = alert "
            "|| CASE WHEN alert->>'acknowledged_by' = %(u)s "
            "THEN jsonb_build_object('acknowledged_by', %(p)s::text) ELSE '{}'::jsonb END "
            "|| CASE WHEN alert->>'resolved_by' = %(u)s "
            "THEN jsonb_build_object('resolved_by', %(p)s::text) ELSE '{}'::jsonb END "
            "WHERE alert->>'acknowledged_by' = %(u)s OR alert->>'resolved_by' = %(u)s",
            {"u": username, "p": pseudonym}).rowcount
        rewritten["rule_settings"] = conn.execute(
            "UPDATE rule_settings SET updated_by = %s WHERE updated_by = %s",
            (pseudonym, username)).rowcount
        rewritten["room_bases"] = conn.execute(
            "UPDATE room_bases SET recorded_by = %s WHERE recorded_by = %s",
            (pseudonym, username)).rowcount
        rewritten["resident_outcomes"] = conn.execute(
            "UPDATE resident_outcomes SET recorded_by = %s WHERE recorded_by = %s",
            (pseudonym, username)).rowcount
        conn.execute("INSERT INTO audit_log (actor, action, site, target, detail) "
                     "VALUES (%s, 'user.erase', NULL, %s, %s)",
                     (actor, pseudonym, Jsonb({"rewritten": rewritten})))
    return UserErasure(pseudonym, rewritten)
