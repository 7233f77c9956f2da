"""Zigbee2MQTT and ChirpStack in the running gateway: their topics, through the adapters.

Each bridge owns one topic tree (``zigbee2mqtt/...``, ``application/...``). For a message
in it, the bridge finds the provisioned device by its external id — the Zigbee2MQTT
friendly name, the lower-case DevEUI — and never guesses one; hands the message to its
adapter; and returns the events and status it decoded. What cannot be stored is raised as
``Rejected`` with the adapter's own reason, so the dead letter tells an installer what to
fix. The bridge's own chatter (``zigbee2mqtt/bridge/...``, commands, ChirpStack ``join`` or
``log`` events) is acknowledged and dropped: it is not a device's message, nor a mistake.

The adapters turn levels into edges by remembering each device's last state. That memory
is restored from the store the first time a bridge sees a device, so a restarted gateway
does not report a door that was already open as opened again. Not thread-safe: the gateway
calls ``route`` from its writer thread only.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Collection
from datetime import datetime

import psycopg

from core.events import DeviceSource, EventKind
from gateway.adapters import (
    AdapterError,
    BridgeTopic,
    ChirpStackDecoder,
    Decoded,
    DeviceRef,
    Zigbee2MqttDecoder,
    route,
)
from gateway.protocol import Rejected, RejectReason
from gateway.registry import DeviceRegistry, KnownDevice
from gateway.routing import BridgeRoute, Routed
from ingest.devices import StoredHistory, device_history
from ingest.writer import StoreUnavailable

__all__ = ["ChirpStackBridge", "EventHistory", "StoredHistory", "Zigbee2MqttBridge"]

log = logging.getLogger(__name__)

ZIGBEE2MQTT_BASE_TOPIC = "zigbee2mqtt"
CHIRPSTACK_TOPIC_ROOT = "application"

# ChirpStack events that say nothing Nattero stores (the adapter would return no events).
_CHIRPSTACK_STORED_EVENTS = frozenset({"up", "status"})

# The kinds that are a level (door, presence, bed); the adapters remember the last one.
_LEVEL_KINDS = [EventKind.DOOR_OPEN, EventKind.DOOR_CLOSED, EventKind.PRESENCE_ON,
                EventKind.PRESENCE_OFF, EventKind.BED_ENTER, EventKind.BED_EXIT]


class EventHistory:
    """Reads a device's last stored events, on the gateway's database, for seeding.

    One connection, opened on first use and reopened after a failure. A failed read raises
    ``StoreUnavailable``: the gateway retries the batch, it never decodes without the history.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection | None = None

    def last(self, site: str, device: str) -> StoredHistory:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=3)
            return device_history(self._conn, site, device, _LEVEL_KINDS)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise StoreUnavailable(f"event history: {exc}".strip()) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Bridge(BridgeRoute):
    """Shared by both bridges: the device lookup, first-sight seeding and dead letters."""

    source: DeviceSource

    def __init__(self, registry: DeviceRegistry, history: EventHistory, *,
                 sites: Collection[str] = ()) -> None:
        self._registry = registry
        self._history = history
        # A gateway restricted to some sites leaves other sites' devices to their gateway.
        self._sites = frozenset(sites)
        # Which provisioned device each external id was last seeded for.
        self._seeded: dict[str, tuple[str, str]] = {}

    def _device(self, topic: BridgeTopic) -> DeviceRef | None:
        """The provisioned device behind ``topic``; None if another gateway serves its site."""
        known = self._registry.by_external_id(topic.source, topic.external_id)
        if known is None:
            raise Rejected("unmapped_external_id", self._unmapped(topic))
        if self._sites and known.site not in self._sites:
            return None
        if known.revoked:
            raise Rejected(RejectReason.REVOKED_DEVICE,
                           f"device {known.device!r} on site {known.site!r} ({topic.source} "
                           f"{topic.external_id!r}) was revoked; its messages are not stored")
        if self._seeded.get(topic.external_id) != (known.site, known.device):
            # Read before marking: if the store is away, the retried batch seeds again.
            self._seed(topic.external_id, self._history.last(known.site, known.device))
            self._seeded[topic.external_id] = (known.site, known.device)
        return _ref(known, topic.external_id)

    def _seed(self, external_id: str, stored: StoredHistory) -> None:
        raise NotImplementedError

    def _unmapped(self, topic: BridgeTopic) -> str:
        mapping = " --mapping MAPPING" if topic.source == DeviceSource.CHIRPSTACK else ""
        return (f"no device is mapped to {topic.source} external id {topic.external_id!r}; "
                f"add it with: nattero device add SITE DEVICE --room ROOM "
                f"--kind door|bed|motion|exit|staff --source {topic.source} "
                f"--external-id {shlex.quote(topic.external_id)}{mapping}")

    def _routed(self, device: DeviceRef, decode: Callable[[], Decoded]) -> Routed:
        try:
            decoded = decode()
        except AdapterError as error:
            # The adapter's own reason (missing_codec, chirpstack_v3_payload, ...) is what
            # an installer searches the docs for; never fold it into a generic "adapter".
            raise Rejected(error.reason, error.message) from None
        for warning in decoded.warnings:
            log.warning("%s device %s/%s (%r): %s", self.source, device.site, device.device,
                        device.external_id, warning)
        return Routed(events=list(decoded.events), status=decoded.status)


class Zigbee2MqttBridge(_Bridge):
    """``zigbee2mqtt/{friendly_name}`` (state) and ``.../availability`` (presence)."""

    source = DeviceSource.ZIGBEE2MQTT

    def __init__(self, registry: DeviceRegistry, history: EventHistory, *,
                 sites: Collection[str] = ()) -> None:
        super().__init__(registry, history, sites=sites)
        self._decoder = Zigbee2MqttDecoder()

    def route(self, topic: str, payload: bytes, received_at: datetime) -> Routed | None:
        if topic != ZIGBEE2MQTT_BASE_TOPIC and not topic.startswith(ZIGBEE2MQTT_BASE_TOPIC + "/"):
            return None
        routed = route(topic, zigbee2mqtt_base=ZIGBEE2MQTT_BASE_TOPIC)
        if routed is None:
            return Routed()  # the bridge's own topics (bridge/state, bridge/log) and commands
        device = self._device(routed)
        if device is None:
            return Routed()
        if routed.channel == "availability":
            return self._routed(device, lambda: self._decoder.decode_availability(
                device, payload, received_at))
        return self._routed(device, lambda: self._decoder.decode_state(
            device, payload, received_at))

    def _seed(self, external_id: str, stored: StoredHistory) -> None:
        self._decoder.seed(external_id, stored.last_level, last_seen=stored.last_ts)


class ChirpStackBridge(_Bridge):
    """``application/{application_id}/device/{dev_eui}/event/{event}`` (v4 JSON events)."""

    source = DeviceSource.CHIRPSTACK

    def __init__(self, registry: DeviceRegistry, history: EventHistory, *,
                 sites: Collection[str] = ()) -> None:
        super().__init__(registry, history, sites=sites)
        self._decoder = ChirpStackDecoder()

    def route(self, topic: str, payload: bytes, received_at: datetime) -> Routed | None:
        if not topic.startswith(CHIRPSTACK_TOPIC_ROOT + "/"):
            return None
        routed = route(topic)
        if routed is None:
            parts = topic.split("/")
            if len(parts) == 6 and parts[2] == "device" and parts[4] == "event":
                raise Rejected("invalid_dev_eui",
                               f"ChirpStack event topic {topic!r} does not carry a DevEUI "
                               "(16 hex digits) where the device belongs")
            return Routed()  # commands (.../command/down) and other application topics
        if routed.channel not in _CHIRPSTACK_STORED_EVENTS:
            return Routed()  # join, ack, txack, log, location: nothing to store
        device = self._device(routed)
        if device is None:
            return Routed()
        return self._routed(device, lambda: self._decoder.decode(
            device, routed.channel, payload, received_at))

    def _seed(self, external_id: str, stored: StoredHistory) -> None:
        # Event ids are "{deduplicationId}:{kind}": the last one names the last stored uplink.
        uplink = stored.last_event_id.rpartition(":")[0] if stored.last_event_id else ""
        self._decoder.seed(external_id, stored.last_level, deduplication_id=uplink or None)


def _ref(known: KnownDevice, external_id: str) -> DeviceRef:
    return DeviceRef(known.site, known.device, known.kind, known.source, external_id,
                     known.mapping)
