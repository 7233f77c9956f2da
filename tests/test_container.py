"""The Dockerfile and deploy/compose.yaml: read as an IT department would before approving
them (pinned images, non-root, only TLS published, healthchecks, log limits, the one-shot
set-up by Nattero), checked by ``docker compose config`` where the Compose plugin is
installed, and the image built and smoke-tested where a Docker daemon answers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import StackInfo

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "deploy" / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV = {"POSTGRES_PASSWORD": "p" * 32, "NATTERO_BROKER_ADMIN_PASSWORD": "a" * 32,
       "NATTERO_GATEWAY_PASSWORD": "g" * 32,
       "NATTERO_GATEWAY_CLIENT_ID": "nattero-gateway-" + "0" * 32,
       "NATTERO_METRICS_TOKEN": "m" * 40, "NATTERO_PUBLIC_HOST": "nattero.example"}
# An exact release (2.17.2-pg15, 2.0.20, 3.11.11-slim-bookworm) or a digest: never
# `latest`, a major alone (`2`) or a floating `-pg15`.
EXACT_TAG = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")
TLS_PORTS = {"8883", "8443"}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _pinned(image: str) -> bool:
    return bool(EXACT_TAG.match(image)) and (":" in image.split("/")[-1] or "@" in image)


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.pure
def test_compose_pins_every_image_to_an_exact_release() -> None:
    images = {name: service["image"] for name, service in _compose()["services"].items()
              if "image" in service}
    assert images["db"].startswith("timescale/timescaledb:") and images["db"].endswith("-pg15")
    assert images["broker"].startswith("eclipse-mosquitto:2.")
    for name, image in images.items():
        assert _pinned(image), f"{name}: {image} is not an exact release"
    assert not _pinned("timescale/timescaledb:latest-pg15")
    assert not _pinned("eclipse-mosquitto:2")


@pytest.mark.pure
def test_compose_publishes_only_tls_ports() -> None:
    published = {name: [str(port).split(":")[-2] if str(port).count(":") else str(port)
                        for port in service.get("ports", [])]
                 for name, service in _compose()["services"].items()}
    assert published["broker"] == ["8883"] and published["nattero"] == ["8443"]
    assert set().union(*published.values()) <= TLS_PORTS, published
    config = _compose()["configs"]["mosquitto-conf"]["content"]
    tls_listener = config.split("listener 8883", 1)[1]
    assert re.search(r"^certfile ", tls_listener, re.M) and "tls_version tlsv1.2" in tls_listener
    assert "allow_anonymous false" in config


@pytest.mark.pure
def test_compose_services_have_healthchecks_log_limits_and_a_one_shot_set_up() -> None:
    services = _compose()["services"]
    for name in ("db", "broker", "nattero"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "unless-stopped", name
    for name, service in services.items():
        options = service["logging"]["options"]
        assert service["logging"]["driver"] == "json-file" and options["max-size"], name
        assert int(options["max-file"]) >= 1, name
    # Set-up by Nattero itself: its CA and certificates, then the schema and the gateway's
    # broker account, before the app starts.
    assert services["bootstrap"]["command"] == ["nattero", "bootstrap"]
    assert services["bootstrap"]["restart"] == "no"
    assert "nattero certs ca" in services["certs"]["command"][0]
    assert services["nattero"]["depends_on"]["bootstrap"]["condition"] == (
        "service_completed_successfully")
    assert services["bootstrap"]["depends_on"]["broker"]["condition"] == "service_healthy"


@pytest.mark.pure
def test_the_dockerfile_pins_its_base_runs_as_a_user_and_installs_the_wheel() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base is not None and _pinned(base.group(1)), base
    assert "-slim" in base.group(1)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert "pip wheel" in text and "pip install --no-index --find-links /wheels nattero" in text
    # Everything the wheel packages is copied into the build stage.
    packages = re.search(r'include = \[([^\]]+)\]', (REPO / "pyproject.toml").read_text())
    assert packages is not None
    for package in re.findall(r'"(\w+)\*?"', packages.group(1)):
        assert f"COPY {package} {package}" in text, package


def test_nattero_bootstrap_migrates_and_creates_the_gateway_account_once(
        migrated: StackInfo) -> None:
    from provisioning.broker_accounts import BrokerAccounts

    username = f"gw-boot-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "NATTERO_GATEWAY_USERNAME": username,
           "NATTERO_GATEWAY_PASSWORD": uuid.uuid4().hex,
           "NATTERO_DATABASE_URL": migrated.database_url,
           "NATTERO_BROKER_ADMIN_USERNAME": migrated.broker_admin.username,
           "NATTERO_BROKER_ADMIN_PASSWORD": migrated.broker_admin.password}
    nattero = [str(Path(sys.executable).parent / "nattero"), "bootstrap", "--json"]
    first = subprocess.run(nattero, env=env, capture_output=True, text=True, timeout=120,
                           check=False)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["gateway_account"] == "created"
    again = subprocess.run(nattero, env=env, capture_output=True, text=True, timeout=120,
                           check=False)
    assert json.loads(again.stdout)["gateway_account"] == "exists", again.stderr
    with BrokerAccounts(migrated.mqtt_host, migrated.mqtt_port, migrated.broker_admin) as broker:
        assert broker.account_exists(username)
        broker.delete_account(username)


def test_docker_compose_config_accepts_the_file() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI; install Docker with the Compose plugin to validate")
    version = _docker("compose", "version")
    if version.returncode != 0:
        pytest.skip("the docker CLI has no Compose plugin (`docker compose version`: "
                    f"{(version.stderr or version.stdout).strip().splitlines()[0]}); validate with "
                    "`docker compose -f deploy/compose.yaml --env-file deploy/.env config -q`")
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--format",
                             "json"], capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, **ENV})
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert set(rendered["services"]) >= {"db", "broker", "nattero", "bootstrap", "certs"}


@pytest.mark.slow
def test_the_image_builds_and_serves_the_board_files() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI here; build by hand: docker build -t nattero:test .")
    info = _docker("info", "--format", "{{.ServerVersion}}")
    if info.returncode != 0:
        pytest.skip("no Docker daemon answers (`docker info`: "
                    f"{(info.stderr or info.stdout).strip()[:200]}); where one does: "
                    "docker build -t nattero:test . && docker run --rm nattero:test "
                    "nattero --version")
    tag = f"nattero:test-{uuid.uuid4().hex[:8]}"
    built = _docker("build", "-t", tag, str(REPO), timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        version = _docker("run", "--rm", tag, "nattero", "--version")
        assert version.returncode == 0 and version.stdout.startswith("nattero "), version
        whoami = _docker("run", "--rm", tag, "id", "-u")
        assert whoami.stdout.strip() == "10001", whoami
        board = _docker("run", "--rm", tag, "python", "-c",
                        "from api.app import dashboard_dir; print(dashboard_dir())")
        assert board.returncode == 0 and "site-packages/dashboard" in board.stdout, board
    finally:
        _docker("image", "rm", "-f", tag)
