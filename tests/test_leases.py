"""Several pipeline workers share the sites through leases (issue 18 §2): each site owned
by exactly one worker, and a stale owner's writes refused inside its own transaction.

Lease times are on the database's clock, so the takeover tests wait (bounded) for a short
lease to run out rather than inject a clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.alerts import RuleName, Severity
from core.events import DeviceKind, Event, EventKind
from core.intents import Intent, Trigger
from core.settings import Settings, StackInfo
from ingest import leases
from ingest.leases import Lease, LeaseFence, LeaseLost
from ingest.rules_store import RulesStore
from ingest.writer import Batch, EventWriter, StoredEventRow, StoreUnavailable
from nattero.lease_keeper import LeaseKeeper, SiteService
from tests.support import REPO
from tests.support.devices import DeviceClient, event_payload
from tests.support.store import unique
from tests.support.waiting import wait_until

NIGHT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 02:00 in Copenhagen
SHORT = timedelta(milliseconds=300)
LONG = timedelta(seconds=60)


def expire_soon(db: psycopg.Connection, lease: Lease) -> None:
    """Wait until ``lease`` (taken with a short ttl) has run out on the database's clock."""
    assert wait_until(lambda: db.execute(
        "SELECT expires_at <= now() FROM site_leases WHERE site = %s",
        (lease.site,)).fetchone() == (True,), timeout=5)


def taken_over(db: psycopg.Connection, site: str) -> tuple[Lease, Lease]:
    """Worker A's lease of ``site``, expired and taken over by worker B (A never knew)."""
    a = leases.acquire(db, site, "worker-a", SHORT)
    assert a is not None
    expire_soon(db, a)
    b = leases.acquire(db, site, "worker-b", LONG)
    assert b is not None
    return a, b


def door_open(site: str, device: str, minute: int) -> Event:
    return Event(site, device, unique("e"), NIGHT + timedelta(minutes=minute),
                 EventKind.DOOR_OPEN)


def trigger_for(site: str, event: Event) -> Trigger:
    return Trigger(site, "f1", event.device, RuleName.LEFT_FLAT, Severity.NORMAL, event.ts,
                   f"{site}/f1/left_flat/{event.ts.isoformat()}",
                   f"{site}/{event.device}/{event.id}", False, "test")


def stored(db: psycopg.Connection, site: str) -> tuple[int, int]:
    events = db.execute("SELECT count(*) FROM events WHERE site = %s", (site,)).fetchone()
    alerts = db.execute("SELECT count(*) FROM alerts WHERE site = %s", (site,)).fetchone()
    assert events is not None and alerts is not None
    return int(events[0]), int(alerts[0])


class IdleSite:
    """A site's service that does nothing (the keeper's leases are what is tested)."""

    fatal = None
    connected = True

    def stop(self) -> None:
        pass


# -- the lease table ----------------------------------------------------------------------

def test_two_workers_racing_for_a_site_never_both_own_it(db, site, migrated) -> None:
    def race(owner: str, start: threading.Barrier, won: dict[str, Lease | None]) -> None:
        with psycopg.connect(migrated.database_url, autocommit=True) as conn:
            start.wait()
            won[owner] = leases.acquire(conn, site, owner, LONG)

    for _ in range(10):
        db.execute("DELETE FROM site_leases WHERE site = %s", (site,))
        start = threading.Barrier(2)
        won: dict[str, Lease | None] = {}
        threads = [threading.Thread(target=race, args=(owner, start, won))
                   for owner in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [lease for lease in won.values() if lease is not None]
        assert len(winners) == 1
        # While the winner's lease holds, the other can neither take nor renew it.
        loser = "b" if winners[0].owner == "a" else "a"
        assert leases.acquire(db, site, loser, LONG) is None
        assert leases.renew(db, Lease(site, loser, winners[0].token, winners[0].expires_at),
                            LONG) is None
        assert leases.renew(db, winners[0], LONG) is not None


def test_takeover_after_expiry_draws_a_larger_token_and_the_old_owner_cannot_renew(
        db, site) -> None:
    a, b = taken_over(db, site)
    assert b.token > a.token
    assert leases.renew(db, a, LONG) is None  # A lost it, even though nobody told A
    assert leases.renew(db, b, LONG) is not None
    # A released lease is free at once, with a new token again.
    leases.release(db, b)
    c = leases.acquire(db, site, "worker-a", LONG)
    assert c is not None and c.token > b.token


def test_renewing_all_of_a_workers_leases_at_once_leaves_out_the_one_taken_over(
        db, migrated) -> None:
    import provisioning

    mine, lost = unique("ls"), unique("ls")
    for site_id in (mine, lost):
        provisioning.add_site(Settings(), site_id, "Fornyet")
    kept = leases.acquire(db, mine, "worker-a", LONG)
    assert kept is not None
    a, b = taken_over(db, lost)
    renewed = leases.renew_all(db, [kept, a], LONG)
    assert set(renewed) == {mine}  # the site taken over is missing: lost
    assert renewed[mine].token == kept.token and renewed[mine].expires_at > kept.expires_at
    assert leases.renew(db, b, LONG) is not None  # the new owner's lease is untouched
    with pytest.raises(ValueError):  # one worker renews its own leases only
        leases.renew_all(db, [renewed[mine], b], LONG)


def test_keepers_sharing_sites_each_own_a_disjoint_part(migrated, db) -> None:
    import provisioning

    sites = [unique("ls") for _ in range(4)]
    for site_id in sites:
        provisioning.add_site(Settings(), site_id, "Delt")
    started: list[tuple[str, str]] = []

    class Idle:
        fatal = None
        connected = True

        def __init__(self, owner: str, site_id: str) -> None:
            started.append((owner, site_id))

        def stop(self) -> None:
            pass

    def keeper(owner: str) -> LeaseKeeper:
        settings = Settings(gateway_sites=sites, lease_max_sites=2, lease_ttl_s=30,
                            lease_renew_s=1)
        return LeaseKeeper(settings, owner=owner,
                           start_site=lambda s, lease, fence: Idle(owner, lease.site))

    one, two = keeper(unique("w")), keeper(unique("w"))
    for _ in range(3):
        one.run_once()
        two.run_once()
    assert set(one.owned()).isdisjoint(two.owned())
    assert set(one.owned()) | set(two.owned()) == set(sites)
    assert sorted(site_id for _, site_id in started) == sorted(sites)  # each started once
    one.stop()
    two.stop()


def test_a_keeper_starts_the_sites_it_takes_together_and_releases_one_that_cannot_start(
        migrated, db) -> None:
    """A takeover of 50 sites started them one after another, each waiting for its replay:
    half a minute. The starts of a round now overlap (they would wait for each other at
    the barrier forever, one at a time); a site whose start finds the store away is
    released for another worker, the others are served."""
    import provisioning

    sites = [unique("lp") for _ in range(4)]
    for site_id in sites:
        provisioning.add_site(Settings(), site_id, "Samtidig")
    together = threading.Barrier(len(sites), timeout=10)

    def start(settings: Settings, lease: Lease, fence: LeaseFence) -> SiteService:
        together.wait()  # every site of the round is starting at this moment
        if lease.site == sites[0]:
            raise StoreUnavailable("the store went away during this site's replay")
        return IdleSite()

    keeper = LeaseKeeper(Settings(gateway_sites=sites, lease_ttl_s=30, lease_renew_s=1),
                         owner=unique("w"), start_site=start)
    try:
        keeper.run_once()
        assert sorted(keeper.owned()) == sorted(sites[1:])
        assert keeper.fatal is None
        assert leases.acquire(db, sites[0], unique("w"), LONG) is not None  # released
    finally:
        keeper.stop()


def test_keeper_sharing_all_sites_takes_free_ones_up_to_its_limit_and_releases_on_stop(
        migrated, db) -> None:
    import provisioning

    for _ in range(2):  # at least two free sites, whatever else the store holds
        provisioning.add_site(Settings(), unique("la"), "Alle")
    started: list[str] = []

    def start(settings: Settings, lease: Lease, fence: LeaseFence) -> SiteService:
        started.append(lease.site)
        return IdleSite()

    keeper = LeaseKeeper(Settings(gateway_sites=[], lease_max_sites=2, lease_ttl_s=30,
                                  lease_renew_s=1), owner=unique("w"), start_site=start)
    keeper.run_once()
    owned = keeper.owned()
    assert len(owned) == 2 and sorted(owned) == sorted(started)
    assert set(owned) <= set(leases.all_sites(db))
    keeper.stop()
    live = {lease.site for lease in leases.leases(db) if lease.site in owned
            and db.execute("SELECT %s > now()", (lease.expires_at,)).fetchone() == (True,)}
    assert live == set()  # released: free for another worker at once


# -- fencing inside the writing transaction -----------------------------------------------

def test_stale_writer_commit_is_refused_and_nothing_of_it_is_stored(
        db, site, add_device, migrated) -> None:
    add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    a, b = taken_over(db, site)

    def raise_alert(rows: list[StoredEventRow], statuses: object,
                    layouts: object) -> list[Intent]:
        return [trigger_for(site, row.event) for row in rows]

    stale = EventWriter(migrated.database_url, [raise_alert],
                        fence=LeaseFence({site: a.token}))
    try:
        with pytest.raises(LeaseLost, match="taken over"):
            stale.write(Batch(events=[(door_open(site, "f1-door", 0), NIGHT)]))
        assert stored(db, site) == (0, 0)
        # The same writer's connection is usable afterwards (rolled back, not stuck).
        with pytest.raises(LeaseLost):
            stale.write(Batch(events=[(door_open(site, "f1-door", 1), NIGHT)]))
    finally:
        stale.close()
    owner = EventWriter(migrated.database_url, [raise_alert], fence=LeaseFence({site: b.token}))
    try:
        owner.write(Batch(events=[(door_open(site, "f1-door", 2), NIGHT)]))
    finally:
        owner.close()
    assert stored(db, site) == (1, 1)


def test_writer_refuses_a_site_its_fence_does_not_hold(db, site, add_device, migrated) -> None:
    add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    writer = EventWriter(migrated.database_url, fence=LeaseFence({"another-site": 1}))
    try:
        with pytest.raises(LeaseLost, match="holds no lease"):
            writer.write(Batch(events=[(door_open(site, "f1-door", 0), NIGHT)]))
    finally:
        writer.close()
    assert stored(db, site) == (0, 0)


def test_stale_ticker_cannot_commit_a_timer_alert(db, site, add_device, migrated) -> None:
    add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    a, b = taken_over(db, site)
    event = door_open(site, "f1-door", 0)
    store = RulesStore(migrated.database_url, fence=LeaseFence({site: a.token}))
    try:
        with pytest.raises(LeaseLost):
            store.apply([trigger_for(site, event)])
        assert stored(db, site) == (0, 0)
    finally:
        store.close()
    store = RulesStore(migrated.database_url, fence=LeaseFence({site: b.token}))
    try:
        assert store.apply([trigger_for(site, event)]) >= 1
    finally:
        store.close()
    assert stored(db, site) == (0, 1)


def test_takeover_waits_for_a_writer_that_passed_the_check_then_sees_its_rows(
        db, site, add_device, migrated) -> None:
    add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    a = leases.acquire(db, site, "worker-a", SHORT)
    assert a is not None
    with psycopg.connect(migrated.database_url, autocommit=False) as writer:
        writer.execute("INSERT INTO events (site, device, event_id, ts, room, kind, "
                       "received_at) VALUES (%s, 'f1-door', 'x', %s, 'f1', 'door.open', %s)",
                       (site, NIGHT, NIGHT))
        LeaseFence({site: a.token}).check(writer, [site])  # A's check passed ...
        expire_soon(db, a)
        # ... so B cannot take the site until A's transaction ends: it tries again later.
        assert leases.acquire(db, site, "worker-b", LONG) is None
        writer.commit()
    b = leases.acquire(db, site, "worker-b", LONG)
    assert b is not None and b.token > a.token
    assert stored(db, site) == (1, 0)  # what A committed is there for B's replay


def test_fenced_transaction_paused_mid_way_is_ended_and_frees_its_locks(
        db, site, migrated) -> None:
    from ingest.alerts import lock_changes

    a = leases.acquire(db, site, "worker-a", LONG)
    assert a is not None
    fence = LeaseFence({site: a.token}, hold_limit=timedelta(milliseconds=500))
    with psycopg.connect(migrated.database_url, autocommit=False) as paused:
        fence.prepare(paused)
        lock_changes(paused)  # the installation-wide alert change lock ...
        fence.check(paused, [site])  # ... and the lease row
        # ... and then the worker stops (SIGSTOP): the server ends its transaction.
        with psycopg.connect(migrated.database_url, autocommit=True) as other:
            other.execute("SET lock_timeout = '5s'")
            lock_changes(other)  # would wait for ever if the paused one still held it
            leases.release(other, a)  # and the lease row is free again
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            paused.execute("SELECT 1")


# -- whole workers: the site's MQTT session follows its lease -----------------------------

def leased_settings(site: str, client_id: str) -> Settings:
    return Settings(gateway_sites=[site], gateway_client_id=client_id,
                    gateway_session_expiry_s=600, gateway_bridges=False,
                    pipeline_leases=True, lease_ttl_s=2, lease_renew_s=0.5,
                    maintenance="off")


def test_stale_gateway_acknowledges_nothing_and_the_new_owner_receives_the_message(
        db, site, add_device, stack: StackInfo) -> None:
    from gateway.service import Gateway
    from nattero.lease_keeper import site_client_id

    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    settings = leased_settings(site, "unused")
    settings = settings.model_copy(update={
        "gateway_client_id": site_client_id(unique("gw"), site)})
    a = leases.acquire(db, site, "worker-a", SHORT)
    assert a is not None
    old = Gateway(settings, fence=LeaseFence({site: a.token}))
    old.start()
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    new: Gateway | None = None
    try:
        expire_soon(db, a)
        b = leases.acquire(db, site, "worker-b", LONG)
        assert b is not None
        device.publish_many([(f"nattero/v1/{site}/f1-door/events",
                              event_payload("door.open", ts=NIGHT, event_id="e-1"))])
        time.sleep(1.0)  # the old owner tries (and retries) to commit it
        assert stored(db, site) == (0, 0)
        old.stop()  # what the keeper does once its renewal fails
        new = Gateway(settings, fence=LeaseFence({site: b.token}))
        new.start()
        # Not acknowledged by the old owner, so the broker redelivers it to the new one.
        assert wait_until(lambda: stored(db, site)[0] == 1, timeout=15)
    finally:
        device.close()
        if new is not None:
            new.stop()
        else:
            old.stop()


def test_second_worker_takes_over_a_killed_workers_site_within_the_lease_and_loses_nothing(
        db, site, add_device, stack: StackInfo) -> None:
    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    settings = leased_settings(site, unique("gw"))
    first = LeaseKeeper(settings, owner=unique("first"))
    second = LeaseKeeper(settings, owner=unique("second"))
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    try:
        first.run_once()
        second.run_once()
        assert site in first.owned() and site not in second.owned()
        service = first.service(site)
        assert service is not None and wait_until(lambda: service.connected, timeout=10)
        device.publish_many([(f"nattero/v1/{site}/f1-door/events",
                              event_payload("door.open", ts=NIGHT, event_id="before"))])
        assert wait_until(lambda: stored(db, site) == (1, 1))

        first.stop(release=False)  # killed: its lease is left to expire
        died = time.monotonic()
        # Sent while no worker serves the site: queued in the site's session.
        device.publish_many([(f"nattero/v1/{site}/f1-door/events",
                              event_payload("door.closed", ts=NIGHT + timedelta(seconds=20),
                                            event_id="while-dead"))])

        def taken() -> bool:
            second.run_once()
            return site in second.owned()

        assert wait_until(taken, timeout=10, every=0.2)
        assert time.monotonic() - died <= settings.lease_ttl_s + 2 * settings.lease_renew_s
        assert wait_until(lambda: stored(db, site) == (2, 1), timeout=15)
        ids = db.execute("SELECT event_id FROM events WHERE site = %s ORDER BY ts",
                         (site,)).fetchall()
        assert [i for (i,) in ids] == ["before", "while-dead"]
    finally:
        device.close()
        first.stop()
        second.stop()


# -- the default single worker ------------------------------------------------------------

def test_default_single_worker_writes_unfenced_and_takes_no_lease(
        db, site, add_device, stack: StackInfo, run_pipeline) -> None:
    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    running = run_pipeline(site)
    assert running.gateway.writer._fence is None
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    try:
        device.publish_many([(f"nattero/v1/{site}/f1-door/events",
                              event_payload("door.open", ts=NIGHT))])
        assert wait_until(lambda: stored(db, site) == (1, 1))
    finally:
        device.close()
    assert db.execute("SELECT count(*) FROM site_leases WHERE site = %s",
                      (site,)).fetchone() == (0,)


@pytest.mark.pure
def test_renewal_slower_than_half_the_lease_is_refused_with_what_to_change() -> None:
    with pytest.raises(ValueError, match="NATTERO_LEASE_RENEW_S"):
        Settings(lease_ttl_s=10, lease_renew_s=6)




# -- real processes: `nattero pipeline --leases`, one killed -9 ----------------------------

class Worker:
    """A `nattero pipeline --leases` process serving the given sites."""

    def __init__(self, name: str, site: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.site, self.env = name, site, env
        self.log = log_dir / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nattero.cli", "pipeline", "--leases", "--site", site,
                 "--worker-id", name], env=env, cwd=REPO, stdout=out, stderr=out)

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


def diagnosis(db: psycopg.Connection, *workers: Worker | None) -> str:
    """What a failed wait shows: the workers' logs and the database's sessions."""
    sessions = db.execute("SELECT pid, state, wait_event, left(query, 80), "
                          "now() - state_change FROM pg_stat_activity "
                          "WHERE datname = current_database()").fetchall()
    logs = [f"--- {w.name}:\n{w.log.read_text()}" for w in workers if w is not None]
    return "\n".join([*logs, "--- sessions:", *map(str, sessions)])


def owner_of(db: psycopg.Connection, site: str) -> str | None:
    row = db.execute("SELECT owner FROM site_leases WHERE site = %s AND expires_at > now()",
                     (site,)).fetchone()
    return None if row is None else str(row[0])


def sent_then_stored(send: Callable[[], None], db: psycopg.Connection, site: str,
                     count: int) -> bool:
    """Send (again: the id dedupes), then whether ``count`` events are stored: the first
    event is stored once the worker's site session exists and is subscribed."""
    send()
    return stored(db, site)[0] == count


def test_killed_worker_process_hands_its_site_to_the_other_within_the_lease_and_no_event_is_lost(
        db, site, add_device, stack: StackInfo, tmp_path: Path) -> None:
    from tests.support.pipeline import gateway_env

    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    ttl, renew = 3.0, 0.5
    env = {**os.environ, **gateway_env(site), "NATTERO_LEASE_TTL_S": str(ttl),
           "NATTERO_LEASE_RENEW_S": str(renew), "NATTERO_MAINTENANCE": "off"}
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    one = Worker("one", site, env, tmp_path)
    two: Worker | None = None
    topic = f"nattero/v1/{site}/f1-door/events"
    try:
        assert wait_until(lambda: owner_of(db, site) == "one", timeout=30)
        # Its session exists once it stored something: from then on nothing is lost.
        first = [(topic, event_payload("motion", ts=NIGHT, event_id="first"))]
        assert wait_until(lambda: sent_then_stored(lambda: device.publish_many(first), db,
                                                   site, 1), timeout=30, every=1)
        two = Worker("two", site, env, tmp_path)
        time.sleep(2 * renew)  # a round or two of the second worker: it must not take it
        assert owner_of(db, site) == "one"
        sent = [(topic, event_payload("motion", ts=NIGHT + timedelta(seconds=i),
                                      event_id=f"e{i}")) for i in range(1, 41)]
        device.publish_many(sent[:20])
        one.proc.send_signal(signal.SIGKILL)
        one.proc.wait(10)
        killed = time.monotonic()
        device.publish_many(sent[20:])  # sent while nobody serves the site
        assert wait_until(lambda: owner_of(db, site) == "two", timeout=30, every=0.1), \
            diagnosis(db, one, two)
        took = time.monotonic() - killed
        assert took <= ttl + 3 * renew, f"takeover took {took:.1f} s"
        assert wait_until(lambda: stored(db, site)[0] == 41, timeout=30), \
            diagnosis(db, one, two)
        ids = {i for (i,) in db.execute("SELECT event_id FROM events WHERE site = %s",
                                        (site,)).fetchall()}
        assert ids == {"first"} | {f"e{i}" for i in range(1, 41)}
    finally:
        device.close()
        one.end()
        if two is not None:
            two.end()


def test_paused_worker_process_resumed_after_takeover_stops_serving_the_site(
        db, site, add_device, stack: StackInfo, tmp_path: Path) -> None:
    from tests.support.pipeline import gateway_env

    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    env = {**os.environ, **gateway_env(site), "NATTERO_LEASE_TTL_S": "3",
           "NATTERO_LEASE_RENEW_S": "0.5", "NATTERO_MAINTENANCE": "off"}
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    one = Worker("one", site, env, tmp_path)
    two: Worker | None = None
    topic = f"nattero/v1/{site}/f1-door/events"

    def send(event_id: str, seconds: int) -> None:
        device.publish_many([(topic, event_payload(
            "motion", ts=NIGHT + timedelta(seconds=seconds), event_id=event_id))])

    try:
        assert wait_until(lambda: owner_of(db, site) == "one", timeout=30)
        assert wait_until(lambda: sent_then_stored(lambda: send("first", 0), db, site, 1),
                          timeout=30, every=1)
        two = Worker("two", site, env, tmp_path)
        one.proc.send_signal(signal.SIGSTOP)  # paused (a long GC, a VM migration, ...)
        assert wait_until(lambda: owner_of(db, site) == "two", timeout=30, every=0.1), \
            diagnosis(db, one, two)
        send("during-pause", 1)
        assert wait_until(lambda: stored(db, site)[0] == 2, timeout=30), diagnosis(db, one, two)
        one.proc.send_signal(signal.SIGCONT)
        # It notices, one way or the other: its renewal finds the lease taken over, or, when
        # the server ended its connection during the pause, it cannot renew in time.
        assert wait_until(lambda: b"stopping its pipeline" in one.log.read_bytes(),
                          timeout=15), diagnosis(db, one, two)
        time.sleep(3)  # time enough for a fight over the session, if there were one
        assert owner_of(db, site) == "two"
        for i in range(10):
            send(f"after-{i}", 2 + i)
        assert wait_until(lambda: stored(db, site)[0] == 12, timeout=30), \
            diagnosis(db, one, two)
        assert one.proc.poll() is None  # it keeps running, serving nothing
    finally:
        device.close()
        if one.proc.poll() is None:
            one.proc.send_signal(signal.SIGCONT)
        one.end()
        if two is not None:
            two.end()
