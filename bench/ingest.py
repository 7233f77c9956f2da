"""Ingest throughput: events published by many devices -> committed in TimescaleDB.

Runs against the local stack (`nattero up`): provisions a fresh bench site with D motion
sensors in one common room, starts `nattero gateway` as its own process (restricted to that
site), publishes N events with the real `mosquitto_pub` client (one process per device, QoS
1, each with the device's own credentials, all at once: the devices' streams interleave as
a reconnecting hub or bridge would flush them) and polls the store until every event is
committed.

With `--rules`, the same burst is then sent again to a second fresh site served by
`nattero pipeline` (gateway + rules engine, alerts in the writer's transaction): the
events are at night, so every one is a common-room motion trigger. It is polled until every
event is stored and every trigger is counted on the room's alert (the rules have caught up),
and then the process is stopped with SIGTERM (how long it takes is measured too).

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import provisioning  # noqa: E402
from bench.cleanup import remove_session, remove_site  # noqa: E402
from core.events import DeviceKind, RoomKind  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402

BASE = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 02:00 in Copenhagen: night
TIMEOUT_S = 600


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Run:
    stored: int
    end_to_end_s: float
    publish_s: float
    peak_rss_mb: float
    rules_s: float | None = None
    triggers: int | None = None
    stop_s: float | None = None


def burst_files(workdir: Path, devices: int, per_device: int) -> list[Path]:
    files = []
    for n in range(devices):
        path = workdir / f"d{n}.jsonl"
        with path.open("w") as out:
            for i in range(per_device):
                ts = (BASE + timedelta(milliseconds=i * 10)).isoformat().replace("+00:00", "Z")
                out.write(json.dumps({"id": f"{n}-{i}", "ts": ts, "kind": "motion",
                                      "battery": 90}) + "\n")
        files.append(path)
    return files


def measure(settings: Settings, verb: str, files: list[Path], total: int) -> Run:
    """One burst to a fresh site served by ``nattero VERB`` (gateway or pipeline)."""
    dsn = settings.resolved_database_url()
    host, port = settings.device_broker_address()  # the site hub after `nattero up --ha`
    site = f"bench-{uuid.uuid4().hex[:6]}"
    provisioning.add_site(settings, site, "Bench")
    provisioning.add_room(settings, site, "lounge", RoomKind.COMMON, "Bench room")
    creds = [provisioning.add_device(settings, site, f"d{n}", "lounge", DeviceKind.MOTION)
             for n in range(len(files))]
    env = {**os.environ, "NATTERO_GATEWAY_SITES": json.dumps([site]),
           "NATTERO_GATEWAY_CLIENT_ID": f"bench-{site}", "NATTERO_GATEWAY_BRIDGES": "false",
           "NATTERO_GATEWAY_SESSION_EXPIRY_S": "300", "NATTERO_MAINTENANCE": "off"}
    service = subprocess.Popen([sys.executable, "-m", "nattero.cli", verb], env=env,
                               stderr=subprocess.DEVNULL)
    rules_s: float | None = None
    triggers: int | None = None
    stop_s: float | None = None
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Wait for the service's subscription: a retained status from one device.
            subprocess.run(["mosquitto_pub", "-h", host, "-p", str(port), "-u", creds[0].username,
                            "-i", creds[0].client_id, "-P", creds[0].password, "-q", "1", "-r",
                            "-t", f"nattero/v1/{site}/d0/status", "-m", "online"], check=True)
            deadline = time.monotonic() + 60
            while conn.execute("SELECT presence FROM devices WHERE site=%s AND id='d0'",
                               (site,)).fetchone()[0] != "online":
                if time.monotonic() > deadline:
                    raise SystemExit(f"`nattero {verb}` did not start; run it by hand to see why")
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
            while stored < total and time.perf_counter() - started < TIMEOUT_S:
                stored = conn.execute("SELECT count(*) FROM events WHERE site = %s",
                                      (site,)).fetchone()[0]
                time.sleep(0.02)
            committed = time.perf_counter()
            if verb == "pipeline":
                triggers = 0
                while triggers < total and time.perf_counter() - started < TIMEOUT_S:
                    triggers = conn.execute(
                        "SELECT coalesce(sum(count), 0) FROM alerts WHERE site = %s "
                        "AND rule = 'common_motion'", (site,)).fetchone()[0]
                    time.sleep(0.02)
                rules_s = time.perf_counter() - started
            rss = peak_rss_mb(service.pid)
    finally:
        stopping = time.perf_counter()
        service.terminate()
        try:
            service.wait(30)
            stop_s = time.perf_counter() - stopping
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        remove_session(settings, f"bench-{site}")
        remove_site(settings, site)
    return Run(stored, committed - started, published - started, rss, rules_s, triggers,
               stop_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rules", action="store_true",
                        help="also send the same burst through `nattero pipeline`")
    args = parser.parse_args()
    settings = get_settings()
    per_device = args.events // args.devices
    total = per_device * args.devices
    files = burst_files(Path(tempfile.mkdtemp(prefix="nattero-bench-")), args.devices,
                        per_device)
    gateway = measure(settings, "gateway", files, total)
    result: dict[str, Any] = {
        "events": total, "devices": args.devices, "stored": gateway.stored,
        "events_per_s": round(total / gateway.end_to_end_s),
        "publish_s": round(gateway.publish_s, 2),
        "end_to_end_s": round(gateway.end_to_end_s, 2),
        "gateway_peak_rss_mb": round(gateway.peak_rss_mb, 1),
        "validation": True, "dedupe": True,
    }
    if args.rules:
        pipeline = measure(settings, "pipeline", files, total)
        assert pipeline.rules_s is not None
        rules_rate = total / pipeline.rules_s
        result["rules"] = {
            "stored": pipeline.stored, "triggers": pipeline.triggers,
            "stored_per_s": round(total / pipeline.end_to_end_s),
            "events_per_s": round(rules_rate),
            "end_to_end_s": round(pipeline.end_to_end_s, 2),
            "rules_s": round(pipeline.rules_s, 2),
            "publish_s": round(pipeline.publish_s, 2),
            "peak_rss_mb": round(pipeline.peak_rss_mb, 1),
            "stop_s": None if pipeline.stop_s is None else round(pipeline.stop_s, 2),
            "vs_gateway": round(rules_rate / result["events_per_s"], 2),
            "target": 0.8,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
