"""Bridges (Zigbee2MQTT, ChirpStack): their broker accounts, and how a bridged device is named.

A bridge publishes for many devices, so it gets one broker account of its own, allowed to
publish only under its own topic tree and nowhere else (never ``nattero/v1/...``, never the
other bridge's tree). Its password is generated here, returned once and stored nowhere but
the broker. Bridges are not recorded in the database: the broker account is the bridge.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from core.events import DeviceSource
from core.settings import Settings
from provisioning.broker_group import managed_brokers
from provisioning.errors import ProvisioningError
from provisioning.names import SLUG, DeviceCredentials, client_id_of

__all__ = [
    "BridgeAccount",
    "add_bridge",
    "bridge_topics",
    "bridge_username",
    "list_bridges",
    "revoke_bridge",
]

# A device account is "{site}.{device}"; a bridge account has no dot, so they never collide.
_USERNAME_PREFIX = "bridge-"


def bridge_username(name: str) -> str:
    return f"{_USERNAME_PREFIX}{name}"


def bridge_topics(source: DeviceSource, application_id: str | None = None) -> list[str]:
    """The topic patterns a bridge of ``source`` may publish to.

    A ChirpStack bridge may be narrowed to one application (``application/{id}/#``), so two
    ChirpStack servers or tenants cannot publish for each other's devices.
    """
    if source == DeviceSource.ZIGBEE2MQTT:
        if application_id is not None:
            raise ProvisioningError("--application-id is for ChirpStack bridges only")
        return ["zigbee2mqtt/#"]
    if source == DeviceSource.CHIRPSTACK:
        if application_id is None:
            return ["application/#"]
        if not application_id or any(c in application_id for c in "/+#") \
                or application_id != application_id.strip():
            raise ProvisioningError(
                f"--application-id {application_id!r} must be a ChirpStack application id "
                "(a UUID), without '/', '+' or '#'")
        return [f"application/{application_id}/#"]
    raise ProvisioningError(
        f"a bridge's --source is zigbee2mqtt or chirpstack, not '{source}'; native devices "
        "get their own account with: nattero device add")


def add_bridge(settings: Settings, name: str, source: DeviceSource, *,
               application_id: str | None = None) -> DeviceCredentials:
    """Create a bridge's broker account; returns its credentials (shown once, stored nowhere).

    The account may connect only with its own client id (its username), publish under its
    topic tree only (:func:`bridge_topics`) and may not subscribe. Raises
    ``ProvisioningError`` for a bad name or source, or if the bridge exists.
    """
    if not SLUG.match(name):
        raise ProvisioningError(
            f"bridge name {name!r} must be lower-case letters, digits and '-' "
            "(max 63 characters, starting with a letter or digit), e.g. zigbee-solsikken")
    topics = bridge_topics(DeviceSource(source), application_id)
    username = bridge_username(name)
    credentials = DeviceCredentials(username=username, client_id=client_id_of(username),
                                    password=secrets.token_urlsafe(24))
    with managed_brokers(settings) as broker:
        if broker.account_exists(credentials.username):
            raise ProvisioningError(
                f"bridge {name!r} exists already; revoke it first with: "
                f"nattero bridge revoke {name}")
        broker.create_bridge_account(credentials.username, credentials.password, topics,
                                     client_id=credentials.client_id)
    return credentials


def revoke_bridge(settings: Settings, name: str) -> None:
    """Delete a bridge's account: the broker disconnects it at once and refuses it after."""
    username = bridge_username(name)
    with managed_brokers(settings) as broker:
        if not broker.account_exists(username):
            raise ProvisioningError(
                f"there is no bridge {name!r} (no broker account {username!r})")
        broker.delete_account(username)


def hub_username(site: str) -> str:
    return f"hub-{site}"


def add_site_hub(settings: Settings, site: str) -> DeviceCredentials:
    """Create a site hub's account on every central broker (``docs/brokers.md``): bound to
    its own client id, it may publish the site's device topics (``nattero/v1/{site}/#``)
    and nothing else; its bridges use it. Returns the credentials (shown once)."""
    if not SLUG.match(site):
        raise ProvisioningError(f"site id {site!r} must be lower-case letters, digits and '-'")
    username = hub_username(site)
    credentials = DeviceCredentials(username=username, client_id=client_id_of(username),
                                    password=secrets.token_urlsafe(24))
    with managed_brokers(settings, hubs=False) as broker:
        if broker.account_exists(username):
            raise ProvisioningError(
                f"the hub of site {site!r} has an account already; revoke it first with: "
                f"nattero broker hub-revoke {site}")
        broker.create_bridge_account(username, credentials.password,
                                     [f"nattero/v1/{site}/#"], client_id=credentials.client_id)
    return credentials


def revoke_site_hub(settings: Settings, site: str) -> None:
    """Delete a site hub's account on every central broker (its bridges are refused)."""
    username = hub_username(site)
    with managed_brokers(settings, hubs=False) as broker:
        if not broker.account_exists(username):
            raise ProvisioningError(f"site {site!r} has no hub account ({username!r})")
        broker.delete_account(username)


@dataclass(frozen=True, slots=True)
class BridgeAccount:
    name: str
    username: str
    source: DeviceSource | None  # from its topics; None: an account made some other way
    topics: tuple[str, ...]


def _source_of(topics: list[str]) -> DeviceSource | None:
    if topics and all(t.startswith("zigbee2mqtt/") for t in topics):
        return DeviceSource.ZIGBEE2MQTT
    if topics and all(t.startswith("application/") for t in topics):
        return DeviceSource.CHIRPSTACK
    return None


def list_bridges(settings: Settings) -> list[BridgeAccount]:
    """Every bridge account the broker has (the broker account is the bridge), by name."""
    with managed_brokers(settings) as broker:
        usernames = sorted(u for u in broker.client_ids() if u.startswith(_USERNAME_PREFIX))
        bridges = []
        for username in usernames:
            topics = broker.publish_topics(username)
            bridges.append(BridgeAccount(username.removeprefix(_USERNAME_PREFIX), username,
                                         _source_of(topics), tuple(topics)))
    return bridges
