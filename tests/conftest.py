"""Session fixtures: the real private stack (PostgreSQL + TimescaleDB, Mosquitto).

The stack is started once per session under ``<repo>/.nattero-test`` on its own ports and
left running at the end, so the next run reuses it (`nattero down` with the same
environment stops it). Set NATTERO_STATE_DIR / _PG_PORT / _MQTT_PORT to override.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Before anything reads settings: tests never touch a developer's own `.nattero` stack.
# Absolute, so subprocesses started in another directory find the same stack.
os.environ["NATTERO_STATE_DIR"] = str(
    Path(os.environ.get("NATTERO_STATE_DIR", REPO / ".nattero-test")).expanduser().resolve())
os.environ.setdefault("NATTERO_PG_PORT", "55433")
os.environ.setdefault("NATTERO_MQTT_PORT", "51884")
# Test data lives in past years (DST nights, 1985 retention cases): never drop it by age.
os.environ.setdefault("NATTERO_RETENTION_DAYS", "36500")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from core.settings import Settings, StackInfo, get_settings  # noqa: E402
from deploy import stack as local_stack  # noqa: E402

get_settings.cache_clear()


@pytest.fixture(scope="session")
def stack() -> StackInfo:
    """The running local stack (started if needed; left running for the next session)."""
    return local_stack.up(get_settings())


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@pytest.fixture(autouse=True)
def fail_on_thread_exception() -> Iterator[None]:
    """Fail the test if any background thread (a paho loop, a writer) died of an exception."""
    failures: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook

    def record(args: threading.ExceptHookArgs) -> None:
        failures.append(args)
        previous(args)

    threading.excepthook = record
    try:
        yield
    finally:
        threading.excepthook = previous
    if failures:
        first = failures[0]
        thread = first.thread.name if first.thread else "?"
        pytest.fail(f"{len(failures)} background thread(s) raised; first in {thread}: "
                    f"{first.exc_type.__name__}: {first.exc_value}", pytrace=False)


# -- store and gateway fixtures ---------------------------------------------------------
import json as _json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import date  # noqa: E402

import psycopg  # noqa: E402

from core.events import DeviceKind, RoomKind  # noqa: E402


@pytest.fixture(scope="session")
def migrated(stack: StackInfo) -> StackInfo:
    from ingest.migrate import upgrade

    upgrade(get_settings().sqlalchemy_url())
    return stack


@pytest.fixture
def db(migrated: StackInfo) -> Iterator[psycopg.Connection]:
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        yield conn


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


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


def nattero_cli(*args: str, input_text: str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `nattero` command line as a user would."""
    return subprocess.run([sys.executable, "-m", "nattero.cli", *args], capture_output=True,
                          text=True, input=input_text, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=REPO)


def wait_until(predicate: Callable[[], bool], timeout: float = 20, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def gateway_env(*sites: str) -> dict[str, str]:
    """Environment for a gateway that serves only these sites (tests run side by side)."""
    return {"NATTERO_GATEWAY_SITES": _json.dumps(list(sites)),
            "NATTERO_GATEWAY_CLIENT_ID": unique("gw"),
            "NATTERO_GATEWAY_SESSION_EXPIRY_S": "600",
            "NATTERO_GATEWAY_BRIDGES": "false"}


@pytest.fixture
def run_gateway(migrated: StackInfo) -> Iterator[Callable[..., object]]:
    """Start in-process gateways restricted to the given sites; stopped at teardown."""
    from gateway.service import Gateway

    started: list[Gateway] = []

    def start(*sites: str) -> Gateway:
        env = gateway_env(*sites)
        settings = Settings(gateway_sites=list(sites), gateway_client_id=env[
            "NATTERO_GATEWAY_CLIENT_ID"], gateway_session_expiry_s=600, gateway_bridges=False)
        gateway = Gateway(settings)
        gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def run_pipeline(migrated: StackInfo) -> Iterator[Callable[..., object]]:
    """Start in-process gateway + rules restricted to the given sites; stopped at teardown."""
    from nattero.pipeline import start_pipeline

    started: list[object] = []

    def start(*sites: str) -> object:
        env = gateway_env(*sites)
        settings = Settings(gateway_sites=list(sites), gateway_client_id=env[
            "NATTERO_GATEWAY_CLIENT_ID"], gateway_session_expiry_s=600, gateway_bridges=False)
        running = start_pipeline(settings)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()  # type: ignore[attr-defined]
