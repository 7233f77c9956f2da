"""Applying the rules' intents to the alerts table; applying one twice changes nothing.

Called in the transaction that stores the events (``ingest.writer``) and in the rules
ticker's own (``ingest.rules_store``). Idempotent, so a restart can replay stored events
and re-apply what they ask for: one alert per ``episode_key`` (a unique key), one
``alert_triggers`` row per trigger, and a mark per episode for its escalation.

Lock order: the change lock (``ingest.alerts.lock_changes``) is taken before the first
alert row is read or written, and held to commit, as on every other path that changes
alerts; a batch without intents takes no lock at all (no round trip).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import psycopg

from core import metrics
from core.alerts import DEVICE_RULES, AlertChange
from core.intents import Clear, Escalate, Intent, Trigger
from ingest.alerts import announce, lock_changes

__all__ = ["UNACKED_AFTER", "apply_intents", "reannounce_unacknowledged"]

UNACKED_AFTER = timedelta(minutes=3)


def apply_intents(conn: psycopg.Connection, intents: Sequence[Intent]) -> int:
    """Apply ``intents`` in order; returns the number of alert changes. Caller commits.

    A run of Triggers of one resident episode (a burst of motion in a common room) is
    applied as its first Trigger and then one merge of the rest: one statement for their
    trigger rows, one count update, one change on the board, instead of one each."""
    if not intents:
        return 0
    lock_changes(conn)
    changes = 0
    at = 0
    while at < len(intents):
        intent = intents[at]
        at += 1
        if isinstance(intent, Trigger):
            changes += _trigger(conn, intent)
            run = _same_episode_run(intents, at, intent)
            if run:
                changes += _merge_many(conn, intent.episode_key, run)
                at += len(run)
        elif isinstance(intent, Escalate):
            changes += _escalate(conn, intent)
        else:
            changes += _clear(conn, intent)
    return changes


def _open_device_alert(conn: psycopg.Connection, t: Trigger) -> int | None:
    """The open alert of the same device fault under another episode key, if any.

    A device's outage is one alert however often the rules see it begin: after a restart
    the replay window may start inside the outage and give it another key (the board
    showed two open "sensor offline" alerts for one door)."""
    if t.rule not in DEVICE_RULES:
        return None
    row = conn.execute(
        "SELECT id FROM alerts WHERE site = %s AND device = %s AND rule = %s "
        "AND status <> 'resolved' AND episode_key <> %s ORDER BY id LIMIT 1",
        (t.site, t.device, t.rule.value, t.episode_key)).fetchone()
    return None if row is None else int(row[0])


def _trigger(conn: psycopg.Connection, t: Trigger) -> int:
    same_fault = _open_device_alert(conn, t)
    if same_fault is not None:
        fresh = conn.execute(
            "INSERT INTO alert_triggers (episode_key, event_key, ts) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING 1", (t.episode_key, t.event_key, t.ts)).fetchone()
        if fresh is None:
            return 0
        conn.execute("UPDATE alerts SET count = count + 1, last_ts = greatest(last_ts, %s) "
                     "WHERE id = %s", (t.ts, same_fault))
        announce(conn, same_fault, AlertChange.MERGED)
        return 1
    row = conn.execute(
        "INSERT INTO alerts (site, room, device, rule, severity, episode_key, late, "
        "first_ts, last_ts, detail, called_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
        "ON CONFLICT (episode_key) DO NOTHING RETURNING id",
        (t.site, t.room, t.device, t.rule.value, t.severity.value, t.episode_key, t.late,
         t.ts, t.ts, t.detail, t.ts if t.call else None)).fetchone()
    fresh = conn.execute(
        "INSERT INTO alert_triggers (episode_key, event_key, ts) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING 1", (t.episode_key, t.event_key, t.ts)).fetchone()
    if row is not None:
        announce(conn, int(row[0]), AlertChange.RAISED)
        metrics.ALERTS_RAISED.labels(rule=t.rule.value).inc()
        return 1
    if fresh is None:
        return 0  # replayed: this trigger was counted before
    # A merge may grow the situation: severity up (the building was left), or a call now
    # (an exit where the site says building exits always call). A resolved alert keeps
    # its outcome: the trigger is kept in its timeline, nothing is announced again.
    merged = conn.execute(
        "UPDATE alerts SET count = count + 1, last_ts = greatest(last_ts, %s), "
        f"severity = CASE WHEN {_RANK.format('%s')} > {_RANK.format('severity')} "
        "THEN %s ELSE severity END, "
        "called_at = CASE WHEN %s AND status <> 'resolved' THEN coalesce(called_at, %s) "
        "ELSE called_at END "
        "WHERE episode_key = %s RETURNING id, called_at IS NOT DISTINCT FROM %s AND %s",
        (t.ts, t.severity.value, t.severity.value, t.call, t.ts, t.episode_key, t.ts,
         t.call)).fetchone()
    if merged is None:
        return 0
    announce(conn, int(merged[0]), AlertChange.ESCALATED if merged[1] else AlertChange.MERGED)
    return 1


# Severity as a number in SQL, for "raise, never lower" on a merge.
_RANK = "(CASE {0} WHEN 'notice' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END)"


def _same_episode_run(intents: Sequence[Intent], at: int, first: Trigger) -> list[Trigger]:
    """The Triggers right after ``first`` (from ``at``) that merge into its resident
    episode and can only grow its count: the same severity as ``first``, and no call
    unless ``first`` made one (a merge that raises the severity or makes a call goes
    through ``_trigger``). Device faults are left to ``_trigger`` (they may merge under
    another key)."""
    if first.rule in DEVICE_RULES:
        return []
    run: list[Trigger] = []
    for intent in intents[at:]:
        if (not isinstance(intent, Trigger) or intent.episode_key != first.episode_key
                or intent.severity is not first.severity or (intent.call and not first.call)):
            break
        run.append(intent)
    return run


def _merge_many(conn: psycopg.Connection, episode_key: str, run: list[Trigger]) -> int:
    fresh = conn.execute(
        "WITH fresh AS (INSERT INTO alert_triggers (episode_key, event_key, ts) "
        "SELECT %s, k, t FROM unnest(%s::text[], %s::timestamptz[]) AS x(k, t) "
        "ON CONFLICT DO NOTHING RETURNING ts) SELECT count(*), max(ts) FROM fresh",
        (episode_key, [t.event_key for t in run], [t.ts for t in run])).fetchone()
    if fresh is None or not fresh[0]:
        return 0  # replayed: counted before
    merged = conn.execute(
        "UPDATE alerts SET count = count + %s, last_ts = greatest(last_ts, %s) "
        "WHERE episode_key = %s RETURNING id", (fresh[0], fresh[1], episode_key)).fetchone()
    if merged is None:
        return 0
    announce(conn, int(merged[0]), AlertChange.MERGED)
    return 1


def _escalate(conn: psycopg.Connection, e: Escalate) -> int:
    # Once per episode, marked like a trigger: a replay after a restart finds the mark.
    # (The flag alone would not do: an unacknowledged re-announcement also sets it.)
    fresh = conn.execute(
        "INSERT INTO alert_triggers (episode_key, event_key, ts) VALUES (%s, 'escalation', "
        "%s) ON CONFLICT DO NOTHING RETURNING 1", (e.episode_key, e.ts)).fetchone()
    if fresh is None:
        return 0
    # A quiet situation the rules closed as "returned by itself" and now, with evidence
    # that came late, find overdue is opened again as a call: it must reach a person.
    row = conn.execute(
        "UPDATE alerts SET escalated = true, escalated_at = %s, "
        "called_at = coalesce(called_at, %s), "
        "severity = CASE WHEN severity = 'normal' THEN 'high' ELSE severity END, "
        "status = CASE WHEN status = 'resolved' THEN 'open' ELSE status END, "
        "resolved_at = CASE WHEN status = 'resolved' THEN NULL ELSE resolved_at END, "
        "resolved_by = CASE WHEN status = 'resolved' THEN NULL ELSE resolved_by END, "
        "outcome = CASE WHEN status = 'resolved' THEN NULL ELSE outcome END "
        "WHERE episode_key = %s AND (status <> 'resolved' OR (resolved_by = 'system' "
        "AND outcome = 'cleared_automatically' AND called_at IS NULL)) RETURNING id",
        (e.ts, e.ts, e.episode_key)).fetchone()
    if row is None:
        return 0
    announce(conn, int(row[0]), AlertChange.ESCALATED)
    return 1


def _clear(conn: psycopg.Connection, c: Clear) -> int:
    if c.rule not in DEVICE_RULES:
        # A resident's situation that ended by itself ("returned by itself"): only while it
        # is still quiet. A call stays for staff to resolve with what they found.
        rows = conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = %s, resolved_by = 'system', "
            "outcome = 'cleared_automatically' WHERE episode_key = %s "
            "AND status = 'open' AND called_at IS NULL RETURNING id",
            (c.ts, c.episode_key)).fetchall()
    else:
        # By device and rule, not only by key: an offline episode that began before the
        # replay window has another key but is the same outage.
        rows = conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = %s, resolved_by = 'system', "
            "outcome = 'cleared_automatically' "
            "WHERE (episode_key = %s OR (site = %s AND device = %s AND rule = %s)) "
            "AND status <> 'resolved' AND first_ts <= %s RETURNING id",
            (c.ts, c.episode_key, c.site, c.device, c.rule.value, c.ts)).fetchall()
    for (alert_id,) in rows:
        announce(conn, int(alert_id), AlertChange.CLEARED)
    return len(rows)


def reannounce_unacknowledged(conn: psycopg.Connection,
                              clocks: Iterable[tuple[str, datetime]],
                              limit: int | None = None) -> int:
    """Re-announce, once, every open alert nobody has taken for ``UNACKED_AFTER`` on its
    site's clock (``clocks``: site and its time now), at most ``limit`` of them (the
    longest called first); returns the number of changes. Caller commits."""
    sites, nows = [], []
    for site, now in clocks:
        sites.append(site)
        nows.append(now)
    if not sites:
        return 0
    # Looked for without a lock first: usually there is none, and the writer should not
    # wait for the change lock once a second for nothing.
    # Only calls: a quiet situation is shown quietly and never re-announced.
    due = "a.status = 'open' AND a.reannounced_at IS NULL AND a.severity <> 'notice' " \
          "AND a.called_at IS NOT NULL AND a.called_at + %s <= c.now"
    clock = "unnest(%s::text[], %s::timestamptz[]) AS c(site, now)"
    found = conn.execute(f"SELECT 1 FROM alerts a JOIN {clock} ON a.site = c.site "
                         f"WHERE {due} LIMIT 1", (sites, nows, UNACKED_AFTER)).fetchone()
    if found is None:
        return 0
    lock_changes(conn)
    rows = conn.execute(
        f"UPDATE alerts a SET reannounced_at = d.now, escalated = true, "
        f"escalated_at = coalesce(a.escalated_at, d.now) "
        f"FROM (SELECT a.id, c.now FROM alerts a JOIN {clock} ON a.site = c.site "
        f"      WHERE {due} ORDER BY a.called_at, a.id LIMIT %s) d "
        f"WHERE a.id = d.id RETURNING a.id",
        (sites, nows, UNACKED_AFTER, limit)).fetchall()
    for (alert_id,) in rows:
        announce(conn, int(alert_id), AlertChange.REANNOUNCED)
    return len(rows)
