"""Device adapters: what Zigbee2MQTT and ChirpStack v4 publish, decoded into native events.

Pure decoding; no MQTT, no database. The gateway:

1. routes a topic with :func:`route` (None: not for an adapter),
2. finds the provisioned device with :func:`resolve` (``unmapped_external_id`` otherwise),
3. decodes with a :class:`Zigbee2MqttDecoder` or :class:`ChirpStackDecoder` (one of each per
   gateway, seeded from the database after a restart),
4. stores ``Decoded.events``/``Decoded.status``, or dead-letters an :class:`AdapterError`
   with its ``reason``.
"""

from __future__ import annotations

from .base import AdapterError, BridgeTopic, Decoded, DeviceRef, resolve, route
from .chirpstack import ChirpStackDecoder
from .vendors import MAPPINGS, VendorMapping
from .zigbee2mqtt import Zigbee2MqttDecoder

__all__ = [
    "MAPPINGS",
    "AdapterError",
    "BridgeTopic",
    "ChirpStackDecoder",
    "Decoded",
    "DeviceRef",
    "VendorMapping",
    "Zigbee2MqttDecoder",
    "resolve",
    "route",
]
