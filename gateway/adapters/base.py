"""What every device adapter shares: the device it decodes for, its result, its error, routing.

An adapter turns what a third-party bridge (Zigbee2MQTT, ChirpStack) really publishes into
native ``Event``s and ``StatusChange``s. It never talks to MQTT or the database: the gateway
routes a topic here with :func:`route`, looks the device up (:func:`resolve`), calls a
decoder, stores what comes back and dead-letters any :class:`AdapterError` with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from core.errors import NatteroError
from core.events import DeviceKind, DeviceSource, Event, StatusChange

ZIGBEE2MQTT_BASE_TOPIC = "zigbee2mqtt"

Zigbee2MqttChannel = Literal["state", "availability"]


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """A provisioned device as an adapter needs it: where its events go, and how to read it.

    ``external_id`` is the Zigbee2MQTT friendly name or the lower-case hex LoRaWAN DevEUI;
    ``mapping`` names the vendor mapping for ChirpStack devices (``milesight-ws301``, ...).
    """

    site: str
    device: str
    kind: DeviceKind
    source: DeviceSource
    external_id: str
    mapping: str | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one bridge message means: zero or more events, and perhaps a presence change.

    ``warnings`` are things the gateway should log with the device (e.g. an unreadable
    ``last_seen`` that made the adapter fall back to the receipt time); they never mean the
    events are wrong.
    """

    events: list[Event]
    status: StatusChange | None = None
    warnings: tuple[str, ...] = field(default=())


class AdapterError(NatteroError):
    """A bridge message that cannot become events; the gateway dead-letters it.

    ``reason`` is a short machine code (``invalid_json``, ``missing_codec``,
    ``chirpstack_v3_payload``, ``unknown_mapping``, ``unmapped_external_id``, ...);
    ``message`` says what was wrong and what to do about it.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class BridgeTopic:
    """A routed bridge topic: which adapter, which device, which kind of message.

    ``channel`` is ``state``/``availability`` for Zigbee2MQTT and the ChirpStack event type
    (``up``, ``status``, ``join``, ``ack``, ``txack``, ``log``, ``location``, ...).
    """

    source: DeviceSource
    external_id: str
    channel: str


def route(topic: str, *, zigbee2mqtt_base: str = ZIGBEE2MQTT_BASE_TOPIC) -> BridgeTopic | None:
    """The bridge topic ``topic`` is, or None when no adapter handles it.

    None covers the Zigbee2MQTT bridge's own topics (``zigbee2mqtt/bridge/...``), commands
    (``.../set``, ``.../get``, ChirpStack ``.../command/...``) and anything unknown.
    """
    prefix = zigbee2mqtt_base + "/"
    if topic.startswith(prefix):
        return _route_zigbee2mqtt(topic[len(prefix):])
    if topic.startswith("application/"):
        return _route_chirpstack(topic)
    return None


def _route_zigbee2mqtt(rest: str) -> BridgeTopic | None:
    if not rest or rest == "bridge" or rest.startswith("bridge/"):
        return None
    # A friendly name may itself contain "/" (Zigbee2MQTT suggests "kitchen/floor_light"),
    # so only the known suffixes are split off, from the right.
    parts = rest.split("/")
    if parts[-1] == "availability" and len(parts) > 1:
        return BridgeTopic(DeviceSource.ZIGBEE2MQTT, "/".join(parts[:-1]), "availability")
    if any(part in ("set", "get") for part in parts[1:]):
        return None
    if any(part == "" for part in parts):
        return None
    return BridgeTopic(DeviceSource.ZIGBEE2MQTT, rest, "state")


def _route_chirpstack(topic: str) -> BridgeTopic | None:
    parts = topic.split("/")
    # application/{application_id}/device/{dev_eui}/event/{event}
    if len(parts) != 6 or parts[2] != "device" or parts[4] != "event":
        return None
    if not parts[1] or not parts[5]:
        return None
    dev_eui = normalise_dev_eui(parts[3])
    if dev_eui is None:
        return None
    return BridgeTopic(DeviceSource.CHIRPSTACK, dev_eui, parts[5])


def normalise_dev_eui(value: str) -> str | None:
    """``value`` as 16 lower-case hex digits, or None when it is not a DevEUI."""
    cleaned = value.strip().replace("-", "").replace(":", "").lower()
    if len(cleaned) != 16 or any(c not in "0123456789abcdef" for c in cleaned):
        return None
    return cleaned


def resolve(topic: BridgeTopic, devices: Mapping[tuple[DeviceSource, str], DeviceRef]) -> DeviceRef:
    """The provisioned device behind ``topic``; an unmapped external id is never guessed.

    ``devices`` is keyed by ``(source, external_id)`` as recorded with ``nattero device add``.
    """
    device = devices.get((topic.source, topic.external_id))
    if device is None:
        raise AdapterError(
            "unmapped_external_id",
            f"no device is mapped to {topic.source} external id {topic.external_id!r}; "
            f"add it with: nattero device add SITE DEVICE --room ROOM --kind KIND "
            f"--source {topic.source} --external-id {topic.external_id!r}",
        )
    return device
