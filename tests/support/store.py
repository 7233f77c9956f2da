"""The real private stack (PostgreSQL + TimescaleDB, Mosquitto), once per session, and a
fresh site per test so tests can run in any order and side by side."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date

import psycopg
import pytest

from core.events import DeviceKind, RoomKind
from core.settings import Settings, StackInfo, get_settings
from deploy import stack as local_stack


def unique(prefix: str) -> str:
    """A fresh id (site, user, client) so tests never share rows."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def stack() -> StackInfo:
    """The running local stack (started if needed; left running for the next session)."""
    return local_stack.up(get_settings())


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def migrated(stack: StackInfo) -> StackInfo:
    from ingest.migrate import upgrade

    upgrade(get_settings().sqlalchemy_url())
    return stack


@pytest.fixture
def db(migrated: StackInfo) -> Iterator[psycopg.Connection]:
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def site(migrated: StackInfo) -> str:
    """A fresh site with one flat (`f1`, with consent), a common room and an exit."""
    import provisioning

    site_id = unique("t")
    settings = get_settings()
    provisioning.add_site(settings, site_id, "Testhjemmet")
    provisioning.add_room(settings, site_id, "f1", RoomKind.FLAT, "Lejlighed 1")
    provisioning.record_basis(settings, site_id, "f1", consent=True, valid_from=date(2020, 1, 1))
    provisioning.add_room(settings, site_id, "lounge", RoomKind.COMMON, "Dagligstue")
    provisioning.add_room(settings, site_id, "exit", RoomKind.EXIT, "Hoveddør")
    return site_id


@pytest.fixture
def add_device(migrated: StackInfo) -> Callable[..., tuple[str, str]]:
    """Provision a device; returns (username, password)."""
    import provisioning

    def add(site_id: str, device: str, room: str = "f1", kind: DeviceKind = DeviceKind.DOOR,
            heartbeat_s: int = 300) -> tuple[str, str]:
        creds = provisioning.add_device(get_settings(), site_id, device, room, kind, heartbeat_s)
        return creds.username, creds.password

    return add


def night_around_now(db: psycopg.Connection, site: str) -> None:
    """Give ``site`` a night window from three hours ago to three hours ahead (local time),
    for tests on live time: with the default 22:00-07:00 they would pass only at night."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    (tz,) = db.execute("SELECT tz FROM sites WHERE id = %s", (site,)).fetchone() or ("UTC",)
    now = datetime.now(UTC).astimezone(ZoneInfo(tz))
    start, end = (now - timedelta(hours=3)).time(), (now + timedelta(hours=3)).time()
    db.execute("UPDATE sites SET night_start = %s, night_end = %s WHERE id = %s",
               (start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0),
                site))
