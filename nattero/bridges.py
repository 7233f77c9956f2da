"""Bridges (Zigbee2MQTT, ChirpStack): their broker accounts, and how a bridged device is named.

A bridge publishes for many devices, so it gets one broker account of its own, allowed to
publish only under its own topic tree and nowhere else (never ``nattero/v1/...``, never the
other bridge's tree). Its password is generated here, returned once and stored nowhere but
the broker. Bridges are not recorded in the database: the broker account is the bridge.

``check_external_id`` and ``check_mapping`` validate what ``nattero device add --source
... --external-id ... --mapping ...`` records, so the gateway can find the device by exactly
the name the bridge publishes under.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from gateway.adapters import MAPPINGS, route
from gateway.adapters.base import normalise_dev_eui
from ingest.events import DeviceSource

# The module, not its names: provisioning calls check_external_id/check_mapping, so either
# module may be imported first.
from nattero import provisioning
from nattero.broker_accounts import BrokerAccounts
from nattero.settings import Settings

if TYPE_CHECKING:
    from nattero.provisioning import DeviceCredentials

__all__ = [
    "add_bridge",
    "bridge_topics",
    "bridge_username",
    "check_external_id",
    "check_mapping",
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
            raise provisioning.ProvisioningError("--application-id is for ChirpStack bridges only")
        return ["zigbee2mqtt/#"]
    if source == DeviceSource.CHIRPSTACK:
        if application_id is None:
            return ["application/#"]
        if not application_id or any(c in application_id for c in "/+#") \
                or application_id != application_id.strip():
            raise provisioning.ProvisioningError(
                f"--application-id {application_id!r} must be a ChirpStack application id "
                "(a UUID), without '/', '+' or '#'")
        return [f"application/{application_id}/#"]
    raise provisioning.ProvisioningError(
        f"a bridge's --source is zigbee2mqtt or chirpstack, not '{source}'; native devices "
        "get their own account with: nattero device add")


def _broker(settings: Settings) -> BrokerAccounts:
    host, port = settings.broker_address()
    return BrokerAccounts(host, port, settings.broker_admin_account())


def add_bridge(settings: Settings, name: str, source: DeviceSource, *,
               application_id: str | None = None) -> DeviceCredentials:
    """Create a bridge's broker account; returns its credentials (shown once, stored nowhere).

    The account may publish under its topic tree only (:func:`bridge_topics`) and may not
    subscribe. Raises ``ProvisioningError`` for a bad name or source, or if the bridge exists.
    """
    if not provisioning.SLUG.match(name):
        raise provisioning.ProvisioningError(
            f"bridge name {name!r} must be lower-case letters, digits and '-' "
            "(max 63 characters, starting with a letter or digit), e.g. zigbee-solsikken")
    topics = bridge_topics(DeviceSource(source), application_id)
    credentials = provisioning.DeviceCredentials(username=bridge_username(name),
                                                 password=secrets.token_urlsafe(24))
    with _broker(settings) as broker:
        if broker.account_exists(credentials.username):
            raise provisioning.ProvisioningError(
                f"bridge {name!r} exists already; revoke it first with: "
                f"nattero bridge revoke {name}")
        broker.create_bridge_account(credentials.username, credentials.password, topics)
    return credentials


def revoke_bridge(settings: Settings, name: str) -> None:
    """Delete a bridge's account: the broker disconnects it at once and refuses it after."""
    username = bridge_username(name)
    with _broker(settings) as broker:
        if not broker.account_exists(username):
            raise provisioning.ProvisioningError(
                f"there is no bridge {name!r} (no broker account {username!r})")
        broker.delete_account(username)


def check_external_id(source: DeviceSource, external_id: str | None) -> str | None:
    """``external_id`` as the gateway will look it up, or ``ProvisioningError``.

    Native devices have none. A ChirpStack DevEUI is stored as 16 lower-case hex digits
    (``24E1-2413-6B31-6363`` → ``24e124136b316363``). A Zigbee2MQTT friendly name must be a
    name the bridge can publish state under: not ``bridge``, no MQTT wildcard, no empty
    level, and not ending in ``/availability``, ``/set`` or ``/get``.
    """
    source = DeviceSource(source)
    if source == DeviceSource.NATIVE:
        if external_id is not None:
            raise provisioning.ProvisioningError(
                "--external-id is for zigbee2mqtt and chirpstack devices; a native device is "
                "known by its own id")
        return None
    if not external_id:
        raise provisioning.ProvisioningError(
            f"a {source} device needs --external-id: its "
            + ("Zigbee2MQTT friendly name" if source == DeviceSource.ZIGBEE2MQTT
               else "DevEUI (16 hex digits)"))
    if source == DeviceSource.CHIRPSTACK:
        dev_eui = normalise_dev_eui(external_id)
        if dev_eui is None:
            raise provisioning.ProvisioningError(
                f"--external-id {external_id!r} is not a DevEUI: 16 hex digits, "
                "e.g. 24e124136b316363")
        return dev_eui
    topic = route(f"zigbee2mqtt/{external_id}")
    if "+" in external_id or "#" in external_id or topic is None \
            or topic.channel != "state" or topic.external_id != external_id:
        raise provisioning.ProvisioningError(
            f"--external-id {external_id!r} is not a Zigbee2MQTT friendly name Nattero can "
            "read: it may not be 'bridge', contain '+', '#' or '//', start or end with '/', "
            "or end in /availability, /set or /get")
    return external_id


def check_mapping(source: DeviceSource, mapping: str | None) -> str | None:
    """``mapping`` if it suits ``source``, or ``ProvisioningError`` listing the known ones.

    A ChirpStack device needs one of the vendor mappings (the decoder its device profile
    runs); other devices have none.
    """
    source = DeviceSource(source)
    known = ", ".join(sorted(MAPPINGS))
    if source != DeviceSource.CHIRPSTACK:
        if mapping is not None:
            raise provisioning.ProvisioningError(
                f"--mapping is for chirpstack devices only; a {source} device is read without one")
        return None
    if mapping is None:
        raise provisioning.ProvisioningError(
            f"a chirpstack device needs --mapping, the decoder its device profile runs: "
            f"one of {known}")
    if mapping not in MAPPINGS:
        raise provisioning.ProvisioningError(
            f"--mapping {mapping!r} is unknown; use one of {known}")
    return mapping
