"""A chaos night (issue 18 §5), shared by the short run (``tests/test_chaos.py``, fixed
moments) and the long one (``bench/chaos.py``, random moments).

All real, on one machine: pg_auto_failover (a monitor and two synchronous nodes,
``deploy.ha``), two central brokers and a site hub bridged to each (``deploy.brokers``),
two `nattero pipeline --leases` workers sharing the sites and listening on both central
brokers, two API processes behind HAProxy (``deploy.balancer``), a night board on the
balancer, and devices on the hub. Each site streams sensor heartbeats and opens (and
closes a second later) its next building exit every ``exit_every_s``: each exit is a
device and a situation of its own.

``Night.play`` runs the night while it injects the faults given (each a kill -9 and, after
a while, a restart); ``Night.outcome`` then checks that every event the devices sent (each
acknowledged by the hub) is stored exactly once, that every exit opening is one alert with
the situations an undisturbed engine gives for the same events, and that each alert
reached the board, and measures the delay from a door opening to its alert on the board.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import httpx
import psycopg

import provisioning
from api.users import create_user
from core.alerts import RuleName
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.intents import Trigger
from core.settings import Settings, get_settings
from deploy import ha
from deploy.balancer import Balancer
from ingest.rule_layouts import read_layouts
from rules import RulesEngine
from rules.runtime import layouts_from_store
from tests.support import REPO
from tests.support.api import PASSWORD, free_port
from tests.support.board import ApiProcess
from tests.support.brokers import RedundantBrokers
from tests.support.devices import DeviceClient, event_payload
from tests.support.pipeline import gateway_env
from tests.support.replicated import Board, count
from tests.support.store import night_around_now, unique
from tests.support.waiting import wait_until

#: What a fault may hit (one of each in the short run).
COMPONENTS = ("primary", "worker", "api", "central", "hub")


@dataclass(frozen=True)
class Fault:
    """``component`` killed -9 ``at`` seconds into the night and restarted ``back_at``."""

    component: str
    at: float
    back_at: float


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
    seconds: float
    exit_every_s: float
    heartbeats_per_s: float
    sent: list[Event] = field(default_factory=list)
    opened_at: dict[datetime, float] = field(default_factory=dict)  # ts -> monotonic

    def play(self, started: float) -> None:
        """The night: heartbeats all along; every ``exit_every_s`` the next exit is
        opened, and closed a second later."""
        beats, exits, closes = 0, 0, 0
        while (now := time.monotonic() - started) < self.seconds:
            if exits < len(self.doors) and now >= 1.0 + exits * self.exit_every_s:
                self._send(self.doors[exits], f"exit-{exits}", "open", EventKind.DOOR_OPEN)
                exits += 1
            elif closes < exits and now >= 2.0 + closes * self.exit_every_s:
                self._send(self.doors[closes], f"exit-{closes}", "closed",
                           EventKind.DOOR_CLOSED)
                closes += 1
            elif now >= beats / self.heartbeats_per_s:
                self._send(self.heartbeat, "hb-1", f"hb-{beats}", EventKind.HEARTBEAT)
                beats += 1
            else:
                time.sleep(0.005)
        for client in (self.heartbeat, *self.doors):
            client.publish_many([], timeout=120)  # every PUBACK: the hub has them all

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


@dataclass(frozen=True)
class Outcome:
    faults: list[str]
    events_sent: int
    events_lost: int
    events_doubled: int
    alerts: int
    delays_s: list[float]
    opened_s: list[float] = field(default_factory=list)  # each alert's door, into the night

    @property
    def worst_delay_s(self) -> float:
        return max(self.delays_s)

    def slowest(self, count: int) -> list[tuple[float, float]]:
        """The ``count`` slowest alerts: (seconds into the night its door opened, delay)."""
        return sorted(zip(self.opened_s, self.delays_s, strict=True),
                      key=lambda pair: -pair[1])[:count]

    def summary(self) -> str:
        return (f"chaos: faults injected {len(self.faults)}, survived {len(self.faults)} "
                f"({'; '.join(self.faults)}); events lost {self.events_lost}; alerts "
                f"{self.alerts}, each once; worst alert delay on the board "
                f"{self.worst_delay_s:.1f} s")


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


def _first_stored(d: SiteDevices, url: str) -> Callable[[], bool]:
    """Send (again: the id dedupes) a first event, then whether it is stored: the site's
    session exists and is subscribed once it is."""
    first = event_payload("heartbeat", ts=datetime.now(UTC), event_id="first")  # one ts
    def sent_and_stored() -> bool:
        d.heartbeat.publish_many([(f"nattero/v1/{d.site}/hb-1/events", first)])
        return _stored(url, d.site) == 1
    return sent_and_stored


def expected_exits(url: str, events: list[Event]) -> set[str]:
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


class Night:
    """Sites, workers, API processes, the balancer and a board, set up on entry and
    stopped on exit."""

    def __init__(self, replicated: tuple[Settings, str], topology: RedundantBrokers,
                 folder: Path, *, seconds: float, sites: int = 2, exit_every_s: float = 6.0,
                 heartbeats_per_s: float = 25.0) -> None:
        self.settings, self.url = replicated
        self.topology = topology
        self.folder = folder
        self.seconds = seconds
        self.exits = int((seconds - 2.0) // exit_every_s) + 1
        self.sites = [unique(f"c{chr(ord('a') + n)}") for n in range(sites)]
        self.exit_every_s = exit_every_s
        self.heartbeats_per_s = heartbeats_per_s
        self.devices: list[SiteDevices] = []
        self.workers: list[Worker] = []
        self.apis: list[ApiProcess] = []
        self.front: Balancer | None = None
        self.board: Board | None = None
        self.faults: list[str] = []
        self.env: dict[str, str] = {}
        self.started = time.monotonic()  # the night's start, set again by ``play``

    def __enter__(self) -> Night:
        try:
            self._set_up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _set_up(self) -> None:
        url = self.url
        on_replicated = self.topology.provisioning(get_settings().model_copy(
            update={"database_url": url}))
        hub_host, hub_port = self.topology.hub
        nurse = unique("nurse")
        for site in self.sites:
            provisioning.add_site(on_replicated, site, "Kaos")
            provisioning.add_room(on_replicated, site, "lounge", RoomKind.COMMON, "Dagligstue")
            beat = provisioning.add_device(on_replicated, site, "hb-1", "lounge",
                                           DeviceKind.MOTION)
            doors = []
            for n in range(self.exits):
                provisioning.add_room(on_replicated, site, f"exit-{n}", RoomKind.EXIT,
                                      f"Udgang {n}")
                door = provisioning.add_device(on_replicated, site, f"exit-{n}", f"exit-{n}",
                                               DeviceKind.EXIT)
                doors.append(DeviceClient(hub_host, hub_port, door.username, door.password))
            self.devices.append(SiteDevices(
                site, DeviceClient(hub_host, hub_port, beat.username, beat.password), doors,
                self.seconds, self.exit_every_s, self.heartbeats_per_s))
        with psycopg.connect(url, autocommit=True) as conn:
            for site in self.sites:
                night_around_now(conn, site)
            create_user(conn, nurse, PASSWORD, "staff", self.sites)

        self.env = {**os.environ, **gateway_env(*self.sites), **self.topology.env(),
                    "NATTERO_DATABASE_URL": url, "NATTERO_LEASE_TTL_S": "3",
                    "NATTERO_LEASE_RENEW_S": "0.5", "NATTERO_MAINTENANCE": "off"}
        self.workers = [self._worker(name) for name in ("one", "two")]
        self.apis = [ApiProcess(env={"NATTERO_DATABASE_URL": url}) for _ in range(2)]
        for api in self.apis:
            api.start()
        self.front = Balancer(self.folder, [("127.0.0.1", api.port) for api in self.apis],
                              free_port())
        self.front.start()
        front = self.front
        assert wait_until(lambda: front.up() == {"api1", "api2"}, 20), front.up()
        login = httpx.post(f"{front.url}/api/v1/auth/token", timeout=10,
                           data={"username": nurse, "password": PASSWORD})
        assert login.status_code == 200, login.text
        self.board = Board(front.ws_url, login.json()["access_token"])
        assert wait_until(lambda: all(_owner(url, s) for s in self.sites), 60)
        # Each site's session exists once it stored something: from then on, nothing is lost.
        for d in self.devices:
            assert wait_until(_first_stored(d, url), 60, every=1)
        # A broker writes its sessions every 2 s; the sessions must be older than that
        # before a broker is killed (``docs/brokers.md``, Limits).
        time.sleep(2.5)

    def _worker(self, name: str) -> Worker:
        return Worker(name, self.env, self.folder / f"{name}.log", self.sites)

    # -- faults ----------------------------------------------------------------------------
    def _kill(self, fault: Fault) -> Callable[[], None]:
        """Kill the component; returns what brings it (or its replacement) back."""
        if fault.component == "primary":
            # One fault of the database at a time: the last old primary must have rejoined
            # as the synchronous secondary first.
            assert wait_until(lambda: sorted(state for state, _ in ha.node_state(
                self.settings).values()) == ["primary", "secondary"], 90), \
                ha.node_state(self.settings)
            node = ha.primary(self.settings)
            assert node is not None, "no primary to kill"
            ha.kill_node(self.settings, node)
            self.faults.append(f"database primary {node} killed at {fault.at:.0f} s")
            return lambda: ha.start_node(self.settings, node)
        if fault.component == "worker":
            owner = _owner(self.url, self.sites[0]) or self.workers[-1].name
            alive = [w for w in self.workers if w.proc.poll() is None]
            victim = next((w for w in alive if w.name == owner), alive[0])
            victim.kill()
            self.faults.append(f"worker {victim.name} (owner of {self.sites[0]}) killed at "
                               f"{fault.at:.0f} s")
            name = f"w{len(self.workers) + 1}"
            return lambda: self.workers.append(self._worker(name))
        if fault.component == "api":
            api = next(a for a in self.apis if a.process is not None
                       and a.process.poll() is None)
            api.kill()
            self.faults.append(f"API process on port {api.port} killed at {fault.at:.0f} s")
            return api.start
        if fault.component == "central":
            # Each central broker in turn.
            name = f"central-{1 + sum('central broker' in f for f in self.faults) % 2}"
            self.topology.kill(name)
            self.faults.append(f"central broker {name} killed at {fault.at:.0f} s")
            return lambda: self.topology.start(name)
        if fault.component == "hub":
            self.topology.kill("hub")
            self.faults.append(f"site hub killed at {fault.at:.0f} s")
            return lambda: self.topology.start("hub")
        raise ValueError(f"unknown component {fault.component!r}; one of {COMPONENTS}")

    def play(self, faults: list[Fault]) -> None:
        """Play the night with the faults (kills and restarts at their moments, in order)."""
        started = self.started = time.monotonic()
        players = [threading.Thread(target=d.play, args=(started,)) for d in self.devices]
        for player in players:
            player.start()

        def at(second: float) -> None:
            time.sleep(max(0.0, started + second - time.monotonic()))

        steps: list[tuple[float, int, Fault]] = sorted(
            [(f.at, 1, f) for f in faults] + [(f.back_at, 0, f) for f in faults],
            key=lambda step: (step[0], step[1]))
        restarts: dict[Fault, Callable[[], None]] = {}
        try:
            for second, is_kill, fault in steps:
                at(second)
                if is_kill:
                    restarts[fault] = self._kill(fault)
                else:
                    restarts.pop(fault)()
        finally:
            for restart in restarts.values():
                restart()
            for player in players:
                player.join()

    def outcome(self) -> Outcome:
        url, sites = self.url, self.sites
        sent = {d.site: d.sent for d in self.devices}
        def all_stored(site: str) -> Callable[[], bool]:
            return lambda: _stored(url, site) >= len(sent[site]) + 1

        for site in sites:
            assert wait_until(all_stored(site), 180), (site, len(sent[site]),
                                                       _stored(url, site))
        expected = expected_exits(url, [e for d in self.devices for e in d.sent])
        assert len(expected) == len(sites) * self.exits, expected  # each its own situation

        def stored_exits() -> list[str]:
            with psycopg.connect(url) as conn:
                return [str(k) for (k,) in conn.execute(
                    "SELECT episode_key FROM alerts WHERE site = ANY(%s) "
                    "AND rule = 'building_exit'", (sites,))]

        assert wait_until(lambda: set(stored_exits()) == expected, 60), \
            (sorted(expected - set(stored_exits())), sorted(set(stored_exits()) - expected))
        assert len(stored_exits()) == len(expected)  # once each
        board = self.board
        assert board is not None
        assert wait_until(lambda: len(
            {a["id"] for a in board.raised("building_exit")}) == len(expected), 60)

        lost = doubled = 0
        for d in self.devices:
            with psycopg.connect(url) as conn:
                ids = [(str(device), str(i)) for (device, i) in conn.execute(
                    "SELECT device, event_id FROM events WHERE site = %s", (d.site,))]
            wanted = {("hb-1", "first"), *((e.device, e.id) for e in d.sent)}
            lost += len(wanted - set(ids))
            doubled += len(ids) - len(set(ids))
        opened = {ts: t for d in self.devices for ts, t in d.opened_at.items()}
        delays, opened_s = [], []
        for change, arrived in zip(board.changes, board.arrived, strict=True):
            if change["change"] == "raised" and change["alert"]["rule"] == "building_exit":
                ts = datetime.fromisoformat(change["alert"]["first_ts"])
                if ts in opened:
                    delays.append(arrived - opened[ts])
                    opened_s.append(opened[ts] - self.started)
        assert len(delays) == len(expected)
        return Outcome(list(self.faults), sum(len(s) for s in sent.values()), lost, doubled,
                       len(expected), delays, opened_s)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.board is not None:
            self.board.stop()
        for worker in self.workers:
            worker.end()
        if self.front is not None:
            self.front.stop()
        for api in self.apis:
            api.stop()
        for d in self.devices:
            d.close()
