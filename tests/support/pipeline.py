"""In-process gateways and gateway+rules pipelines restricted to given sites (so tests
side by side never consume each other's events); stopped at teardown."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from core.settings import Settings, StackInfo
from tests.support.store import unique


def gateway_env(*sites: str) -> dict[str, str]:
    """Environment for a gateway that serves only these sites (tests run side by side)."""
    return {"NATTERO_GATEWAY_SITES": json.dumps(list(sites)),
            "NATTERO_GATEWAY_CLIENT_ID": unique("gw"),
            "NATTERO_GATEWAY_SESSION_EXPIRY_S": "600",
            "NATTERO_GATEWAY_BRIDGES": "false"}


def _gateway_settings(*sites: str) -> Settings:
    return Settings(gateway_sites=list(sites),
                    gateway_client_id=gateway_env(*sites)["NATTERO_GATEWAY_CLIENT_ID"],
                    gateway_session_expiry_s=600, gateway_bridges=False)


@pytest.fixture
def run_gateway(migrated: StackInfo) -> Iterator[Callable[..., object]]:
    from gateway.service import Gateway

    started: list[Gateway] = []

    def start(*sites: str) -> Gateway:
        gateway = Gateway(_gateway_settings(*sites))
        gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def run_pipeline(migrated: StackInfo) -> Iterator[Callable[..., object]]:
    from nattero.pipeline import start_pipeline

    started: list[object] = []

    def start(*sites: str) -> object:
        running = start_pipeline(_gateway_settings(*sites))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()  # type: ignore[attr-defined]
