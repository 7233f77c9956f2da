"""Benchmark: occupancy exports over a simulated year of five pilot sites.

    python bench/export.py [--events N] [--regenerate]

Against the local stack of ``nattero up`` (``core.settings.get_settings()``). Five
bench sites (``bench-<profile>``, rooms and devices from the simulator profiles) get a
year (2025) of synthetic events, generated inside PostgreSQL (``INSERT .. SELECT`` over
``generate_series``): heartbeats and, mostly at night, door/bed/motion events. Generation
is skipped when the sites already hold the requested number of events. Then it times

- one site-month (2025-03) at 15-minute buckets, site level and room level (CSV), and
- the five-site year at 1-hour buckets, site level (CSV and Parquet),

streaming each to a byte counter. Before the exports the rollups are refreshed
(``ingest.rollups``; a full build after generation), and that time is reported apart
(``rollup_refresh_s``); the exports then read the rollups (``*_source``). ``--raw`` also
times the five-site year from the raw events (the path used when the rollups do not cover a
request). The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from core.settings import get_settings
from evaluation.exports import export_bytes, prepare_export
from evaluation.formats import ExportFormat
from evaluation.occupancy import Bucket, Level, OccupancyRequest, Source
from evaluation.period import Period
from ingest import rollups
from ingest.installation import signing_secret
from simulators import all_profiles

YEAR = Period(date(2025, 1, 1), date(2025, 12, 31))
MONTH = Period(date(2025, 3, 1), date(2025, 3, 31))
DEFAULT_EVENTS = 10_000_000

# One device's events in one month: evenly spaced slots with jitter; a slot is a heartbeat
# by day and, at night (22-07 local), an activity event of the device's kind one time in 4.
_GENERATE = """
INSERT INTO events (site, device, event_id, ts, room, kind, battery, received_at)
SELECT d.site, d.id, 'b' || extract(epoch FROM slot.ts)::bigint || '-' || slot.n, slot.ts,
       d.room,
       CASE WHEN extract(hour FROM slot.ts AT TIME ZONE 'Europe/Copenhagen') BETWEEN 7 AND 21
                 OR random() > 0.25 THEN 'heartbeat'
            WHEN d.kind = 'door' THEN (ARRAY['door.open', 'door.closed'])[1 + (slot.n %% 2)]
            WHEN d.kind = 'bed' THEN (ARRAY['bed.exit', 'bed.enter'])[1 + (slot.n %% 2)]
            WHEN d.kind = 'motion' THEN 'motion'
            ELSE (ARRAY['door.open', 'door.closed'])[1 + (slot.n %% 2)] END,
       NULL, clock_timestamp()
FROM devices d
CROSS JOIN LATERAL (
    SELECT n, %(start)s::timestamptz + n * %(step)s::interval
              + random() * %(step)s::interval AS ts
    FROM generate_series(0, %(slots)s - 1) AS n) AS slot
WHERE d.site = %(site)s
ON CONFLICT DO NOTHING
"""


def _provision(conn: psycopg.Connection) -> list[str]:
    sites = []
    for profile in all_profiles():
        site = f"bench-{profile.site}"[:40]
        sites.append(site)
        conn.execute("INSERT INTO sites (id, name, tz, night_start, night_end) VALUES "
                     "(%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (site, f"Bench {profile.name}", profile.tz, *profile.night.split("-")))
        for room in profile.rooms:
            conn.execute("INSERT INTO rooms (site, id, kind, label) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT DO NOTHING", (site, room.id, room.kind.value, room.label))
        for spec in profile.device_specs:
            conn.execute("INSERT INTO devices (site, id, room, kind, heartbeat_s) VALUES "
                         "(%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (site, spec.id, spec.room, spec.kind.value, spec.heartbeat_s))
    return sites


def _generate(conn: psycopg.Connection, sites: list[str], events: int) -> float:
    started = time.monotonic()
    conn.execute("DELETE FROM events WHERE site = ANY(%s)", (sites,))
    devices = conn.execute("SELECT count(*) FROM devices WHERE site = ANY(%s)",
                           (sites,)).fetchone()
    assert devices is not None
    per_device_month = max(1, events // (devices[0] * 12))
    for site in sites:
        for month in range(1, 13):
            start = date(2025, month, 1)
            end = date(2025 + month // 12, month % 12 + 1, 1)
            seconds = (end - start).days * 86400 / per_device_month
            conn.execute(_GENERATE, {"site": site, "start": start.isoformat() + "T00:00+01",
                                     "step": f"{seconds} seconds",
                                     "slots": per_device_month})
            print(f"generated {site} 2025-{month:02d}", file=sys.stderr, flush=True)
    conn.execute("ANALYZE events")
    return time.monotonic() - started


def _time_export(conn: psycopg.Connection, request: OccupancyRequest,
                 fmt: ExportFormat, source: Source = Source.AUTO) -> dict[str, Any]:
    started = time.monotonic()
    prepared = prepare_export(conn, request, fmt)
    size = sum(len(chunk) for chunk in export_bytes(conn, prepared,
                                                    signing_secret(conn,
                                                                   get_settings().secret_key),
                                                    source))
    used = sorted(set(prepared.manifest.sources.values()))
    return {"seconds": round(time.monotonic() - started, 2), "rows": prepared.manifest.rows,
            "bytes": size, "source": used[0] if len(used) == 1 else used}


def _rollup_rows(conn_url: str) -> dict[str, int]:
    with psycopg.connect(conn_url, autocommit=True) as conn:
        return {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
                for table in ("event_rollup", "event_rollup_1h", "event_rollup_out")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"events to generate for the year (default {DEFAULT_EVENTS:,})")
    parser.add_argument("--regenerate", action="store_true", help="generate even if present")
    parser.add_argument("--rebuild", action="store_true",
                        help="rebuild the rollups from scratch even without new events")
    parser.add_argument("--raw", action="store_true",
                        help="also time the five-site year from the raw events")
    args = parser.parse_args()
    with psycopg.connect(get_settings().resolved_database_url(), autocommit=True) as conn:
        if rollups.read_state(conn) is None:
            sys.exit("the schema predates the rollups (migration 0004); run `nattero migrate`")
        sites = _provision(conn)
        row = conn.execute("SELECT count(*) FROM events WHERE site = ANY(%s)",
                           (sites,)).fetchone()
        stored = int(row[0]) if row else 0
        generation = None
        if args.regenerate or stored < 0.9 * args.events:
            generation = round(_generate(conn, sites, args.events), 1)
            row = conn.execute("SELECT count(*) FROM events WHERE site = ANY(%s)",
                               (sites,)).fetchone()
            stored = int(row[0]) if row else 0
        # After generating, a full build is quicker than the incremental path over every
        # bucket of the year.
        refresh = rollups.refresh(conn, rebuild=args.rebuild or generation is not None)
        for table in ("event_rollup", "event_rollup_1h", "event_rollup_out"):
            conn.execute(f"VACUUM ANALYZE {table}")
        month_site = _time_export(conn, OccupancyRequest((sites[0],), MONTH, Level.SITE,
                                                         Bucket.QUARTER), ExportFormat.CSV)
        month_room = _time_export(conn, OccupancyRequest((sites[0],), MONTH, Level.ROOM,
                                                         Bucket.QUARTER,
                                                         reason="bench/export.py timing"),
                                  ExportFormat.CSV)
        year_csv = _time_export(conn, OccupancyRequest(tuple(sites), YEAR, Level.SITE,
                                                       Bucket.HOUR), ExportFormat.CSV)
        year_parquet = _time_export(conn, OccupancyRequest(tuple(sites), YEAR, Level.SITE,
                                                           Bucket.HOUR), ExportFormat.PARQUET)
        year_raw = (_time_export(conn, OccupancyRequest(tuple(sites), YEAR, Level.SITE,
                                                        Bucket.HOUR), ExportFormat.CSV,
                                 Source.EVENTS) if args.raw else None)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "events": stored, "generation_s": generation,
        "rollup_refresh_s": refresh.seconds, "rollup_full_build": refresh.full,
        "rollup_rows": _rollup_rows(conn_url=get_settings().resolved_database_url()),
        "site_month_15m_source": month_site["source"],
        "five_site_year_1h_source": year_csv["source"],
        "five_site_year_1h_raw_s": year_raw["seconds"] if year_raw else None,
        "site_month_15m_s": month_site["seconds"], "site_month_15m_rows": month_site["rows"],
        "site_month_15m_room_level_s": month_room["seconds"],
        "site_month_15m_room_level_rows": month_room["rows"],
        "five_site_year_1h_s": year_csv["seconds"], "five_site_year_1h_rows": year_csv["rows"],
        "five_site_year_1h_parquet_s": year_parquet["seconds"],
        "peak_rss_mb": round(peak_mb, 1),
        "targets": {"site_month_15m_s": 2.0, "five_site_year_1h_s": 10.0, "peak_rss_mb": 300},
        "ok": month_site["seconds"] < 2.0 and year_csv["seconds"] < 10.0 and peak_mb < 300}))


if __name__ == "__main__":
    main()
