"""Provisioning: sites, rooms, monitoring bases, devices, bridges and their broker accounts.

Used by the CLI, the admin API and ``nattero up``. A device's or bridge's broker password
is generated here, returned once and stored nowhere but the broker.

    provisioning.names            ids, usernames, topics, a bridged device's external id
    provisioning.broker_accounts  the broker's dynamic-security accounts and roles
    provisioning.sites            sites, rooms, bases and devices (store rows + accounts)
    provisioning.bridges          Zigbee2MQTT/ChirpStack bridge accounts
"""

from provisioning.errors import ProvisioningError
from provisioning.names import DeviceCredentials, device_topic_prefix, device_username
from provisioning.sites import (
    add_device,
    add_room,
    add_site,
    change_site,
    delete_device_accounts,
    device_exists,
    ensure_room,
    ensure_site,
    list_devices,
    record_basis,
    relabel_room,
    revoke_device,
    rotate_device_password,
)

__all__ = [
    "DeviceCredentials",
    "ProvisioningError",
    "add_device",
    "add_room",
    "add_site",
    "change_site",
    "delete_device_accounts",
    "device_exists",
    "device_topic_prefix",
    "device_username",
    "ensure_room",
    "ensure_site",
    "list_devices",
    "record_basis",
    "relabel_room",
    "revoke_device",
    "rotate_device_password",
]
