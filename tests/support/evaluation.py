"""Export and report tests' world: a simulated month of two pilot sites, in the store.

Publishing a month through MQTT would take far too long for a test, so the simulator's
planned events (``simulators.behaviour.plan_night``) are COPYed straight into ``events``,
under fresh site ids so tests can run side by side. Alerts with outcomes are inserted the
way the rules engine and night staff leave them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import httpx
import psycopg
import pytest

from core.settings import StackInfo
from simulators import SiteProfile, load_profile, plan_night
from simulators.plan import EventDelivery
from tests.support.api import ApiServer
from tests.support.store import unique

FIRST_NIGHT = date(2026, 10, 1)
NIGHTS = 30
PROFILES = ("solsikken", "egely")
OUTCOMES = ("help_given", "no_action_needed", "false_alarm")
RESIDENT_RULES = ("left_flat", "bed_exit_not_back", "common_motion")


@dataclass(frozen=True)
class SimulatedSite:
    id: str
    profile: SiteProfile


@dataclass(frozen=True)
class SimulatedMonth:
    sites: tuple[SimulatedSite, ...]
    first: date
    last: date

    @property
    def site_ids(self) -> list[str]:
        return [s.id for s in self.sites]


def provision(conn: psycopg.Connection, profile: SiteProfile) -> None:
    """The profile's site, rooms and devices as rows (no broker accounts: nothing publishes)."""
    with conn.transaction():
        conn.execute("INSERT INTO sites (id, name, tz, night_start, night_end) "
                     "VALUES (%s, %s, %s, %s, %s)",
                     (profile.site, profile.name, profile.tz, *profile.night.split("-")))
        for room in profile.rooms:
            conn.execute("INSERT INTO rooms (site, id, kind, label) VALUES (%s, %s, %s, %s)",
                         (profile.site, room.id, room.kind.value, room.label))
        for spec in profile.device_specs:
            conn.execute("INSERT INTO devices (site, id, room, kind, heartbeat_s) "
                         "VALUES (%s, %s, %s, %s, %s)",
                         (profile.site, spec.id, spec.room, spec.kind.value, spec.heartbeat_s))


def load_nights(conn: psycopg.Connection, profile: SiteProfile, first: date, nights: int,
                seed: int = 7, planned_as: str | None = None) -> int:
    """COPY the planned events of ``nights`` nights into ``events``; returns how many.

    ``planned_as``: the site name the nights are drawn for (the random streams are named
    by it), so a site stored under a unique id gets the same nights in every session."""
    plan_profile = profile if planned_as is None else profile.model_copy(
        update={"site": planned_as})
    rooms = {spec.id: spec.room for spec in profile.device_specs}
    seen: set[tuple[str, str]] = set()
    stored = 0
    with conn.transaction(), conn.cursor() as cur, cur.copy(
            "COPY events (site, device, event_id, ts, room, kind, battery, received_at) "
            "FROM STDIN") as copy:
        for i in range(nights):
            plan = plan_night(plan_profile, first + timedelta(days=i), seed)
            for delivery in plan.deliveries:
                if not isinstance(delivery, EventDelivery):
                    continue
                payload = delivery.payload
                key = (delivery.device, payload["id"])
                if key in seen:  # a duplicate resend: the store keeps one
                    continue
                seen.add(key)
                ts = datetime.fromisoformat(payload["ts"].replace("Z", "+00:00"))
                copy.write_row((profile.site, delivery.device, payload["id"], ts,
                                rooms[delivery.device], payload["kind"], payload.get("battery"),
                                delivery.at))
                stored += 1
    return stored


def insert_alerts(conn: psycopg.Connection, profile: SiteProfile, first: date, nights: int,
                  seed: int = 11, planned_as: str | None = None) -> int:
    """A few calls a night with acknowledge/resolve times and outcomes; returns how many."""
    rng = random.Random(f"{planned_as or profile.site}-{seed}")
    flats = [r.id for r in profile.rooms if r.kind.value == "flat"]
    commons = [r.id for r in profile.rooms if r.kind.value == "common"]
    count = 0
    with conn.transaction():
        for i in range(nights):
            start, _ = profile.night_window(first + timedelta(days=i))
            for n in range(rng.randint(1, 4)):
                rule = rng.choice(RESIDENT_RULES)
                room = rng.choice(commons if rule == "common_motion" else flats)
                first_ts = start + timedelta(minutes=rng.uniform(20, 500))
                raised = first_ts + timedelta(seconds=rng.uniform(0, 2))
                acked = raised + timedelta(seconds=rng.uniform(20, 400))
                resolved = acked + timedelta(seconds=rng.uniform(120, 1200))
                conn.execute(
                    "INSERT INTO alerts (site, room, rule, severity, episode_key, status, "
                    "first_ts, last_ts, raised_at, called_at, acknowledged_by, "
                    "acknowledged_at, resolved_by, resolved_at, outcome) VALUES (%s, %s, %s, "
                    "'normal', %s, 'resolved', %s, %s, %s, %s, 'nat', %s, 'nat', %s, %s)",
                    (profile.site, room, rule, f"{profile.site}:{i}:{n}", first_ts, first_ts,
                     raised, first_ts, acked, resolved, rng.choice(OUTCOMES)))
                count += 1
            if i % 7 == 3:  # now and then a sensor drops out, and clears by itself
                device = rng.choice(profile.device_specs)
                at = start + timedelta(hours=2)
                conn.execute(
                    "INSERT INTO alerts (site, room, device, rule, severity, episode_key, "
                    "status, first_ts, last_ts, raised_at, resolved_at, outcome) VALUES "
                    "(%s, %s, %s, 'sensor_offline', 'normal', %s, 'resolved', %s, %s, %s, %s, "
                    "'cleared_automatically')",
                    (profile.site, device.room, device.id, f"{profile.site}:{i}:offline",
                     at, at, at, at + timedelta(minutes=40)))
                count += 1
    return count


def simulate_site(conn: psycopg.Connection, name: str, first: date, nights: int) -> SimulatedSite:
    profile = load_profile(name).model_copy(update={"site": unique("ev")})
    provision(conn, profile)
    # Drawn as the bundled site: the same nights every session (the exports' tests rely on
    # a few quarter hours of solsikken's month with fewer than k rooms reporting).
    load_nights(conn, profile, first, nights, planned_as=name)
    insert_alerts(conn, profile, first, nights, planned_as=name)
    return SimulatedSite(profile.site, profile)


@pytest.fixture(scope="session")
def simulated_month(migrated: StackInfo) -> SimulatedMonth:
    """Two pilot sites, thirty nights each, stored once per session."""
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        sites = tuple(simulate_site(conn, name, FIRST_NIGHT, NIGHTS) for name in PROFILES)
    return SimulatedMonth(sites, FIRST_NIGHT, FIRST_NIGHT + timedelta(days=NIGHTS - 1))



@pytest.fixture
def ev_http(api_server: ApiServer) -> Iterator[httpx.Client]:
    """A client of the session's API with time for exports and reports (up to 60 s). It
    asks for English, the alternative; the Danish default is tested in test_report.py."""
    with httpx.Client(base_url=api_server.url, timeout=60,
                      headers={"Accept-Language": "en"}) as client:
        yield client
