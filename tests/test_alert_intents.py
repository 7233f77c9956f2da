"""Intents applied to the real store: one open alert per device fault, and an escalation
time on every escalated alert."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg

from core.alerts import RuleName, Severity
from core.intents import Clear, Escalate, Trigger
from core.settings import StackInfo
from ingest.alert_intents import UNACKED_AFTER, apply_intents, reannounce_unacknowledged
from ingest.rules_store import REANNOUNCE_CHUNK, RulesStore

NIGHT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def trigger(site: str, rule: RuleName, key: str, ts: datetime, room: str = "f1",
            device: str = "f1-door", call: bool = False,
            severity: Severity = Severity.NORMAL) -> Trigger:
    return Trigger(site=site, room=room, device=device, rule=rule, severity=severity,
                   ts=ts, episode_key=f"{site}/{room}/{rule}/{device}/{key}",
                   event_key=f"{device}/{key}", late=False, detail="test", call=call)


def open_alerts(db: psycopg.Connection, site: str, rule: RuleName) -> list[tuple[int, int]]:
    return db.execute("SELECT id, count FROM alerts WHERE site = %s AND rule = %s "
                      "AND status <> 'resolved' ORDER BY id", (site, rule.value)).fetchall()


def test_a_device_fault_seen_beginning_twice_is_one_open_alert(
        site: str, migrated: StackInfo) -> None:
    """After a restart the replay may begin inside an outage and give it another episode
    key; the board showed two open "sensor offline" alerts for one door."""
    with psycopg.connect(migrated.database_url) as conn:
        apply_intents(conn, [trigger(site, RuleName.SENSOR_OFFLINE, "a", NIGHT)])
        conn.commit()
        later = trigger(site, RuleName.SENSOR_OFFLINE, "b", NIGHT + timedelta(minutes=7))
        apply_intents(conn, [later])
        apply_intents(conn, [later])  # replayed: counted once
        conn.commit()
        assert open_alerts(conn, site, RuleName.SENSOR_OFFLINE) == [
            (open_alerts(conn, site, RuleName.SENSOR_OFFLINE)[0][0], 2)]
        # Another device's fault stays its own alert.
        apply_intents(conn, [trigger(site, RuleName.SENSOR_OFFLINE, "c", NIGHT,
                                     device="f1-bed")])
        conn.commit()
        assert len(open_alerts(conn, site, RuleName.SENSOR_OFFLINE)) == 2


def test_a_resident_alert_of_a_new_episode_is_not_merged_into_the_open_one(
        site: str, migrated: StackInfo) -> None:
    with psycopg.connect(migrated.database_url) as conn:
        apply_intents(conn, [trigger(site, RuleName.LEFT_FLAT, "a", NIGHT),
                             trigger(site, RuleName.LEFT_FLAT, "b", NIGHT + timedelta(hours=1))])
        conn.commit()
        assert [count for _, count in open_alerts(conn, site, RuleName.LEFT_FLAT)] == [1, 1]


def test_an_unacknowledged_alert_re_announced_is_escalated_with_its_time(
        site: str, migrated: StackInfo) -> None:
    with psycopg.connect(migrated.database_url) as conn:
        apply_intents(conn, [trigger(site, RuleName.LEFT_FLAT, "a", NIGHT, call=True)])
        conn.commit()
        now = NIGHT + UNACKED_AFTER + timedelta(seconds=1)
        assert reannounce_unacknowledged(conn, [(site, now)]) == 1
        conn.commit()
        row = conn.execute("SELECT escalated, escalated_at, reannounced_at FROM alerts "
                           "WHERE site = %s", (site,)).fetchone()
    assert row == (True, now, now)


def test_a_run_of_merges_into_one_episode_is_one_change_and_counts_each_trigger_once(
        site: str, migrated: StackInfo) -> None:
    """A burst of motion in a common room: one change on the board for the run, not one
    per motion (20,000 changes kept the writer busy for most of a minute)."""
    episode = f"{site}/lounge/common_motion/{NIGHT.isoformat()}"
    burst = [Trigger(site=site, room="lounge", device=f"pir-{n % 5}",
                     rule=RuleName.COMMON_MOTION, severity=Severity.NORMAL,
                     ts=NIGHT + timedelta(seconds=n), episode_key=episode,
                     event_key=f"{site}/pir-{n % 5}/{n}", late=False, detail="test")
             for n in range(300)]
    with psycopg.connect(migrated.database_url) as conn:
        assert apply_intents(conn, burst[:100]) == 2  # raised, then the other 99 merged
        assert apply_intents(conn, burst) == 1  # 200 more merged; 100 seen before
        assert apply_intents(conn, burst) == 0  # replayed after a restart: nothing new
        conn.commit()
        row = conn.execute("SELECT count, last_ts FROM alerts WHERE episode_key = %s",
                           (episode,)).fetchone()
        assert row == (300, NIGHT + timedelta(seconds=299))
        changes = conn.execute(
            "SELECT c.change FROM alert_changes c JOIN alerts a ON a.id = c.alert_id "
            "WHERE a.episode_key = %s ORDER BY c.seq", (episode,)).fetchall()
        assert [c for (c,) in changes] == ["raised", "merged", "merged"]


def test_a_quiet_situation_is_never_reannounced_but_a_call_is_from_its_call_time(
        site: str, migrated: StackInfo) -> None:
    with psycopg.connect(migrated.database_url) as conn:
        apply_intents(conn, [trigger(site, RuleName.LEFT_FLAT, "a", NIGHT)])
        conn.commit()
        later = NIGHT + timedelta(minutes=10)
        assert reannounce_unacknowledged(conn, [(site, later)]) == 0
        # The outing passes a building exit where exits always call: a call, and louder.
        exit_trigger = replace(trigger(site, RuleName.LEFT_FLAT, "a", later, call=True,
                                       severity=Severity.HIGH), event_key="exit/a")
        assert apply_intents(conn, [exit_trigger]) == 1
        conn.commit()
        row = conn.execute("SELECT called_at, severity FROM alerts WHERE site = %s",
                           (site,)).fetchone()
        assert row == (later, "high")
        assert reannounce_unacknowledged(conn, [(site, later + timedelta(minutes=2))]) == 0
        assert reannounce_unacknowledged(
            conn, [(site, later + UNACKED_AFTER + timedelta(seconds=1))]) == 1
        conn.commit()
        changes = [r[0] for r in conn.execute(
            "SELECT c.change FROM alert_changes c JOIN alerts a ON a.id = c.alert_id "
            "WHERE a.site = %s ORDER BY c.seq", (site,))]
    assert changes == ["raised", "escalated", "reannounced"]


def test_a_quiet_situation_that_ended_by_itself_is_cleared_but_a_call_stays(
        site: str, migrated: StackInfo) -> None:
    with psycopg.connect(migrated.database_url) as conn:
        quiet = trigger(site, RuleName.LEFT_FLAT, "q", NIGHT)
        called = trigger(site, RuleName.LEFT_FLAT, "c", NIGHT, room="f2", device="f2-door",
                         call=True)
        apply_intents(conn, [quiet, called])
        apply_intents(conn, [Clear(site, r.room, r.device, r.rule, r.episode_key,
                                   NIGHT + timedelta(minutes=5)) for r in (quiet, called)])
        conn.commit()
        rows = conn.execute("SELECT room, status, outcome FROM alerts WHERE site = %s "
                            "ORDER BY room", (site,)).fetchall()
    assert rows == [("f1", "resolved", "cleared_automatically"), ("f2", "open", None)]


def test_a_situation_closed_by_itself_that_the_rules_escalate_after_all_is_a_call_again(
        site: str, migrated: StackInfo) -> None:
    # Late evidence (a message that came after others) can make the rules read an outing
    # they closed as "returned by itself" as still going, and escalate it: it must reach
    # a person, not stay resolved by the system.
    with psycopg.connect(migrated.database_url) as conn:
        quiet = trigger(site, RuleName.LEFT_FLAT, "late", NIGHT)
        apply_intents(conn, [quiet])
        apply_intents(conn, [Clear(site, quiet.room, quiet.device, quiet.rule,
                                   quiet.episode_key, NIGHT + timedelta(minutes=1))])
        apply_intents(conn, [Escalate(site, quiet.room, quiet.rule, quiet.episode_key,
                                      NIGHT + timedelta(minutes=15), late=True)])
        conn.commit()
        row = conn.execute("SELECT status, outcome, resolved_by, called_at, escalated "
                           "FROM alerts WHERE site = %s", (site,)).fetchone()
        changes = [r[0] for r in conn.execute(
            "SELECT c.change FROM alert_changes c JOIN alerts a ON a.id = c.alert_id "
            "WHERE a.site = %s ORDER BY c.seq", (site,))]
    assert row == ("open", None, None, NIGHT + timedelta(minutes=15), True)
    assert changes[-1] == "escalated"


def test_a_call_inside_a_run_of_merges_is_not_swallowed_by_the_batch(
        site: str, migrated: StackInfo) -> None:
    """The batched merge only counts; a merge that raises the severity or makes a call
    (the outing passed an exit that always calls) must still do so in the same batch."""
    plain = [replace(trigger(site, RuleName.LEFT_FLAT, "a", NIGHT + timedelta(seconds=n)),
                     event_key=f"corridor/{n}") for n in range(1, 4)]
    exit_trigger = replace(trigger(site, RuleName.LEFT_FLAT, "a", NIGHT + timedelta(minutes=2),
                                   call=True, severity=Severity.HIGH), event_key="exit/a")
    with psycopg.connect(migrated.database_url) as conn:
        apply_intents(conn, [trigger(site, RuleName.LEFT_FLAT, "a", NIGHT), *plain,
                             exit_trigger, *plain])
        conn.commit()
        row = conn.execute("SELECT called_at, severity, count FROM alerts WHERE site = %s",
                           (site,)).fetchone()
    assert row == (NIGHT + timedelta(minutes=2), "high", 5)


def test_many_alerts_due_at_once_are_reannounced_in_short_transactions_oldest_first(
        site: str, migrated: StackInfo) -> None:
    """Two hundred alerts due at once (every site's after a restart) were re-announced in
    one transaction holding the change lock: an exit opening meanwhile reached the board
    two seconds late. Now at most ``REANNOUNCE_CHUNK`` a transaction, the longest waiting
    first, until none is left."""
    due = 2 * REANNOUNCE_CHUNK + 5
    with psycopg.connect(migrated.database_url) as conn:
        apply_intents(conn, [trigger(site, RuleName.LEFT_FLAT, f"k{n:02d}",
                                     NIGHT + timedelta(seconds=n), call=True)
                             for n in range(due)])
        conn.commit()
        now = NIGHT + UNACKED_AFTER + timedelta(minutes=1)
        assert reannounce_unacknowledged(conn, [(site, now)], limit=3) == 3
        first = conn.execute("SELECT episode_key FROM alerts WHERE site = %s "
                             "AND reannounced_at IS NOT NULL ORDER BY 1", (site,)).fetchall()
        assert [key.rsplit("/", 1)[1] for (key,) in first] == ["k00", "k01", "k02"]
        conn.rollback()
    store = RulesStore(migrated.database_url)
    try:
        assert store.reannounce([(site, now)]) == due
        assert store.reannounce([(site, now)]) == 0  # once each
    finally:
        store.close()
    with psycopg.connect(migrated.database_url) as conn:
        transactions = conn.execute(
            "SELECT count(DISTINCT c.xmin::text) FROM alert_changes c "
            "JOIN alerts a ON a.id = c.alert_id "
            "WHERE a.site = %s AND c.change = 'reannounced'", (site,)).fetchone()
    assert transactions == (3,)  # 10 + 10 + 5
