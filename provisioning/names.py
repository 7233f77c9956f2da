"""How devices are named: ids, broker usernames and client ids, topics, and a bridged device's
external id.

``check_external_id`` and ``check_mapping`` validate what ``nattero device add --source
... --external-id ... --mapping ...`` records, so the gateway can find the device by exactly
the name the bridge publishes under.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from core.events import DeviceSource
from gateway.adapters import MAPPINGS, route
from gateway.adapters.base import normalise_dev_eui
from provisioning.errors import ProvisioningError

__all__ = [
    "ID_SLUG",
    "SLUG",
    "DeviceCredentials",
    "check_external_id",
    "check_mapping",
    "client_id_of",
    "device_topic_prefix",
    "device_username",
]

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ID_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class DeviceCredentials(BaseModel):
    """A device's or bridge's broker account, shown once and stored only by the broker.

    The broker accepts the account only with ``client_id`` (see :func:`client_id_of`)."""

    username: str
    client_id: str
    password: str


def device_username(site: str, device: str) -> str:
    return f"{site}.{device}"


def client_id_of(username: str) -> str:
    """The one MQTT client id a device or bridge account may connect with: its username.

    Bound in the broker, so no device or bridge can connect with another client's id (take
    over its session, fire its Last Will). Usernames are unique, so client ids are too.
    """
    return username


def device_topic_prefix(site: str, device: str) -> str:
    return f"nattero/v1/{site}/{device}"


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
            raise ProvisioningError(
                "--external-id is for zigbee2mqtt and chirpstack devices; a native device is "
                "known by its own id")
        return None
    if not external_id:
        raise ProvisioningError(
            f"a {source} device needs --external-id: its "
            + ("Zigbee2MQTT friendly name" if source == DeviceSource.ZIGBEE2MQTT
               else "DevEUI (16 hex digits)"))
    if source == DeviceSource.CHIRPSTACK:
        dev_eui = normalise_dev_eui(external_id)
        if dev_eui is None:
            raise ProvisioningError(
                f"--external-id {external_id!r} is not a DevEUI: 16 hex digits, "
                "e.g. 24e124136b316363")
        return dev_eui
    topic = route(f"zigbee2mqtt/{external_id}")
    if "+" in external_id or "#" in external_id or topic is None \
            or topic.channel != "state" or topic.external_id != external_id:
        raise ProvisioningError(
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
            raise ProvisioningError(
                f"--mapping is for chirpstack devices only; a {source} device is read without one")
        return None
    if mapping is None:
        raise ProvisioningError(
            f"a chirpstack device needs --mapping, the decoder its device profile runs: "
            f"one of {known}")
    if mapping not in MAPPINGS:
        raise ProvisioningError(
            f"--mapping {mapping!r} is unknown; use one of {known}")
    return mapping
