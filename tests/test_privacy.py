"""GDPR duties: a room's history erased when its resident moves out (no row of it left in any
table, its neighbours untouched), a user erased behind a pseudonym, resolve notes limited to
outcome codes unless the site allows free text, the audit log read and exported by admins."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from tests.support.cli import nattero_cli

# Tables that name a room but describe the building, not the resident: they stay.
BUILDING_TABLES = {"devices", "rule_settings"}


def _room_tables(db: psycopg.Connection) -> list[str]:
    """Every table of the schema with a ``site`` and a ``room`` column."""
    rows = db.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND column_name IN ('site', 'room') GROUP BY table_name "
        "HAVING count(*) = 2 ORDER BY 1").fetchall()
    return [name for (name,) in rows]


def _history(db: psycopg.Connection, site: str, room: str) -> dict[str, int]:
    """Rows of the room's history in every table that can hold it."""
    counts: dict[str, int] = {}
    for table in _room_tables(db):
        if table in BUILDING_TABLES:
            continue
        row = db.execute(f"SELECT count(*) FROM {table} WHERE site = %s AND room = %s",
                         (site, room)).fetchone()
        counts[table] = int(row[0]) if row else 0
    topic = f"nattero/v1/{site}/dev-{room}/%"
    for name, query, params in (
            ("dead_letters", "SELECT count(*) FROM dead_letters WHERE topic LIKE %s OR "
             "sender = %s", (topic, f"nattero/v1/{site}/dev-{room}")),
            ("dead_letter_minutes", "SELECT count(*) FROM dead_letter_minutes WHERE sender = %s",
             (f"nattero/v1/{site}/dev-{room}",)),
            ("alert_changes", "SELECT count(*) FROM alert_changes WHERE site = %s AND "
             "alert->>'room' = %s", (site, room)),
            ("audit_log", "SELECT count(*) FROM audit_log WHERE site = %s AND "
             "(target = %s OR detail->>'room' = %s)", (site, room, room))):
        row = db.execute(query, params).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


def _fill_room(db: psycopg.Connection, site: str, room: str,
               raise_alert: Callable[..., int]) -> int:
    """A night of history in ``room``: events, rollups, an alert handled and audited,
    dead letters from its device. Returns the alert id."""
    device = f"dev-{room}"
    night = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
            "VALUES (%s, %s, %s, %s, %s, 'door.open', now())",
            [(site, device, f"{room}-{i}", night + timedelta(minutes=i), room)
             for i in range(20)])
    for table in ("event_rollup", "event_rollup_1h"):
        db.execute(f"INSERT INTO {table} (site, bucket, room, kind, events) "
                   "VALUES (%s, %s, %s, 'door.open', 20)", (site, night, room))
    db.execute("INSERT INTO event_rollup_out (site, room, bucket, seconds) VALUES "
               "(%s, %s, %s, 600)", (site, room, night))
    alert = raise_alert(site, room)
    db.execute("INSERT INTO alert_triggers (episode_key, event_key, ts) SELECT episode_key, "
               "'k-' || id, now() FROM alerts WHERE id = %s", (alert,))
    db.execute("INSERT INTO audit_log (actor, action, site, target, detail) VALUES "
               "('nurse', 'alert.ack', %s, %s, %s)",
               (site, str(alert), json.dumps({"rule": "left_flat", "room": room})))
    sender = f"nattero/v1/{site}/{device}"
    db.execute("INSERT INTO dead_letters (received_at, topic, payload, reason, detail, sender) "
               "VALUES (now(), %s, 'x', 'bad_json', 'not JSON', %s)",
               (f"{sender}/events", sender))
    db.execute("INSERT INTO dead_letter_minutes (minute, sender, received, stored) VALUES "
               "(date_trunc('minute', now()), %s, 1, 1)", (sender,))
    db.execute("INSERT INTO rounds (site, scope, room, flats, walked_at) VALUES "
               "(%s, 'flat', %s, 1, %s)", (site, room, night))
    db.execute("INSERT INTO resident_outcomes (site, room, noted_on, self_reliance, "
               "quality_of_life, recorded_by) VALUES (%s, %s, %s, 3, 4, 'koordinator')",
               (site, room, night.date()))
    return alert


def test_erasing_a_room_leaves_no_row_of_its_history_in_any_table_and_spares_its_neighbour(
        http: httpx.Client, db: psycopg.Connection, site: str, make_user: Callable[..., object],
        headers_for: Callable[..., dict[str, str]], raise_alert: Callable[..., int],
        add_device: Callable[..., tuple[str, str]]) -> None:
    from core.events import DeviceKind

    add_device(site, "dev-f1", "f1", DeviceKind.DOOR)
    add_device(site, "dev-lounge", "lounge", DeviceKind.MOTION)
    _fill_room(db, site, "f1", raise_alert)
    _fill_room(db, site, "lounge", raise_alert)
    before = _history(db, site, "f1")
    # Every table that can hold a room's history holds some of it before.
    assert {"events", "event_rollup", "event_rollup_1h", "event_rollup_out", "alerts",
            "room_bases", "dead_letters", "dead_letter_minutes", "alert_changes",
            "audit_log", "rounds", "resident_outcomes"} <= {
                table for table, count in before.items() if count}
    neighbour = _history(db, site, "lounge")

    admin = headers_for(make_user("admin"))
    response = http.delete(f"/api/v1/sites/{site}/rooms/f1/history", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["deleted"]["events"] == 20

    assert _history(db, site, "f1") == dict.fromkeys(before, 0)
    assert _history(db, site, "lounge") == neighbour
    # The flat's round still counts in the baseline, without saying which flat it was.
    assert db.execute("SELECT count(*) FROM rounds WHERE site = %s AND room IS NULL "
                      "AND flats = 1", (site,)).fetchone() == (1,)
    # This site's (other tests share the database): an episode key begins with its site.
    assert db.execute("SELECT count(*) FROM alert_triggers t WHERE t.episode_key LIKE %s "
                      "AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.episode_key = "
                      "t.episode_key)", (f"{site}/%",)).fetchone() == (0,)
    # The room and its device stay for the next resident; the erasure itself is audited.
    assert db.execute("SELECT count(*) FROM devices WHERE site = %s AND room = 'f1'",
                      (site,)).fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM audit_log WHERE site = %s AND action = "
                      "'room.erase'", (site,)).fetchone() == (1,)
    missing = http.delete(f"/api/v1/sites/{site}/rooms/nowhere/history",
                          headers={**admin, "Accept-Language": "da"})
    assert missing.status_code == 404 and "findes ikke" in missing.json()["detail"]


def test_staff_cannot_erase_a_room(http: httpx.Client, site: str,
                                   make_user: Callable[..., object],
                                   headers_for: Callable[..., dict[str, str]]) -> None:
    nurse = headers_for(make_user("staff", site))
    assert http.delete(f"/api/v1/sites/{site}/rooms/f1/history",
                       headers=nurse).status_code == 403


def test_erase_room_on_the_command_line(db: psycopg.Connection, site: str,
                                        raise_alert: Callable[..., int],
                                        add_device: Callable[..., tuple[str, str]]) -> None:
    add_device(site, "dev-f1", "f1")
    _fill_room(db, site, "f1", raise_alert)
    done = nattero_cli("erase", "room", site, "f1", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"]["alerts"] == 1
    assert not any(_history(db, site, "f1").values())
    refused = nattero_cli("erase", "room", site, "nowhere", "--yes")
    assert refused.returncode == 1 and "nattero room list" in refused.stderr


def test_a_user_is_erased_only_once_disabled_and_the_audit_log_keeps_a_pseudonym(
        http: httpx.Client, db: psycopg.Connection, site: str,
        make_user: Callable[..., object], headers_for: Callable[..., dict[str, str]],
        raise_alert: Callable[..., int]) -> None:
    nurse = make_user("staff", site)
    name = nurse.username  # type: ignore[attr-defined]
    alert = raise_alert(site)
    nurse_headers = headers_for(nurse)
    assert http.post(f"/api/v1/alerts/{alert}/ack", headers=nurse_headers).status_code == 200
    assert http.post(f"/api/v1/alerts/{alert}/resolve", headers=nurse_headers,
                     json={"outcome": "help_given"}).status_code == 200
    db.execute("INSERT INTO resident_outcomes (site, room, noted_on, self_reliance, "
               "quality_of_life, recorded_by) VALUES (%s, 'f1', '2026-11-01', 3, 3, %s)",
               (site, name))
    admin = headers_for(make_user("admin"))

    active = http.post(f"/api/v1/users/{name}/erase", headers={**admin, "Accept-Language": "da"})
    assert active.status_code == 409 and "deaktivér" in active.json()["detail"]
    assert http.post(f"/api/v1/users/{name}/disable", headers=admin).status_code == 200
    erased = http.post(f"/api/v1/users/{name}/erase", headers=admin)
    assert erased.status_code == 200, erased.text
    pseudonym = erased.json()["pseudonym"]
    assert pseudonym.startswith("slettet-") and name not in pseudonym

    for table, column in (("users", "username"), ("audit_log", "actor"),
                          ("audit_log", "target"), ("alerts", "acknowledged_by"),
                          ("alerts", "resolved_by"), ("rule_settings", "updated_by"),
                          ("room_bases", "recorded_by"), ("resident_outcomes", "recorded_by")):
        row = db.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s",
                         (name,)).fetchone()
        assert row == (0,), f"{table}.{column} still names the user"
    assert db.execute("SELECT count(*) FROM alert_changes WHERE alert::text LIKE %s",
                      (f"%{name}%",)).fetchone() == (0,)
    # The trail stays whole: the same pseudonym acknowledged, resolved, logged in.
    actions = {a for (a,) in db.execute("SELECT action FROM audit_log WHERE actor = %s",
                                        (pseudonym,)).fetchall()}
    assert {"alert.ack", "alert.resolve"} <= actions
    assert db.execute("SELECT acknowledged_by, resolved_by FROM alerts WHERE id = %s",
                      (alert,)).fetchone() == (pseudonym, pseudonym)
    assert http.post(f"/api/v1/users/{name}/erase", headers=admin).status_code == 404


def test_resolve_notes_are_outcome_codes_only_until_the_site_allows_free_text(
        http: httpx.Client, db: psycopg.Connection, site: str,
        make_user: Callable[..., object], headers_for: Callable[..., dict[str, str]],
        raise_alert: Callable[..., int]) -> None:
    nurse = headers_for(make_user("staff", site))
    admin = headers_for(make_user("admin"))
    sites = {s["id"]: s for s in http.get("/api/v1/sites", headers=admin).json()}
    assert sites[site]["resolve_notes"] is False

    alert = raise_alert(site)
    refused = http.post(f"/api/v1/alerts/{alert}/resolve",
                        headers={**nurse, "Accept-Language": "da"},
                        json={"outcome": "help_given", "note": "fulgt tilbage"})
    assert refused.status_code == 422
    assert "fritekst" in refused.json()["detail"]
    assert db.execute("SELECT status FROM alerts WHERE id = %s", (alert,)).fetchone() == ("open",)
    assert http.post(f"/api/v1/alerts/{alert}/resolve", headers=nurse,
                     json={"outcome": "help_given"}).status_code == 200

    allowed = http.put(f"/api/v1/sites/{site}/resolve-notes", headers=admin,
                       json={"allowed": True})
    assert allowed.status_code == 200 and allowed.json()["resolve_notes"] is True
    assert http.put(f"/api/v1/sites/{site}/resolve-notes", headers=nurse,
                    json={"allowed": False}).status_code == 403
    second = raise_alert(site)
    noted = http.post(f"/api/v1/alerts/{second}/resolve", headers=nurse,
                      json={"outcome": "no_action_needed", "note": "sov igen"})
    assert noted.status_code == 200 and noted.json()["outcome_note"] == "sov igen"

    done = nattero_cli("site", "notes", site, "--forbid")
    assert done.returncode == 0, done.stderr
    assert db.execute("SELECT resolve_notes FROM sites WHERE id = %s",
                      (site,)).fetchone() == (False,)


def test_admins_read_and_export_the_audit_log_as_json_and_csv(
        http: httpx.Client, db: psycopg.Connection, site: str,
        make_user: Callable[..., object], headers_for: Callable[..., dict[str, str]],
        raise_alert: Callable[..., int]) -> None:
    nurse = make_user("staff", site)
    alert = raise_alert(site)
    assert http.post(f"/api/v1/alerts/{alert}/ack",
                     headers=headers_for(nurse)).status_code == 200
    admin_account = make_user("admin")
    admin = headers_for(admin_account)
    name = nurse.username  # type: ignore[attr-defined]

    rows = http.get("/api/v1/audit", headers=admin,
                    params={"actor": name, "action": "alert."}).json()
    assert [(r["action"], r["site"], r["target"]) for r in rows] == [
        ("alert.ack", site, str(alert))]
    exported = http.get("/api/v1/audit", headers=admin,
                        params={"site": site, "format": "csv"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert {"id", "at", "actor", "action", "site", "target", "detail"} == set(table[0])
    assert any(r["actor"] == name and r["action"] == "alert.ack" for r in table)
    assert json.loads(next(r for r in table if r["action"] == "alert.ack")["detail"])["room"] \
        == "f1"
    # Reading the log is itself logged; staff may not read it.
    assert db.execute("SELECT count(*) FROM audit_log WHERE actor = %s AND action = "
                      "'audit.export'", (admin_account.username,)).fetchone() == (2,)  # type: ignore[attr-defined]
    assert http.get("/api/v1/audit", headers=headers_for(nurse)).status_code == 403

    done = nattero_cli("audit", "export", "--format", "json", "--site", site,
                       "--action", "alert.ack")
    assert done.returncode == 0, done.stderr
    assert [(r["actor"], r["target"]) for r in json.loads(done.stdout)] == [(name, str(alert))]
    listed = nattero_cli("audit", "list", "--actor", name, "--json")
    assert listed.returncode == 0, listed.stderr
    # Oldest first: the nurse logged in, acknowledged, logged in again (the 403 above).
    assert [r["action"] for r in json.loads(listed.stdout)] == ["login", "alert.ack", "login"]


@pytest.mark.parametrize("moment", ["yesterday"])
def test_audit_export_refuses_a_time_it_cannot_read(moment: str) -> None:
    done = nattero_cli("audit", "export", "--from", moment)
    assert done.returncode == 2 and "2026-11-23" in done.stderr


def test_erase_user_on_the_command_line_refuses_an_active_account_then_erases_it(
        db: psycopg.Connection, site: str, make_user: Callable[..., object]) -> None:
    name = make_user("staff", site).username  # type: ignore[attr-defined]
    db.execute("INSERT INTO audit_log (actor, action) VALUES (%s, 'login')", (name,))
    active = nattero_cli("erase", "user", name, "--yes")
    assert active.returncode == 1 and f"nattero user disable {name}" in active.stderr
    assert nattero_cli("user", "disable", name).returncode == 0
    done = nattero_cli("erase", "user", name, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    pseudonym = json.loads(done.stdout)["pseudonym"]
    assert db.execute("SELECT count(*) FROM audit_log WHERE actor = %s OR target = %s",
                      (name, name)).fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM audit_log WHERE actor = %s AND action = 'login'",
                      (pseudonym,)).fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM users WHERE username = %s",
                      (name,)).fetchone() == (0,)
