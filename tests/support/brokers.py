"""Redundant brokers beside the test stack (issue 18 §3): two central brokers and a site
hub bridged to both, as `nattero up --ha` starts them (``deploy.brokers``), with accounts
of their own; for the broker and chaos tests."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from core.settings import BrokerAccount, Settings, StackInfo, get_settings
from deploy import brokers, stack
from tests.support.replicated import port_is_free


@dataclass(frozen=True)
class RedundantBrokers:
    settings: Settings  # state dir and port of the first central broker (``deploy.stack``)
    info: StackInfo

    @property
    def host(self) -> str:
        return self.info.mqtt_host

    @property
    def central(self) -> list[tuple[str, int]]:
        return [(self.host, self.info.mqtt_port)] + [
            (self.host, port) for port in self.info.more_broker_ports]

    @property
    def hub(self) -> tuple[str, int]:
        assert self.info.hub_port is not None
        return self.host, self.info.hub_port

    def provisioning(self, base: Settings) -> Settings:
        """``base`` writing accounts to these brokers (every central broker and the hub)."""
        return base.model_copy(update={
            "mqtt_brokers": [f"{h}:{p}" for h, p in self.central],
            "mqtt_hubs": [f"{self.hub[0]}:{self.hub[1]}"],
            "broker_admin_username": self.info.broker_admin.username,
            "broker_admin_password": self.info.broker_admin.password})

    def gateway(self, base: Settings) -> Settings:
        """``base`` with a gateway listening on both central brokers."""
        return base.model_copy(update={
            "mqtt_brokers": [f"{h}:{p}" for h, p in self.central],
            "gateway_username": self.info.gateway.username,
            "gateway_password": self.info.gateway.password})

    def env(self) -> dict[str, str]:
        """The same for a `nattero pipeline` process."""
        return {"NATTERO_MQTT_BROKERS": json.dumps([f"{h}:{p}" for h, p in self.central]),
                "NATTERO_GATEWAY_USERNAME": self.info.gateway.username,
                "NATTERO_GATEWAY_PASSWORD": self.info.gateway.password}

    def kill(self, name: str) -> None:
        """SIGKILL ``central-1``, ``central-2`` or ``hub``."""
        if name == "central-1":
            stack.kill_broker(self.settings)
        else:
            brokers.kill(self.settings.state_dir, self.info, name)

    def start(self, name: str) -> None:
        if name == "central-1":
            stack.start_broker(self.settings)
        else:
            brokers.start(self.settings.state_dir, self.info, name)


@contextlib.contextmanager
def redundant_brokers(name: str, port: int) -> Iterator[RedundantBrokers]:
    """Central brokers on ``port`` and ``port + 10``, the hub on ``port + 11`` (or the next
    ports free), in ``<test state dir>/<name>``; removed afterwards."""
    base = get_settings()
    while not all(port_is_free(port + offset) for offset in
                  (0, brokers.CENTRAL_PORT_OFFSET, brokers.HUB_PORT_OFFSET)):
        port += 1
    settings = base.model_copy(update={"state_dir": base.state_dir / name, "mqtt_port": port})
    root = settings.state_dir
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    own = base.stack()
    assert own is not None

    def account(prefix: str) -> BrokerAccount:
        return BrokerAccount(username=f"{prefix}-{secrets.token_hex(4)}",
                             password=secrets.token_urlsafe(18))

    info = StackInfo(database_url=own.database_url, mqtt_host="127.0.0.1", mqtt_port=port,
                     broker_admin=account("admin"), gateway=account("gateway"),
                     gateway_client_id=f"nattero-gateway-{secrets.token_hex(8)}",
                     more_broker_ports=[port + brokers.CENTRAL_PORT_OFFSET],
                     hub_port=port + brokers.HUB_PORT_OFFSET, hub_account=account("hub"))
    settings.stack_file.write_text(info.model_dump_json())
    settings.stack_file.chmod(0o600)
    try:
        stack.ensure_brokers(settings, info)
        yield RedundantBrokers(settings, info)
    finally:
        brokers.stop(root, info)
        stack.stop_broker(settings)
        shutil.rmtree(root, ignore_errors=True)
