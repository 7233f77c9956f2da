"""Chaos, the short run (issue 18 §5): a night with the database's primary, a pipeline
worker, an API process, a central broker and the site hub killed -9 at fixed moments, and
brought back.

All real, on one machine: pg_auto_failover (a monitor and two synchronous nodes,
``deploy.ha``), two central brokers and a site hub bridged to each (``deploy.brokers``),
two `nattero pipeline --leases` workers sharing two sites and listening on both central
brokers, two API processes behind HAProxy (``deploy.balancer``), a night board on the
balancer, and devices on the hub. Each site streams sensor heartbeats for 54 s and opens
(and closes) one of its nine building exits every six seconds. The faults, one of each
(fixed moments, so a failure can be replayed): the primary at 6 s (restarted as secondary
at 18 s), the worker owning the first site at 20 s (restarted at 24 s), the first API
process at 30 s (restarted at 34 s; the board may be on either), the first central broker
at 38 s (restarted at 44 s), the site hub at 46 s (restarted at 49 s; the devices
reconnect and send again what it had not acknowledged).

At the end: every event the devices sent (each acknowledged by the hub) is stored exactly
once; every building exit is alerted exactly once, with the situations an undisturbed
engine gives for the same events; every alert reached the board; the worst delay from a
door opening to its alert on the board is printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

import provisioning
from api.users import create_user
from core.alerts import RuleName
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.intents import Trigger
from core.settings import Settings, StackInfo, get_settings
from deploy import ha
from deploy.balancer import Balancer
from ingest.rule_layouts import read_layouts
from rules import RulesEngine
from rules.runtime import layouts_from_store
from tests.support import REPO
from tests.support.api import PASSWORD, free_port
from tests.support.board import ApiProcess
from tests.support.brokers import RedundantBrokers, redundant_brokers
from tests.support.devices import DeviceClient, event_payload
from tests.support.pipeline import gateway_env
from tests.support.replicated import Board, count, replicated_database
from tests.support.store import night_around_now, unique
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

NIGHT_S = 54.0
HEARTBEATS_PER_S = 25.0
EXIT_EVERY_S = 6.0
EXITS = 9  # opened at 1, 7, ..., 49 s: before, during and after the faults


@pytest.fixture(scope="module")
def replicated(migrated: StackInfo) -> Iterator[tuple[Settings, str]]:
    with replicated_database("chaos", 230) as found:
        yield found


@pytest.fixture(scope="module")
def topology(migrated: StackInfo) -> Iterator[RedundantBrokers]:
    with redundant_brokers("chaos-brokers", 56800) as found:
        yield found


@dataclass
class Worker:
    """A `nattero pipeline --leases` process."""

    name: str
    env: dict[str, str]
    log: Path
    sites: list[str]
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nattero.cli", "pipeline", "--leases",
                 *[arg for site in self.sites for arg in ("--site", site)],
                 "--worker-id", self.name], env=self.env, cwd=REPO, stdout=out, stderr=out)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class SiteDevices:
    site: str
    heartbeat: DeviceClient
    doors: list[DeviceClient]  # one per building exit: each opening a situation of its own
    sent: list[Event] = field(default_factory=list)
    opened_at: dict[datetime, float] = field(default_factory=dict)  # ts -> monotonic

    def play(self, started: float) -> None:
        """The night: heartbeats all along; every ``EXIT_EVERY_S`` the next exit is opened,
        and closed a second later."""
        beats, exits, closes = 0, 0, 0
        while (now := time.monotonic() - started) < NIGHT_S:
            if exits < len(self.doors) and now >= 1.0 + exits * EXIT_EVERY_S:
                self._send(self.doors[exits], f"exit-{exits}", "open", EventKind.DOOR_OPEN)
                exits += 1
            elif closes < exits and now >= 2.0 + closes * EXIT_EVERY_S:
                self._send(self.doors[closes], f"exit-{closes}", "closed",
                           EventKind.DOOR_CLOSED)
                closes += 1
            elif now >= beats / HEARTBEATS_PER_S:
                self._send(self.heartbeat, "hb-1", f"hb-{beats}", EventKind.HEARTBEAT)
                beats += 1
            else:
                time.sleep(0.005)
        for client in (self.heartbeat, *self.doors):
            client.publish_many([])  # every PUBACK: the broker has them all

    def _send(self, client: DeviceClient, device: str, event_id: str, kind: EventKind) -> None:
        ts = datetime.now(UTC)
        self.sent.append(Event(self.site, device, event_id, ts, kind))
        if kind is EventKind.DOOR_OPEN:
            self.opened_at[ts] = time.monotonic()
        client.publish(f"nattero/v1/{self.site}/{device}/events",
                       event_payload(kind.value, ts=ts, event_id=event_id))

    def close(self) -> None:
        for client in (self.heartbeat, *self.doors):
            client.close()


def _owner(url: str, site: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT owner FROM site_leases WHERE site = %s "
                               "AND expires_at > now()", (site,)).fetchone()
    except psycopg.OperationalError:
        return None
    return None if row is None else str(row[0])


def _stored(url: str, site: str) -> int:
    return count(url, "SELECT count(*) FROM events WHERE site = %s", site)


def _all_stored(url: str, site: str, total: int) -> Callable[[], bool]:
    return lambda: _stored(url, site) == total


def _first_stored(d: SiteDevices, url: str) -> Callable[[], bool]:
    """Send (again: the id dedupes) a first event, then whether it is stored: the site's
    session exists and is subscribed once it is."""
    first = event_payload("heartbeat", ts=datetime.now(UTC), event_id="first")  # one ts
    def sent_and_stored() -> bool:
        d.heartbeat.publish_many([(f"nattero/v1/{d.site}/hb-1/events", first)])
        return _stored(url, d.site) == 1
    return sent_and_stored


def _expected_exits(url: str, events: list[Event]) -> set[str]:
    """The building-exit situations an undisturbed engine finds in the same events."""
    with psycopg.connect(url) as conn:
        layouts, books = layouts_from_store(read_layouts(conn))
    sites = {e.site for e in events}
    engine = RulesEngine({s: layouts[s] for s in sites}, {s: books[s] for s in sites})
    keys: set[str] = set()
    for event in sorted(events, key=lambda e: (e.ts, e.device, e.id)):
        keys |= {i.episode_key for i in engine.process(event)
                 if isinstance(i, Trigger) and i.rule is RuleName.BUILDING_EXIT}
    return keys


def test_a_night_survives_the_primary_a_worker_an_api_process_a_broker_and_the_hub_killed(
        replicated: tuple[Settings, str], topology: RedundantBrokers, tmp_path: Path) -> None:
    settings, url = replicated
    on_replicated = topology.provisioning(get_settings().model_copy(
        update={"database_url": url}))
    hub_host, hub_port = topology.hub
    sites = [unique("ca"), unique("cb")]
    nurse = unique("nurse")
    devices: list[SiteDevices] = []
    for site in sites:
        provisioning.add_site(on_replicated, site, "Kaos")
        provisioning.add_room(on_replicated, site, "lounge", RoomKind.COMMON, "Dagligstue")
        beat = provisioning.add_device(on_replicated, site, "hb-1", "lounge", DeviceKind.MOTION)
        doors = []
        for n in range(EXITS):
            provisioning.add_room(on_replicated, site, f"exit-{n}", RoomKind.EXIT, f"Udgang {n}")
            door = provisioning.add_device(on_replicated, site, f"exit-{n}", f"exit-{n}",
                                           DeviceKind.EXIT)
            doors.append(DeviceClient(hub_host, hub_port, door.username, door.password))
        devices.append(SiteDevices(site, DeviceClient(
            hub_host, hub_port, beat.username, beat.password), doors))
    with psycopg.connect(url, autocommit=True) as conn:
        for site in sites:
            night_around_now(conn, site)
        create_user(conn, nurse, PASSWORD, "staff", sites)

    env = {**os.environ, **gateway_env(*sites), **topology.env(), "NATTERO_DATABASE_URL": url,
           "NATTERO_LEASE_TTL_S": "3", "NATTERO_LEASE_RENEW_S": "0.5",
           "NATTERO_MAINTENANCE": "off"}
    workers = [Worker(name, env, tmp_path / f"{name}.log", sites) for name in ("one", "two")]
    apis = [ApiProcess(env={"NATTERO_DATABASE_URL": url}) for _ in range(2)]
    for api in apis:
        api.start()
    front = Balancer(tmp_path, [("127.0.0.1", api.port) for api in apis], free_port())
    front.start()
    board: Board | None = None
    faults: list[str] = []
    try:
        assert wait_until(lambda: front.up() == {"api1", "api2"}, 20), front.up()
        login = httpx.post(f"{front.url}/api/v1/auth/token", timeout=10,
                           data={"username": nurse, "password": PASSWORD})
        assert login.status_code == 200, login.text
        board = Board(front.ws_url, login.json()["access_token"])
        assert wait_until(lambda: all(_owner(url, s) for s in sites), 60)
        # Each site's session exists once it stored something: from then on, nothing is lost.
        for d in devices:
            assert wait_until(_first_stored(d, url), 60, every=1)

        started = time.monotonic()
        players = [threading.Thread(target=d.play, args=(started,)) for d in devices]
        for player in players:
            player.start()

        def at(second: float) -> None:
            time.sleep(max(0.0, started + second - time.monotonic()))

        at(6)
        old_primary = ha.primary(settings)
        assert old_primary is not None
        ha.kill_node(settings, old_primary)
        faults.append(f"database primary {old_primary} killed at 6 s")
        at(18)
        ha.start_node(settings, old_primary)
        at(20)
        owner = _owner(url, sites[0]) or "one"
        victim = next((w for w in workers if w.name == owner), workers[0])
        victim.kill()
        faults.append(f"worker {victim.name} (owner of {sites[0]}) killed at 20 s")
        at(24)
        workers.append(Worker("three", env, tmp_path / "three.log", sites))
        at(30)
        apis[0].kill()
        faults.append("API process api1 killed at 30 s")
        at(34)
        apis[0].start()
        at(38)
        topology.kill("central-1")
        faults.append("central broker central-1 killed at 38 s")
        at(44)
        topology.start("central-1")
        at(46)
        topology.kill("hub")
        faults.append("site hub killed at 46 s")
        at(49)
        topology.start("hub")
        for player in players:
            player.join()

        sent = {d.site: d.sent for d in devices}
        for site in sites:
            assert wait_until(_all_stored(url, site, len(sent[site]) + 1), 120), \
                (site, len(sent[site]), _stored(url, site))
        expected = _expected_exits(url, [e for d in devices for e in d.sent])
        assert len(expected) == len(sites) * EXITS, expected  # each a situation of its own

        def stored_exits() -> list[str]:
            with psycopg.connect(url) as conn:
                return [str(k) for (k,) in conn.execute(
                    "SELECT episode_key FROM alerts WHERE site = ANY(%s) "
                    "AND rule = 'building_exit'", (sites,))]

        assert wait_until(lambda: set(stored_exits()) == expected, 60), \
            (sorted(expected - set(stored_exits())), sorted(set(stored_exits()) - expected))
        assert len(stored_exits()) == len(expected)  # once each
        assert wait_until(lambda: board is not None and len(
            {a["id"] for a in board.raised("building_exit")}) == len(expected), 60)
    finally:
        if board is not None:
            board.stop()
        for worker in workers:
            worker.end()
        front.stop()
        for api in apis:
            api.stop()
        for d in devices:
            d.close()

    # Every event exactly once: the same ids as sent, no doubles.
    for d in devices:
        with psycopg.connect(url) as conn:
            ids = [i for (i,) in conn.execute("SELECT event_id FROM events WHERE site = %s",
                                              (d.site,))]
        assert sorted(ids) == sorted(["first", *(e.id for e in d.sent)])
    opened = {ts: t for d in devices for ts, t in d.opened_at.items()}
    delays = []
    for alert, arrived in zip(board.changes, board.arrived, strict=True):
        if alert["change"] == "raised" and alert["alert"]["rule"] == "building_exit":
            ts = datetime.fromisoformat(alert["alert"]["first_ts"])
            if ts in opened:
                delays.append(arrived - opened[ts])
    assert len(delays) == len(expected)
    worst = max(delays)
    print(f"chaos: faults injected {len(faults)}, survived {len(faults)} ({'; '.join(faults)}); "
          f"events lost 0; alerts {len(expected)}, each once; worst alert delay on the "
          f"board {worst:.1f} s")
    assert worst < 60, f"an alert took {worst:.1f} s to reach the board"
