"""Turns one MQTT message into events, a status change, or a rejection.

Native protocol v1 topics are decoded here; bridge topics (Zigbee2MQTT, ChirpStack) are
handed to their adapter. Provisioning is checked for every message: an event from a device
that is not provisioned, revoked, or publishing under another site is rejected, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.events import Event, StatusChange
from gateway.protocol import Rejected, RejectReason, decode_event, decode_status, parse_topic
from gateway.registry import DeviceRegistry


@dataclass(slots=True)
class Routed:
    events: list[Event] = field(default_factory=list)
    status: StatusChange | None = None


class MessageRouter:
    def __init__(self, registry: DeviceRegistry) -> None:
        self._registry = registry
        self._bridges: list[BridgeRoute] = []

    def add_bridge(self, bridge: BridgeRoute) -> None:
        self._bridges.append(bridge)

    def route(self, topic: str, payload: bytes, received_at: datetime) -> Routed:
        """Raises ``Rejected`` (dead letter) or ``StoreUnavailable`` (retry later)."""
        native = parse_topic(topic)
        if native is None:
            for bridge in self._bridges:
                routed = bridge.route(topic, payload, received_at)
                if routed is not None:
                    return routed
            raise Rejected(RejectReason.BAD_TOPIC,
                           f"topic {topic!r} is not nattero/v1/{{site}}/{{device}}/events|status "
                           "nor a connected bridge's topic")
        self.check_provisioned(native.site, native.device)
        if native.channel == "status":
            return Routed(status=decode_status(native.site, native.device, payload, received_at))
        return Routed(events=[decode_event(native.site, native.device, payload)])

    def check_provisioned(self, site: str, device: str) -> None:
        known = self._registry.get(site, device)
        if known is None:
            elsewhere = self._registry.sites_of(device)
            if elsewhere:
                raise Rejected(RejectReason.WRONG_SITE,
                               f"device {device!r} is provisioned on site {elsewhere[0]!r}, not "
                               f"{site!r}; it may publish only under nattero/v1/{elsewhere[0]}/"
                               f"{device}/")
            raise Rejected(RejectReason.UNKNOWN_DEVICE,
                           f"device {device!r} is not provisioned on site {site!r}; add it with: "
                           f"nattero device add {site} {device} --room ROOM --kind KIND")
        if known.revoked:
            raise Rejected(RejectReason.REVOKED_DEVICE,
                           f"device {device!r} on site {site!r} was revoked; its messages are "
                           "not stored")


def is_native_events(topic: str) -> bool:
    native = parse_topic(topic)
    return native is not None and native.channel == "events"


_BRIDGE_SUFFIXES = ("/availability", "/set", "/get")


def sender_of(topic: str) -> str:
    """Who a message is charged to for the dead-letter limit: a native device
    (``nattero/v1/{site}/{device}``), a bridged device (``zigbee2mqtt/{name}``,
    ``application/{app}/device/{dev_eui}``), else the topic itself."""
    native = parse_topic(topic)
    if native is not None:
        return f"nattero/v1/{native.site}/{native.device}"
    levels = topic.split("/")
    if levels[0] == "application" and len(levels) >= 4:
        return "/".join(levels[:4])
    if levels[0] == "zigbee2mqtt":
        for suffix in _BRIDGE_SUFFIXES:
            if topic.endswith(suffix):
                return topic[: -len(suffix)]
    return topic


def bridge_of(topic: str) -> str:
    """The bridge prefix a non-native message is also charged to (``application/{app}`` for
    ChirpStack, the first topic level for Zigbee2MQTT and others); empty for a native device,
    whose account can publish only on its own topics anyway."""
    if parse_topic(topic) is not None:
        return ""
    levels = topic.split("/")
    if levels[0] == "application" and len(levels) >= 2:
        return "/".join(levels[:2])
    return levels[0]


class BridgeRoute:
    """A device bridge (Zigbee2MQTT, ChirpStack): returns None for topics it does not own."""

    def route(self, topic: str, payload: bytes, received_at: datetime) -> Routed | None:
        raise NotImplementedError
