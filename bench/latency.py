"""Alert latency: an alerting MQTT publish -> the alert on the board's WebSocket.

Against the local stack (`nattero up`): provisions a bench site whose night window covers
the present moment, starts `nattero serve` (gateway + rules + API, restricted to that site),
keeps a background load of 1,000 events/s from 500 devices, opens W WebSocket clients as a
staff user, and publishes building-exit openings (each a high alert) from a real device.
Latency = WebSocket receipt time - time just before the publish, per alert and client.

``--runs N`` repeats the measurement (a fresh bench site and server each time).
``--preload-events N --preload-sites S`` first fills the store like one that has been live
for weeks: S provisioned sites (``pre-NN``) with events over the past ``--preload-days``
nights, generated inside PostgreSQL, stored as they would have arrived live, and the rollups
brought up to date once; skipped when those sites already hold about N events.
``--trace DIR`` keeps each run's server log and every latency sample with its wall-clock
time, to line stalls up with what the server was doing.

Prints one JSON object as the last line (keys in bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import psycopg
import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import provisioning  # noqa: E402
from bench.cleanup import remove_session, remove_site  # noqa: E402
from core.events import DeviceKind, RoomKind  # noqa: E402
from core.settings import get_settings  # noqa: E402
from ingest import rollups  # noqa: E402
from provisioning.broker_accounts import BrokerAccounts  # noqa: E402

TZ = ZoneInfo("Europe/Copenhagen")
TARGETS = {"p50_ms": 10.0, "p99_ms": 50.0, "all_clients_p99_ms": 100.0}

# -- preload: a store that has been live for weeks -----------------------------------------

PRELOAD_FLATS = 10  # per site: a door and a bed each, plus a common-room motion and an exit
_PRELOAD_DEVICES = [(f"f{n:02d}-door", f"f{n:02d}", "door") for n in range(1, PRELOAD_FLATS + 1)] \
    + [(f"f{n:02d}-bed", f"f{n:02d}", "bed") for n in range(1, PRELOAD_FLATS + 1)] \
    + [("stue-motion", "stue", "motion"), ("exit-door", "exit", "exit")]

# One site's events: each device gets evenly spaced slots with jitter over the period; a slot
# is a heartbeat by day and, at night (22-07 local), one time in 4 an event of the device's
# kind. ``received_at`` a moment after ``ts``: stored live, as the gateway would have.
_PRELOAD_EVENTS = """
INSERT INTO events (site, device, event_id, ts, room, kind, battery, received_at)
SELECT d.site, d.id, 'pre-' || slot.n, slot.ts, d.room,
       CASE WHEN extract(hour FROM slot.ts AT TIME ZONE 'Europe/Copenhagen') BETWEEN 7 AND 21
                 OR random() > 0.25 THEN 'heartbeat'
            WHEN d.kind = 'bed' THEN (ARRAY['bed.exit', 'bed.enter'])[1 + (slot.n %% 2)]
            WHEN d.kind = 'motion' THEN 'motion'
            ELSE (ARRAY['door.open', 'door.closed'])[1 + (slot.n %% 2)] END,
       CASE WHEN slot.n %% 50 = 0 THEN 90 END,
       slot.ts + random() * interval '2 seconds'
FROM devices d
CROSS JOIN LATERAL (
    SELECT n, %(start)s::timestamptz + n * %(step)s::interval
              + random() * %(step)s::interval AS ts
    FROM generate_series(0, %(slots)s - 1) AS n) AS slot
WHERE d.site = %(site)s
ON CONFLICT DO NOTHING
"""


def preload(dsn: str, events: int, sites: int, days: int) -> dict[str, Any]:
    """Provision ``sites`` sites ``pre-01``.. and give them ``events`` events over the past
    ``days`` days (ending an hour ago), then bring the rollups up to date. Skipped when the
    sites already hold at least 90 % of ``events``."""
    names = [f"pre-{n:02d}" for n in range(1, sites + 1)]
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE site = ANY(%s)",
                           (names,)).fetchone()
        if row is not None and row[0] >= 0.9 * events:
            return {"preloaded": False, "preload_s": 0.0}
        for site in names:
            conn.execute("INSERT INTO sites (id, name, tz, night_start, night_end) VALUES "
                         "(%s, %s, 'Europe/Copenhagen', '22:00', '07:00') ON CONFLICT DO NOTHING",
                         (site, f"Preload {site}"))
            conn.cursor().executemany(
                "INSERT INTO rooms (site, id, kind, label) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                [(site, f"f{n:02d}", "flat", f"Lejlighed {n}")
                 for n in range(1, PRELOAD_FLATS + 1)]
                + [(site, "stue", "common", "Stue"), (site, "exit", "exit", "Hoveddør")])
            conn.cursor().executemany(
                "INSERT INTO devices (site, id, room, kind, heartbeat_s) VALUES "
                "(%s, %s, %s, %s, 3600) ON CONFLICT DO NOTHING",
                [(site, device, room, kind) for device, room, kind in _PRELOAD_DEVICES])
        conn.execute("DELETE FROM events WHERE site = ANY(%s)", (names,))
        slots = max(1, events // (sites * len(_PRELOAD_DEVICES)))
        end = datetime.now(UTC) - timedelta(hours=1)
        start = end - timedelta(days=days)
        step = f"{days * 86400 / slots} seconds"
        with conn.transaction():
            # Historical arrival times would fire the backdated-marks trigger on every row
            # (the rebuild below counts everything anyway), and a hypertable's triggers cannot
            # be disabled: drop it and re-create it from its own definition, in one
            # transaction, so the schema is never left without it.
            row = conn.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                               "WHERE tgrelid = 'events'::regclass "
                               "AND tgname = 'events_backdated'").fetchone()
            if row is not None:
                conn.execute("DROP TRIGGER events_backdated ON events")
            for site in names:
                conn.execute(_PRELOAD_EVENTS, {"site": site, "start": start, "step": step,
                                               "slots": slots})
            if row is not None:
                conn.execute(row[0])
        conn.execute("VACUUM ANALYZE events")
        refresh = rollups.refresh(conn, rebuild=True)
        for table in ("event_rollup", "event_rollup_1h", "event_rollup_out"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return {"preloaded": True, "preload_s": round(time.monotonic() - started, 1),
            "preload_rollup_build_s": refresh.seconds}


# A backlog that arrives at once (a gateway catching up after an outage, a simulator, an
# import): events of the preloaded sites over the past days, all received now.
_BURST_EVENTS = """
INSERT INTO events (site, device, event_id, ts, room, kind, battery, received_at)
SELECT d.site, d.id, 'burst-' || %(tag)s || '-' || n,
       now() - %(days)s * interval '1 day' + random() * %(days)s * interval '1 day',
       d.room, 'heartbeat', NULL, clock_timestamp()
FROM devices d CROSS JOIN generate_series(1, %(per_device)s) AS n
WHERE d.site LIKE 'pre-%%'
"""


def burst(dsn: str, events: int, days: int) -> int:
    """Store about ``events`` events for the preloaded sites, all arriving now, and refresh
    the rollups once."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM devices WHERE site LIKE 'pre-%'").fetchone()
        devices = int(row[0]) if row else 0
        if not devices:
            raise SystemExit("--burst-events needs preloaded sites (--preload-events)")
        cursor = conn.execute(_BURST_EVENTS, {"tag": uuid.uuid4().hex[:8], "days": days,
                                              "per_device": max(1, events // devices)})
        rollups.refresh(conn)  # a maintenance round has counted the backlog since
        return cursor.rowcount


def store_contents(dsn: str) -> dict[str, int]:
    """What the store holds before the measurement: events, sites, devices, alerts."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        counts = {}
        for table in ("events", "sites", "devices", "alerts"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def mqtt_client(host: str, port: int, username: str, password: str,
                threaded: bool = True) -> mqtt.Client:
    """A device. ``threaded=False``: no network thread, so ``publish`` writes to the socket
    at once from the caller (the caller then runs ``loop`` for acks and keep-alive)."""
    # The account's own client id: the broker refuses device and bridge accounts with another.
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username)
    client.username_pw_set(username, password)

    def nodelay(c: mqtt.Client, userdata: Any, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = nodelay
    client.connect(host, port)
    if threaded:
        client.loop_start()
    else:
        client.loop(timeout=1.0)  # CONNACK
    return client


async def pump(client: mqtt.Client) -> None:
    """Reads acks and sends keep-alives for an unthreaded client, on the event loop."""
    while True:
        client.loop(timeout=0)
        await asyncio.sleep(0.02)


def background_load(host: str, port: int, username: str, password: str, site: str,
                    devices: int, rate: float) -> None:
    """Runs in its own process (terminated by the parent), so its CPU and GIL do not
    disturb the measuring process."""
    client = mqtt_client(host, port, username, password)
    n = 0
    started = time.monotonic()
    while True:
        due = started + n / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        device = f"bg{n % devices}"
        client.publish(f"nattero/v1/{site}/{device}/events", json.dumps(
            {"id": f"bg-{n}", "ts": iso(datetime.now(UTC)), "kind": "heartbeat"}), qos=1)
        n += 1


async def run(args: argparse.Namespace, index: int = 1) -> dict[str, Any]:
    settings = get_settings()
    host, port = settings.broker_address()
    dsn = settings.resolved_database_url()
    site = f"lat-{uuid.uuid4().hex[:6]}"
    local_now = datetime.now(TZ)
    night = f"{(local_now - timedelta(hours=1)):%H:%M}-{(local_now + timedelta(hours=3)):%H:%M}"
    provisioning.add_site(settings, site, "Latency bench", night=night)
    provisioning.add_room(settings, site, "hall", RoomKind.COMMON, "Hall")
    provisioning.add_room(settings, site, "exit", RoomKind.EXIT, "Exit")
    door = provisioning.add_device(settings, site, "exit-door", "exit", DeviceKind.EXIT)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO devices (site, id, room, kind, heartbeat_s) VALUES (%s, %s, 'hall', "
            "'motion', 3600)", [(site, f"bg{n}") for n in range(args.devices)])
    staff, staff_password = f"bench-{site}", uuid.uuid4().hex
    subprocess.run([sys.executable, "-m", "nattero.cli", "user", "add", staff, "--role",
                    "staff", "--site", site, "--password-stdin"], input=staff_password + "\n",
                   text=True, check=True, capture_output=True)
    load_user, load_password = f"bench-load-{site}", uuid.uuid4().hex
    with BrokerAccounts(host, port, settings.broker_admin_account()) as accounts:
        accounts.create_bridge_account(load_user, load_password, [f"nattero/v1/{site}/#"],
                                       client_id=load_user)

    api_port = args.port
    env = {**os.environ, "NATTERO_GATEWAY_SITES": json.dumps([site]),
           "NATTERO_GATEWAY_CLIENT_ID": f"bench-{site}", "NATTERO_GATEWAY_BRIDGES": "false"}
    serve = [sys.executable, "-m", "nattero.cli", "serve", "--port", str(api_port)]
    trace: Path | None = Path(args.trace) if args.trace else None
    log_to: Any = subprocess.DEVNULL
    if trace is not None:
        trace.mkdir(parents=True, exist_ok=True)
        log_to = (trace / f"run-{index}-server.log").open("wb")
    pipeline: subprocess.Popen[bytes] | None = None
    if args.split:
        serve.append("--no-pipeline")
        pipeline = subprocess.Popen([sys.executable, "-m", "nattero.cli", "pipeline"], env=env,
                                    stderr=log_to, stdout=subprocess.DEVNULL)
    server = subprocess.Popen(serve, env=env, stderr=log_to, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{api_port}"
    loader: multiprocessing.Process | None = None
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        token = httpx.post(base + "/api/v1/auth/token",
                           data={"username": staff, "password": staff_password}
                           ).json()["access_token"]
        loader = multiprocessing.Process(target=background_load, daemon=True, args=(
            host, port, load_user, load_password, site, args.devices, args.rate))
        loader.start()
        # Unthreaded: a publish leaves at once, instead of waiting for a paho thread to get
        # the GIL from this process's 200 WebSocket clients (that wait is not Nattero's).
        device = mqtt_client(host, port, door.username, door.password, threaded=False)
        pumping = asyncio.create_task(pump(device))

        async def measure(clients: int, alerts: int, offset: int
                          ) -> tuple[list[dict[str, float]], dict[str, float]]:
            received: list[dict[str, float]] = [{} for _ in range(clients)]
            sockets = [await websockets.connect(
                f"ws://127.0.0.1:{api_port}/api/v1/alerts/stream", max_size=None,
                compression=None)
                for _ in range(clients)]
            for ws in sockets:  # the token in the first message, never in the URL
                await ws.send(json.dumps({"type": "auth", "token": token}))

            async def listen(index: int, ws: Any) -> None:
                async for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "change" and message["change"] == "raised":
                        received[index].setdefault(message["alert"]["first_ts"], time.time())

            listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
            # Warm-up (not measured): the first alert after start-up pays one-off costs
            # (connections, plans; and after an earlier bench's cleanup, the listener's
            # 1.5 s wait for change numbers whose rows were deleted).
            for kind in ("door.open", "door.closed"):
                device.publish(f"nattero/v1/{site}/exit-door/events", json.dumps(
                    {"id": f"warm-{offset}-{kind}", "ts": iso(datetime.now(UTC)),
                     "kind": kind}), qos=1)
                await asyncio.sleep(1)
            sent: dict[str, float] = {}
            for n in range(offset, offset + alerts):
                ts = datetime.now(UTC)
                sent_at = time.time()
                device.publish(f"nattero/v1/{site}/exit-door/events", json.dumps(
                    {"id": f"open-{n}", "ts": iso(ts), "kind": "door.open"}), qos=1)
                sent[ts.isoformat()] = sent_at
                await asyncio.sleep(0.15)
                device.publish(f"nattero/v1/{site}/exit-door/events", json.dumps(
                    {"id": f"close-{n}", "ts": iso(ts + timedelta(milliseconds=5)),
                     "kind": "door.closed"}), qos=1)
                await asyncio.sleep(args.interval - 0.15)
            await asyncio.sleep(2)
            for task in listeners:
                task.cancel()
            for ws in sockets:
                await ws.close()
            return received, sent

        await asyncio.sleep(2)  # background load settles
        one, sent_one = await measure(1, args.alerts, 0)
        many, sent_many = await measure(args.clients, args.alerts, args.alerts)
        pumping.cancel()
    finally:
        if loader is not None:
            loader.terminate()
        for process in (server, pipeline):
            if process is not None:
                process.terminate()
                process.wait(20)
        remove_session(settings, f"bench-{site}")
        if not args.keep:
            remove_site(settings, site)

    def latencies(got: dict[str, float], sent: dict[str, float]) -> list[float]:
        out = []
        for key, at in got.items():
            sent_at = sent.get(datetime.fromisoformat(key).isoformat())
            if sent_at is not None:
                out.append((at - sent_at) * 1000)
        return out

    first = latencies(one[0], sent_one)
    every = [v for got in many for v in latencies(got, sent_many)]
    if trace is not None:
        with (trace / f"run-{index}-samples.jsonl").open("w") as out:
            for phase, got_by_client, sent in (("one", one, sent_one), ("many", many, sent_many)):
                for client, got in enumerate(got_by_client):
                    for key, at in got.items():
                        sent_at = sent.get(datetime.fromisoformat(key).isoformat())
                        if sent_at is not None:
                            out.write(json.dumps({"phase": phase, "client": client,
                                                  "sent_at": sent_at,
                                                  "ms": round((at - sent_at) * 1000, 2)}) + "\n")
    return {
        "alerts": args.alerts, "received_by_first_client": len(first),
        "p50_ms": round(statistics.median(first), 2) if first else None,
        "p99_ms": round(percentile(first, 0.99), 2) if first else None,
        "max_ms": round(max(first), 2) if first else None,
        "clients": args.clients, "deliveries": len(every),
        "all_clients_p50_ms": round(statistics.median(every), 2) if every else None,
        "all_clients_p99_ms": round(percentile(every, 0.99), 2) if every else None,
        "background_events_per_s": args.rate, "background_devices": args.devices,
        "split": args.split,
        "ok": bool(first and every) and all(
            value is not None and value < TARGETS[key] for key, value in (
                ("p50_ms", statistics.median(first) if first else None),
                ("p99_ms", percentile(first, 0.99) if first else None),
                ("all_clients_p99_ms", percentile(every, 0.99) if every else None))),
    }


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    dsn = get_settings().resolved_database_url()
    loaded: dict[str, Any] = {}
    if args.preload_events:
        loaded = preload(dsn, args.preload_events, args.preload_sites, args.preload_days)
    store = store_contents(dsn)
    runs = []
    for index in range(1, args.runs + 1):
        if args.burst_events:
            burst(dsn, args.burst_events, args.preload_days)
        result = await run(args, index)
        runs.append(result)
        print(json.dumps({"run": index, **{key: result[key] for key in (
            "p50_ms", "p99_ms", "max_ms", "all_clients_p50_ms", "all_clients_p99_ms",
            "received_by_first_client", "deliveries", "ok")}}), flush=True)
    worst = {key: max((r[key] for r in runs if r[key] is not None), default=None)
             for key in ("p50_ms", "p99_ms", "max_ms", "all_clients_p99_ms")}
    return {"runs": runs, "worst": worst, "targets": TARGETS,
            "ok": all(r["ok"] for r in runs), "store": store, **loaded,
            "burst_events": args.burst_events, "alerts": args.alerts, "clients": args.clients,
            "background_events_per_s": args.rate, "background_devices": args.devices,
            "split": args.split}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.4)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--split", action="store_true",
                        help="run the pipeline (`nattero pipeline`) and the API "
                             "(`nattero serve --no-pipeline`) as two processes")
    parser.add_argument("--keep", action="store_true", help="keep the bench site afterwards")
    parser.add_argument("--runs", type=int, default=3, help="measurements, each on a fresh "
                        "bench site and server (default 3)")
    parser.add_argument("--preload-events", type=int, default=0,
                        help="first fill the store with about this many events (0: as it is)")
    parser.add_argument("--preload-sites", type=int, default=27,
                        help="over this many provisioned sites pre-01.. (default 27)")
    parser.add_argument("--preload-days", type=int, default=28,
                        help="spread over this many past days (default 28)")
    parser.add_argument("--burst-events", type=int, default=0,
                        help="before each run, store this many events of the preloaded sites "
                             "arriving at once (a gateway's backlog after an outage)")
    parser.add_argument("--trace", metavar="DIR",
                        help="write each run's server log and timed latency samples here")
    print(json.dumps(asyncio.run(run_all(parser.parse_args()))))


if __name__ == "__main__":
    main()
