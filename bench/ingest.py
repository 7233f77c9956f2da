"""Ingest throughput: events published by many devices -> committed in TimescaleDB.

Runs against the local stack (`nattero up`): provisions a fresh bench site with D devices,
starts `nattero gateway` as its own process (restricted to that site), publishes N events
with the real `mosquitto_pub` client (one process per device, QoS 1, each with the device's
own credentials) and polls the store until every event is committed.

Prints one JSON object as the last line (keys in bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import provisioning  # noqa: E402
from bench.cleanup import remove_session, remove_site  # noqa: E402
from core.events import DeviceKind, RoomKind  # noqa: E402
from core.settings import get_settings  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=50)
    args = parser.parse_args()
    settings = get_settings()
    dsn = settings.resolved_database_url()
    host, port = settings.broker_address()
    site = f"bench-{uuid.uuid4().hex[:6]}"
    provisioning.add_site(settings, site, "Bench")
    provisioning.add_room(settings, site, "lounge", RoomKind.COMMON, "Bench room")
    creds = [provisioning.add_device(settings, site, f"d{n}", "lounge", DeviceKind.MOTION)
             for n in range(args.devices)]
    per_device = args.events // args.devices
    total = per_device * args.devices

    env = {**os.environ, "NATTERO_GATEWAY_SITES": json.dumps([site]),
           "NATTERO_GATEWAY_CLIENT_ID": f"bench-{site}", "NATTERO_GATEWAY_BRIDGES": "false",
           "NATTERO_GATEWAY_SESSION_EXPIRY_S": "300"}
    gateway = subprocess.Popen([sys.executable, "-m", "nattero.cli", "gateway"], env=env,
                               stderr=subprocess.DEVNULL)
    workdir = Path(tempfile.mkdtemp(prefix="nattero-bench-"))
    base = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    files = []
    for n in range(args.devices):
        path = workdir / f"d{n}.jsonl"
        with path.open("w") as out:
            for i in range(per_device):
                ts = (base + timedelta(milliseconds=i * 10)).isoformat().replace("+00:00", "Z")
                out.write(json.dumps({"id": f"{n}-{i}", "ts": ts, "kind": "motion",
                                      "battery": 90}) + "\n")
        files.append(path)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Wait for the gateway's subscription: a retained status from one device.
            subprocess.run(["mosquitto_pub", "-h", host, "-p", str(port), "-u", creds[0].username,
                            "-i", creds[0].client_id, "-P", creds[0].password, "-q", "1", "-r",
                            "-t", f"nattero/v1/{site}/d0/status", "-m", "online"], check=True)
            deadline = time.monotonic() + 30
            while conn.execute("SELECT presence FROM devices WHERE site=%s AND id='d0'",
                               (site,)).fetchone()[0] != "online":
                if time.monotonic() > deadline:
                    raise SystemExit("gateway did not start; see `nattero gateway` output")
                time.sleep(0.05)
            started = time.perf_counter()
            publishers = [subprocess.Popen(
                ["mosquitto_pub", "-h", host, "-p", str(port), "-u", c.username, "-i",
                 c.client_id, "-P", c.password, "-q", "1", "-V", "mqttv5",
                 "-t", f"nattero/v1/{site}/d{n}/events", "-l"], stdin=path.open("rb"))
                for n, (c, path) in enumerate(zip(creds, files, strict=True))]
            for proc in publishers:
                proc.wait()
            published = time.perf_counter()
            stored = 0
            while stored < total:
                stored = conn.execute("SELECT count(*) FROM events WHERE site = %s",
                                      (site,)).fetchone()[0]
                if time.perf_counter() - started > 600:
                    break
                time.sleep(0.02)
            committed = time.perf_counter()
            rss = peak_rss_mb(gateway.pid)
    finally:
        gateway.terminate()
        gateway.wait(10)
        remove_session(settings, f"bench-{site}")
        remove_site(settings, site)
    print(json.dumps({
        "events": total, "devices": args.devices, "stored": stored,
        "events_per_s": round(total / (committed - started)),
        "publish_s": round(published - started, 2),
        "end_to_end_s": round(committed - started, 2),
        "gateway_peak_rss_mb": round(rss, 1),
        "validation": True, "dedupe": True,
    }))


if __name__ == "__main__":
    main()
