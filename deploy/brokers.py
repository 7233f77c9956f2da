"""Redundant brokers on one machine (issue 18 §3): a second central broker and a site hub.

`nattero up --ha` starts, beside the stack's own Mosquitto (the first central broker):

- **a second central broker** on the MQTT port + 10, with the same accounts;
- **a site hub** on the MQTT port + 11: the Mosquitto a site's devices connect to. It
  bridges every device topic to *each* central broker (one bridge connection per central
  broker), keeps what it could not forward yet (``cleansession false``: store-and-forward
  through a WAN or central outage) and writes its persistence after every change.

The gateway keeps a session on every central broker and the store drops the doubles
(``gateway/service.py``). Why a bridge to each central broker, and not one bridge with a
list of addresses to fail over to: Mosquitto acknowledges a message before it writes its
persistence (every 2 s on a central broker), so a central broker killed -9 loses what it
had acknowledged and not yet delivered. With one bridge, that message existed only there;
with a bridge to each, the other central broker has it too. A bridge connection may still
list several addresses (``address a:1 b:2``) for a site with more than two central
brokers; ``docs/brokers.md`` shows the three-host layout.

Each broker lives in ``<state dir>/brokers/<name>/mosquitto/`` (configuration, accounts,
persistence, log, pid). A new broker starts from a copy of the first central broker's
accounts; afterwards provisioning writes every change to every broker
(``provisioning.broker_group``).
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.settings import BrokerAccount, StackInfo
from deploy.stack import (
    StackError,
    _chown_tree,
    _mosquitto_pid,
    _mosquitto_start,
    _mosquitto_user,
    _Paths,
    _signal_broker,
    ensure_gateway_account,
    mosquitto_conf,
)
from provisioning.broker_accounts import BrokerAccountError, BrokerAccounts

__all__ = [
    "CENTRAL_PORT_OFFSET",
    "HUB_PORT_OFFSET",
    "HUB_TOPICS",
    "Broker",
    "ensure",
    "hub_bridges",
    "kill",
    "names",
    "start",
    "status",
    "stop",
]

CENTRAL_PORT_OFFSET = 10
HUB_PORT_OFFSET = 11
#: What a site hub forwards: native devices and the vendor bridges' topics.
HUB_TOPICS = ("nattero/v1/#", "zigbee2mqtt/#", "application/#")
CENTRAL = "central-2"
HUB = "hub"


@dataclass(frozen=True)
class Broker:
    """One managed Mosquitto: its name, its port and where its files are."""

    name: str
    port: int
    root: Path  # <state dir>/brokers/<name>

    @property
    def paths(self) -> _Paths:
        return _Paths(self.root)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _brokers(state_dir: Path, info: StackInfo) -> list[Broker]:
    root = state_dir / "brokers"
    found = [Broker(f"central-{n + 2}", port, root / f"central-{n + 2}")
             for n, port in enumerate(info.more_broker_ports)]
    if info.hub_port is not None:
        found.append(Broker(HUB, info.hub_port, root / HUB))
    return found


def names(state_dir: Path, info: StackInfo) -> list[str]:
    """The managed brokers' names (``central-2``, ``hub``); the first central broker is the
    stack's own (``deploy.stack``)."""
    return [broker.name for broker in _brokers(state_dir, info)]


def hub_bridges(centrals: Sequence[tuple[str, int]], account: BrokerAccount,
                client_id: str) -> str:
    """The hub's bridge connections, one per central broker."""
    text = ""
    for n, (host, port) in enumerate(centrals, start=1):
        text += (
            f"\nconnection central-{n}\n"
            f"address {host}:{port}\n"
            "bridge_protocol_version mqttv311\n"
            # The hub's account is bound to this id on the central brokers.
            f"remote_clientid {client_id}\n"
            f"remote_username {account.username}\n"
            f"remote_password {account.password}\n"
            f"local_clientid {client_id}-local-{n}\n"
            # A persistent session on both sides: what arrives while the central broker is
            # away is queued here (and in the persistence file) and sent when it is back.
            "cleansession false\n"
            "notifications false\n"
            "keepalive_interval 10\n"
            "restart_timeout 1 5\n"
            + "".join(f"topic {topic} out 1\n" for topic in HUB_TOPICS)
        )
    return text


def ensure(state_dir: Path, info: StackInfo) -> None:
    """Start (or find running) the managed brokers of ``info``, with their accounts: the
    gateway's on each central broker, the hub's on each central broker. Idempotent."""
    managed = _brokers(state_dir, info)
    if not managed:
        return
    first = _Paths(state_dir)
    centrals = [(info.mqtt_host, info.mqtt_port)] + [
        (info.mqtt_host, port) for port in info.more_broker_ports]
    hub_account = info.hub_account
    hub_client_id = f"nattero-hub-{hub_account.username}" if hub_account else ""
    if hub_account is not None:
        _ensure_hub_account(info.mqtt_host, info.mqtt_port, info.broker_admin, hub_account,
                            hub_client_id)
    for broker in managed:
        paths = broker.paths
        paths.mq_data.mkdir(parents=True, exist_ok=True)
        paths.mq.chmod(0o700)
        if not paths.mq_dynsec.exists():
            # The same accounts as the first central broker from the start; provisioning
            # keeps them the same afterwards.
            shutil.copyfile(first.mq_dynsec, paths.mq_dynsec)
            paths.mq_dynsec.chmod(0o600)
        is_hub = broker.name == HUB
        extra = (hub_bridges(centrals, hub_account, hub_client_id)
                 if is_hub and hub_account is not None else "")
        text = mosquitto_conf(broker.port, dynsec=paths.mq_dynsec, data=paths.mq_data,
                              log=paths.mq_log, pid=paths.mq_pid, user=_mosquitto_user(),
                              save_every_change=is_hub, extra=extra)
        if not paths.mq_conf.exists() or paths.mq_conf.read_text() != text:
            paths.mq_conf.write_text(text)
            paths.mq_conf.chmod(0o600)  # it holds the hub's password
            if _mosquitto_pid(paths) is not None:
                _signal_broker(paths, signal.SIGTERM)
        user = _mosquitto_user()
        if user:
            _chown_tree(broker.root, user)
        _mosquitto_start(paths)
        try:
            if not is_hub:
                ensure_gateway_account(info.mqtt_host, broker.port, info.broker_admin,
                                       info.gateway)
                if hub_account is not None:
                    _ensure_hub_account(info.mqtt_host, broker.port, info.broker_admin,
                                        hub_account, hub_client_id)
            else:
                _wait_accounts(info.mqtt_host, broker.port, info.broker_admin)
        except BrokerAccountError as exc:
            raise StackError(f"the broker {broker.name} on {broker.address} does not take "
                             f"its accounts ({exc}); read {paths.mq_log}") from exc


def _ensure_hub_account(host: str, port: int, admin: BrokerAccount, hub: BrokerAccount,
                        client_id: str) -> None:
    """The hub's account on a central broker: bound to its client id, may publish the
    device topics (``HUB_TOPICS``), nothing else."""
    with BrokerAccounts(host, port, admin) as accounts:
        if not accounts.account_exists(hub.username):
            accounts.create_bridge_account(hub.username, hub.password, list(HUB_TOPICS),
                                           client_id=client_id)


def _wait_accounts(host: str, port: int, admin: BrokerAccount) -> None:
    """Wait until a just-started broker takes the admin account (it has read its
    accounts)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with BrokerAccounts(host, port, admin, timeout=5):
                return
        except BrokerAccountError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _find(state_dir: Path, info: StackInfo, name: str) -> Broker:
    for broker in _brokers(state_dir, info):
        if broker.name == name:
            return broker
    raise StackError(f"no broker named {name!r} in this stack; it has "
                     f"{', '.join(names(state_dir, info)) or 'none besides the first'}")


def kill(state_dir: Path, info: StackInfo, name: str) -> None:
    """SIGKILL a managed broker, as a crash would, and wait until it is gone."""
    _signal_broker(_find(state_dir, info, name).paths, signal.SIGKILL)


def start(state_dir: Path, info: StackInfo, name: str) -> None:
    """Start a managed broker again with its configuration and persistence."""
    broker = _find(state_dir, info, name)
    if not broker.paths.mq_conf.exists():
        raise StackError(f"the broker {name} was never set up; run `nattero up --ha`")
    _mosquitto_start(broker.paths)


def stop(state_dir: Path, info: StackInfo) -> None:
    """Stop every managed broker with SIGTERM (each saves its persistence)."""
    for broker in _brokers(state_dir, info):
        _signal_broker(broker.paths, signal.SIGTERM)


def status(state_dir: Path, info: StackInfo) -> dict[str, dict[str, object]]:
    return {broker.name: {"running": _mosquitto_pid(broker.paths) is not None,
                          "pid": _mosquitto_pid(broker.paths), "port": broker.port,
                          "log": str(broker.paths.mq_log)}
            for broker in _brokers(state_dir, info)}
