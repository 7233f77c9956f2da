"""The private local stack: idempotent start, TimescaleDB present, broker closed to strangers."""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.settings import Settings, StackInfo
from deploy import stack as local_stack


def test_up_again_returns_the_same_info_and_keeps_running(
        stack: StackInfo, settings: Settings) -> None:
    assert local_stack.up(settings) == stack
    assert local_stack.up(settings) == stack
    assert settings.stack() == stack
    status = local_stack.status(settings)
    assert status["database"]["running"] is True  # type: ignore[index]
    assert status["broker"]["running"] is True  # type: ignore[index]


def test_gateway_client_id_is_random_and_kept_and_an_old_stack_file_gets_one(
        stack: StackInfo, settings: Settings) -> None:
    assert stack.gateway_client_id is not None
    assert re.fullmatch(r"nattero-gateway-[0-9a-f]{32}", stack.gateway_client_id)
    assert settings.resolved_gateway_client_id() == stack.gateway_client_id
    original = settings.stack_file.read_text()
    old = json.loads(original)
    del old["gateway_client_id"]  # a stack file written before the client id was random
    try:
        settings.stack_file.write_text(json.dumps(old))
        upgraded = local_stack.up(settings)
        assert upgraded.gateway_client_id not in (None, stack.gateway_client_id)
        assert local_stack.up(settings) == upgraded
    finally:
        settings.stack_file.write_text(original)


def test_up_restarts_a_broker_started_with_an_older_configuration(
        stack: StackInfo, settings: Settings) -> None:
    # A broker keeps the limits it started with (max_packet_size is read only at start):
    # after an upgrade changed the configuration, `nattero up` must not leave it running.
    conf = settings.state_dir / "mosquitto" / "mosquitto.conf"
    pid_file = settings.state_dir / "mosquitto" / "mosquitto.pid"
    current = conf.read_text()
    before = pid_file.read_text().strip()
    conf.write_text(current.replace("max_packet_size 1048576", "max_packet_size 10485760"))
    assert local_stack.up(settings) == stack
    assert conf.read_text() == current
    assert pid_file.read_text().strip() != before
    assert local_stack.status(settings)["broker"]["running"] is True  # type: ignore[index]
    unchanged = pid_file.read_text().strip()
    assert local_stack.up(settings) == stack
    assert pid_file.read_text().strip() == unchanged  # same configuration: left running


def test_database_has_the_timescaledb_extension(stack: StackInfo) -> None:
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                             "WHERE datname = current_database()").fetchone()
    assert row is not None
    assert owner == ("nattero",)


def test_broker_refuses_anonymous_connections(stack: StackInfo) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"anon-{uuid.uuid4().hex}",
                         protocol=mqtt.MQTTv5)
    answered = threading.Event()
    codes: list[int] = []

    def on_connect(_c: object, _u: object, _f: object, reason: ReasonCode,
                   _p: object) -> None:
        codes.append(reason.value)
        answered.set()

    client.on_connect = on_connect
    client.connect(stack.mqtt_host, stack.mqtt_port)
    client.loop_start()
    try:
        assert answered.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    assert codes[0] in (134, 135)  # bad user name or password / not authorised


def test_up_without_the_installed_packages_says_to_run_install_sh(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local_stack, "DYNSEC_PLUGIN", tmp_path / "mosquitto_dynamic_security.so")
    with pytest.raises(local_stack.StackError, match=r"deploy/install\.sh"):
        local_stack.up(settings)
