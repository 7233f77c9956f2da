"""Scale (issue 18 §4): `nattero pipeline` workers carrying many sites.

Run on a stack of its own (`NATTERO_STATE_DIR=... nattero up && nattero migrate`), with
nothing else serving it: the workers started here take every site of the store.

1. Provisions ``--sites`` sites of ``--flats`` flats, each flat with a door and a bed sensor
   (heartbeat every ``--heartbeat`` s), a common room and a building exit per site. The
   rows go straight into the store and the devices get no broker account each: one bench
   account publishes for all of them (the worker is measured, not the broker's accounts).
2. Stores ``--history-hours`` of heartbeats for every device, stamped before now, so a
   worker that starts or takes a site over replays a night's worth of stored events.
3. Starts ``--workers`` `nattero pipeline --leases` workers and waits until every site is
   owned and served.
4. For ``--minutes``: every device's heartbeat once per interval, a flat door opening in a
   few flats a minute, and every ``--exit-every`` s a building exit opened at a random site
   (an alert that calls at once). Its latency is the time from publishing the opening to
   the NOTIFY of its alert's commit (what a board's listener hears).
5. Takeover: kills (SIGKILL) the worker owning the most sites, and measures how long until
   the others own all of them again and an exit opened at each of them (up to
   ``--takeover-sites``) has its alert: lease expiry, session takeover and the replay.

Prints one JSON object: events/s, the workers' CPU seconds per 1,000 devices and minute,
alert latency (p50, p99, max, count), and the takeover (sites, seconds).

    python bench/scale.py [--sites 200] [--flats 40] [--workers 1] [--minutes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.fanout import from_notification  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402
from ingest.alerts import NOTIFY_CHANNEL  # noqa: E402
from nattero.lease_keeper import site_client_id  # noqa: E402
from provisioning.sites import broker_accounts  # noqa: E402

NIGHT = "00:00-23:59"  # every minute of the run is night: exits call at once
LEASE_TTL_S = 5.0
LEASE_RENEW_S = 1.0


@dataclass
class Fleet:
    sites: list[str]
    flats: int
    heartbeat_s: int

    def devices(self) -> Iterator[tuple[str, str, str, str]]:
        """(site, device, room, kind) of every device."""
        for site in self.sites:
            yield site, "exit", "exit", "exit"
            for n in range(self.flats):
                yield site, f"f{n}-door", f"f{n}", "door"
                yield site, f"f{n}-bed", f"f{n}", "bed"

    @property
    def count(self) -> int:
        return len(self.sites) * (1 + 2 * self.flats)


def provision(dsn: str, fleet: Fleet, username: str) -> None:
    today = datetime.now(UTC).date()
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sites (id, name, tz, night_start, night_end) "
                "VALUES (%s, %s, 'Europe/Copenhagen', '00:00', '23:59')",
                [(site, f"Skala {site}") for site in fleet.sites])
            rooms = [(site, "exit", "exit", "Hoveddør") for site in fleet.sites]
            rooms += [(site, f"f{n}", "flat", f"Lejlighed {n}") for site in fleet.sites
                      for n in range(fleet.flats)]
            with cur.copy("COPY rooms (site, id, kind, label) FROM STDIN") as copy:
                for row in rooms:
                    copy.write_row(row)
            with cur.copy("COPY room_bases (site, room, kind, valid_from, recorded_by) "
                          "FROM STDIN") as copy:
                for site in fleet.sites:
                    for n in range(fleet.flats):
                        copy.write_row((site, f"f{n}", "consent", today - timedelta(days=30),
                                        "bench"))
            with cur.copy("COPY devices (site, id, room, kind, heartbeat_s, source, "
                          "mqtt_username) FROM STDIN") as copy:
                for site, device, room, kind in fleet.devices():
                    copy.write_row((site, device, room, kind, fleet.heartbeat_s, "native",
                                    username))
        conn.commit()


Phases = dict[tuple[str, str], datetime]  # (site, device) -> its last stored heartbeat


def store_history(dsn: str, fleet: Fleet, hours: float) -> tuple[int, Phases]:
    """Heartbeats of every device for ``hours`` before now, as if the night had run, each
    device at a phase of its own across the interval; returns the rows stored and each
    device's last heartbeat (where its live heartbeats go on from)."""
    now = datetime.now(UTC)
    beats = int(hours * 3600 / fleet.heartbeat_s)
    rows = 0
    last: Phases = {}
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur, cur.copy(
                "COPY events (site, device, event_id, ts, room, kind, battery, received_at) "
                "FROM STDIN") as copy:
            for site, device, room, _ in fleet.devices():
                phase = random.uniform(0, fleet.heartbeat_s)
                for n in range(beats):
                    ts = now - timedelta(seconds=(beats - n) * fleet.heartbeat_s - phase)
                    copy.write_row((site, device, f"h-{n}", ts, room, "heartbeat", 90, ts))
                    rows += 1
                    last[(site, device)] = ts
        conn.commit()
    return rows, last


@dataclass
class Worker:
    name: str
    env: dict[str, str]
    log: Path
    leases: bool = True
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        command = [sys.executable, "-m", "nattero.cli", "pipeline"]
        if self.leases:
            command += ["--leases", "--worker-id", self.name]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, env=self.env, cwd=REPO, stdout=out,
                                         stderr=out)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Listener:
    """The alerts' NOTIFY, as a board's listener hears it. A building exit opened again
    within minutes is the same situation (its alert's count and ``last_ts`` change), so an
    opening is heard with the first change of its site's exit alert whose ``last_ts`` is at
    or after the opening. While a flat's outing is in progress (the bench opens flat doors
    too), the opening is that outing passing the exit: its ``left_flat`` alert becomes a
    call at the opening's own time, and that is the opening heard."""

    def __init__(self, dsn: str) -> None:
        self._heard: dict[str, list[tuple[str, datetime, float]]] = {}
        self._lock = threading.Lock()
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.5):
                change = from_notification(note.payload)
                if change is None or isinstance(change, int):
                    continue
                alert = json.loads(change.message)["alert"]
                if alert["rule"] in ("building_exit", "left_flat"):
                    with self._lock:
                        self._heard.setdefault(alert["site"], []).append(
                            (alert["rule"], datetime.fromisoformat(alert["last_ts"]),
                             time.monotonic()))

    def heard(self, site: str, opened: datetime) -> float | None:
        with self._lock:
            return min((at for rule, last, at in self._heard.get(site, [])
                        if last == opened or (rule == "building_exit" and last >= opened)),
                       default=None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()


class Publisher:
    def __init__(self, settings: Settings, username: str, password: str) -> None:
        host, port = settings.broker_address()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.connect(host, port)
        self.client.loop_start()
        self.sent = 0

    def event(self, site: str, device: str, kind: str) -> datetime:
        ts = datetime.now(UTC)
        body: dict[str, object] = {"id": uuid.uuid4().hex,
                                   "ts": ts.isoformat().replace("+00:00", "Z"), "kind": kind}
        if kind == "heartbeat":
            body["battery"] = 90
        self.client.publish(f"nattero/v1/{site}/{device}/events", json.dumps(body), qos=1)
        self.sent += 1
        return ts

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Heartbeats:
    """Every device's heartbeat once per interval, going on from its last stored one (its
    own phase), and a flat door opening with 1 % of them, in a thread, from the workers'
    start to the end. A bench that paused them while the workers start, or began them all
    afresh after the set-up, found devices silent for more than two intervals: thousands
    of offline alerts at once, which the measured minutes then paid for."""

    def __init__(self, pub: Publisher, fleet: Fleet, last: Phases) -> None:
        self._pub, self._fleet = pub, fleet
        # Due order: by each device's last stored heartbeat; the k-th round of device i is
        # due at last_i + k intervals (at once if that has passed: set-up took a while).
        self._order = sorted(last.items(), key=lambda item: item[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = timedelta(seconds=self._fleet.heartbeat_s)
        at, rounds = 0, 1
        while not self._stop.wait(0.002):
            now = datetime.now(UTC)
            while self._order[at][1] + rounds * interval <= now:
                (site, device), _ = self._order[at]
                self._pub.event(site, device, "heartbeat")
                at += 1
                if at == len(self._order):
                    at, rounds = 0, rounds + 1
                if random.random() < 0.01:
                    door_site = random.choice(self._fleet.sites)
                    self._pub.event(door_site, f"f{random.randrange(self._fleet.flats)}-door",
                                    "door.open")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def presubscribe(settings: Settings, sessions: dict[str, list[str]]) -> None:
    """Create the workers' persistent sessions (client id -> its sites) with their
    subscriptions before they start: a worker replays the night before it connects, and
    what devices send meanwhile must be queued for it, as for a worker that restarts."""
    host, port = settings.broker_address()
    account = settings.gateway_account()
    for client_id, sites in sessions.items():
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, clean_session=False)
        client.username_pw_set(account.username, account.password)
        done = threading.Event()
        client.on_subscribe = lambda *_, done=done: done.set()
        client.connect(host, port)
        client.loop_start()
        client.subscribe([(f"nattero/v1/{site}/+/{channel}", 1) for site in sites
                          for channel in ("events", "status")])
        done.wait(10)
        client.disconnect()
        client.loop_stop()


def owners(dsn: str, sites: list[str]) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {s: o for s, o in conn.execute(
            "SELECT site, owner FROM site_leases WHERE site = ANY(%s) AND expires_at > now()",
            (sites,))}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Opened = dict[tuple[str, datetime], float]  # (site, ts) -> monotonic time published


def open_exit(pub: Publisher, site: str, opened: Opened) -> None:
    ts = pub.event(site, "exit", "door.open")
    opened[(site, ts)] = time.monotonic()
    pub.event(site, "exit", "door.closed")


def all_heard(listener: Listener, opened: Opened) -> bool:
    return all(listener.heard(site, ts) is not None for site, ts in opened)


def latencies(listener: Listener, opened: Opened) -> list[float]:
    found = []
    for (site, ts), at in opened.items():
        heard = listener.heard(site, ts)
        if heard is not None:
            found.append(heard - at)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--flats", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-leases", action="store_true",
                        help="one `nattero pipeline` without leases serves every site (one "
                        "MQTT session and one writer for all); the takeover is then its "
                        "restart")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--heartbeat", type=int, default=300)
    parser.add_argument("--history-hours", type=float, default=12.0)
    parser.add_argument("--exit-every", type=float, default=2.0)
    parser.add_argument("--takeover-sites", type=int, default=50)
    args = parser.parse_args()
    settings = get_settings()
    dsn = settings.resolved_database_url()
    tag = secrets.token_hex(3)
    fleet = Fleet([f"s{tag}-{n:03d}" for n in range(args.sites)], args.flats, args.heartbeat)
    username, password = f"bench-scale-{tag}", secrets.token_urlsafe(16)
    with broker_accounts(settings) as broker:
        broker.create_bridge_account(username, password, ["nattero/v1/+/+/events"],
                                     client_id=username)
    workdir = Path(tempfile.mkdtemp(prefix="nattero-scale-"))
    result: dict[str, Any] = {"sites": args.sites, "flats": args.flats,
                              "devices": fleet.count,
                              "workers": 1 if args.no_leases else args.workers,
                              "leases": not args.no_leases}
    workers: list[Worker] = []
    listener: Listener | None = None
    pub: Publisher | None = None
    heartbeats: Heartbeats | None = None
    try:
        started = time.monotonic()
        provision(dsn, fleet, username)
        result["history_events"], last_beats = store_history(dsn, fleet, args.history_hours)
        result["setup_s"] = round(time.monotonic() - started, 1)
        env = {**os.environ, "NATTERO_GATEWAY_SITES": json.dumps(fleet.sites),
               "NATTERO_GATEWAY_CLIENT_ID": f"bench-scale-gw-{tag}",
               "NATTERO_GATEWAY_BRIDGES": "false", "NATTERO_MAINTENANCE": "off",
               "NATTERO_LEASE_TTL_S": str(LEASE_TTL_S),
               "NATTERO_LEASE_RENEW_S": str(LEASE_RENEW_S),
               "NATTERO_LEASE_MAX_SITES": str(args.sites)}
        listener = Listener(dsn)
        leases = not args.no_leases
        base_id = env["NATTERO_GATEWAY_CLIENT_ID"]
        if leases:
            presubscribe(settings, {site_client_id(base_id, site): [site]
                                    for site in fleet.sites})
        else:
            presubscribe(settings, {base_id: fleet.sites})
        pub = Publisher(settings, username, password)
        heartbeats = Heartbeats(pub, fleet, last_beats)
        started = time.monotonic()
        workers = [Worker(f"w{n}-{tag}", env, workdir / f"w{n}.log", leases)
                   for n in range(1 if args.no_leases else args.workers)]
        while leases and len(owners(dsn, fleet.sites)) < len(fleet.sites):
            if time.monotonic() - started > 600:
                raise SystemExit(f"the workers did not take every site; read {workdir}")
            time.sleep(0.5)
        # Served once an exit opened at every site has its alert. Opened again until then:
        # published before a worker's session subscribed, an event is not kept for it.
        waiting = list(fleet.sites)
        while waiting:
            if time.monotonic() - started > 900:
                raise SystemExit(f"the workers did not serve every site; read {workdir}")
            opened: Opened = {}
            for site in waiting:
                open_exit(pub, site, opened)
            time.sleep(5)
            waiting = [site for site, ts in opened if listener.heard(site, ts) is None]
        result["start_s"] = round(time.monotonic() - started, 1)

        # The night: heartbeats and doors (on since the start), and measured exits.
        opened = {}
        cpu_before = sum(w.cpu_s() for w in workers)
        sent_before = pub.sent
        began = time.monotonic()
        next_exit = began
        while (now := time.monotonic()) - began < args.minutes * 60:
            if now >= next_exit:
                open_exit(pub, random.choice(fleet.sites), opened)
                next_exit += args.exit_every
            time.sleep(0.002)
        elapsed = time.monotonic() - began
        time.sleep(5)  # the last exits' alerts
        cpu = sum(w.cpu_s() for w in workers) - cpu_before
        measured = latencies(listener, opened)
        slowest = sorted(((heard - at, at - began) for (site, ts), at in opened.items()
                          if (heard := listener.heard(site, ts)) is not None), reverse=True)[:3]
        result |= {
            "events_per_s": round((pub.sent - sent_before) / elapsed, 1),
            "cpu_s_per_1000_devices_per_min": round(cpu / (fleet.count / 1000)
                                                    / (elapsed / 60), 3),
            "workers_cpu_share": round(cpu / elapsed, 3),
            "exits": len(opened), "exits_heard": len(measured),
            "alert_latency_ms": {
                "p50": round(1000 * percentile(measured, 0.5), 1),
                "p99": round(1000 * percentile(measured, 0.99), 1),
                "max": round(1000 * max(measured), 1)} if measured else None,
            "target_p99_ms": 100,
            # When the slowest happened: a cause that comes at a moment shows in it.
            "slowest": [{"ms": round(1000 * latency, 1), "at_s": round(offset, 1)}
                        for latency, offset in slowest],
        }

        # Takeover: the worker owning the most sites dies.
        held = owners(dsn, fleet.sites)
        if leases and args.workers >= 2:
            victim_name = max({o for o in held.values()},
                              key=lambda o: sum(1 for v in held.values() if v == o))
            victim = next(w for w in workers if w.name == victim_name)
            lost = [s for s, o in held.items() if o == victim_name][:args.takeover_sites]
        else:  # one worker: a second one starts as the first dies
            victim = workers[0]
            lost = fleet.sites[:args.takeover_sites]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        killed = time.monotonic()
        if not leases or args.workers < 2:
            workers.append(Worker(f"w-new-{tag}", env, workdir / "w-new.log", leases))
        opened = {}
        for site in lost:
            open_exit(pub, site, opened)
        while not all_heard(listener, opened):
            if time.monotonic() - killed > 300:
                break
            time.sleep(0.2)
        result["takeover"] = {
            "sites": len(lost), "served": len(latencies(listener, opened)),
            "seconds": round(time.monotonic() - killed, 1), "lease_ttl_s": LEASE_TTL_S,
            "target_s": 15}
    finally:
        if heartbeats is not None:
            heartbeats.stop()
        if pub is not None:
            pub.close()
        if listener is not None:
            listener.stop()
        for worker in workers:
            worker.end()
        with broker_accounts(settings) as broker:
            broker.delete_account(username)
    result["logs"] = str(workdir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
