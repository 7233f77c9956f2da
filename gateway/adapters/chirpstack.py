"""ChirpStack v4 MQTT integration events (JSON marshaler) → native events.

Topic ``application/{application_id}/device/{dev_eui}/event/{event}``. What is read:

* ``up``: ``deviceInfo.devEui``, ``time`` (event time; receipt time if absent),
  ``deduplicationId`` (the event id: ChirpStack retries of one uplink are stored once) and
  ``object``, the codec's decoded payload, which a vendor mapping (``device.mapping``)
  turns into readings. ``object`` exists only when the device profile has a codec;
  without one the uplink is refused with ``missing_codec``.
* ``status``: ``batteryLevel`` (percent) → a ``heartbeat`` carrying the battery.
* other events (``join``, ``ack``, ``txack``, ``log``, ``location``, ``integration``)
  carry nothing Nattero stores.

ChirpStack v3 JSON (``applicationID``, base64 ``devEUI``, string ``objectJSON``) is refused
with ``chirpstack_v3_payload``; it is never half-read. Never talks to MQTT or the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.events import DeviceSource, Event, EventKind

from .base import AdapterError, Decoded, DeviceRef, normalise_dev_eui
from .payload import battery_percent, json_object, parse_time, utc
from .state import LastKnownState
from .vendors import MAPPINGS, VendorMapping

_V3_KEYS = ("applicationID", "devEUI", "objectJSON")


class ChirpStackDecoder:
    """Decodes one ChirpStack server's device events, remembering each device's last state.

    Not thread-safe: the gateway keeps one decoder and calls it from its message thread.
    """

    def __init__(self, mappings: Mapping[str, VendorMapping] = MAPPINGS) -> None:
        self._mappings = mappings
        self._state = LastKnownState()
        # The last uplink's deduplicationId and result, per DevEUI: a retry or an MQTT
        # redelivery of the same uplink must give the same events, not "no change".
        self._last_uplink: dict[str, tuple[str, Decoded]] = {}

    def seed(
        self, external_id: str, last: EventKind | None = None, *,
        deduplication_id: str | None = None,
    ) -> None:
        """Restore a device's last stored event kind after a gateway restart.

        ``deduplication_id`` is that of the last uplink already stored: when the broker
        redelivers it (the gateway stopped after the commit, before the acknowledgement),
        it gives no events, rather than a heartbeat against the restored state.
        """
        if last is not None:
            self._state.seed(external_id, last)
        if deduplication_id is not None:
            self._last_uplink[external_id] = (deduplication_id, Decoded([]))

    def decode(
        self, device: DeviceRef, channel: str, payload: bytes, received_at: datetime
    ) -> Decoded:
        """Dispatch on the topic's event type (``BridgeTopic.channel``)."""
        if channel == "up":
            return self.decode_up(device, payload, received_at)
        if channel == "status":
            return self.decode_status(device, payload, received_at)
        _require_source(device)
        return Decoded([])

    def decode_up(self, device: DeviceRef, payload: bytes, received_at: datetime) -> Decoded:
        """Events from an ``event/up`` uplink, through the device's vendor mapping."""
        envelope = _Envelope.read(device, payload, received_at, "uplink")
        mapping = self._mapping(device)
        previous = self._last_uplink.get(envelope.dev_eui)
        if previous is not None and previous[0] == envelope.deduplication_id:
            return previous[1]

        decoded_object = envelope.body.get("object")
        if decoded_object is None:
            raise AdapterError(
                "missing_codec",
                f"uplink from {envelope.dev_eui} has no decoded 'object': ChirpStack sets it "
                f"only when the device profile has a codec; add the vendor's decoder "
                f"(mapping {device.mapping!r}) to the device profile in ChirpStack",
            )
        if not isinstance(decoded_object, dict):
            raise AdapterError(
                "invalid_object",
                f"uplink 'object' from {envelope.dev_eui} must be a JSON object, "
                f"got {type(decoded_object).__name__}",
            )

        readings = mapping(decoded_object, device.kind)
        battery = next((level for _, level in readings if level is not None), None)
        read = [kind for kind, _ in readings if kind is not EventKind.HEARTBEAT]
        # Every uplink proves the device alive: when it changes nothing, it is a heartbeat.
        kinds = self._state.changes(envelope.dev_eui, read) or [EventKind.HEARTBEAT]
        result = Decoded(
            [envelope.event(device, kind, battery) for kind in kinds],
            warnings=envelope.warnings,
        )
        self._last_uplink[envelope.dev_eui] = (envelope.deduplication_id, result)
        return result

    def decode_status(
        self, device: DeviceRef, payload: bytes, received_at: datetime
    ) -> Decoded:
        """A ``heartbeat`` with ``batteryLevel`` from an ``event/status`` message."""
        envelope = _Envelope.read(device, payload, received_at, "status event")
        body = envelope.body
        battery = None
        # Protobuf JSON leaves out false flags, so absent means "battery level is valid".
        if not body.get("externalPowerSource") and not body.get("batteryLevelUnavailable"):
            battery = battery_percent(body.get("batteryLevel"))
        return Decoded(
            [envelope.event(device, EventKind.HEARTBEAT, battery)], warnings=envelope.warnings
        )

    def _mapping(self, device: DeviceRef) -> VendorMapping:
        mapping = self._mappings.get(device.mapping) if device.mapping else None
        if mapping is None:
            known = ", ".join(sorted(self._mappings))
            raise AdapterError(
                "unknown_mapping",
                f"device {device.device!r} on site {device.site!r} has mapping "
                f"{device.mapping!r}; set one of: {known} (nattero device add ... --mapping)",
            )
        return mapping


class _Envelope:
    """The parts every v4 device event shares, checked against the provisioned device."""

    def __init__(
        self,
        body: dict[str, Any],
        dev_eui: str,
        deduplication_id: str,
        ts: datetime,
        warnings: tuple[str, ...],
    ) -> None:
        self.body = body
        self.dev_eui = dev_eui
        self.deduplication_id = deduplication_id
        self.ts = ts
        self.warnings = warnings

    @classmethod
    def read(
        cls, device: DeviceRef, payload: bytes, received_at: datetime, what: str
    ) -> _Envelope:
        _require_source(device)
        received = utc(received_at)
        body = json_object(payload, f"ChirpStack {what} for {device.external_id}")
        info = body.get("deviceInfo")
        if not isinstance(info, dict):
            if any(key in body for key in _V3_KEYS):
                raise AdapterError(
                    "chirpstack_v3_payload",
                    f"ChirpStack {what} for {device.external_id} is in the ChirpStack v3 "
                    f"format (applicationID, base64 devEUI, objectJSON); Nattero reads "
                    f"ChirpStack v4 events only: upgrade the network server to v4",
                )
            raise AdapterError(
                "missing_device_info",
                f"ChirpStack {what} for {device.external_id} has no deviceInfo object",
            )
        dev_eui = normalise_dev_eui(str(info.get("devEui", "")))
        if dev_eui is None or dev_eui != normalise_dev_eui(device.external_id):
            raise AdapterError(
                "dev_eui_mismatch",
                f"ChirpStack {what} on the topic of {device.external_id} carries devEui "
                f"{info.get('devEui')!r}",
            )
        deduplication_id = body.get("deduplicationId")
        if not isinstance(deduplication_id, str) or not deduplication_id.strip():
            raise AdapterError(
                "missing_deduplication_id",
                f"ChirpStack {what} from {dev_eui} has no deduplicationId to use as event id",
            )
        warnings: tuple[str, ...] = ()
        ts = parse_time(body.get("time")) if body.get("time") is not None else None
        if ts is None:
            if body.get("time") is not None:
                warnings = (f"unreadable time {body['time']!r}; used the receipt time",)
            ts = received
        return cls(body, dev_eui, deduplication_id.strip(), ts, warnings)

    def event(self, device: DeviceRef, kind: EventKind, battery: int | None) -> Event:
        # deduplicationId identifies the uplink across ChirpStack retries and MQTT
        # redeliveries; one uplink may say two things (motion + presence.on), so the kind
        # is appended to keep the ids of one uplink distinct.
        event_id = f"{self.deduplication_id}:{kind}"
        return Event(device.site, device.device, event_id, self.ts, kind, battery)


def _require_source(device: DeviceRef) -> None:
    if device.source is not DeviceSource.CHIRPSTACK:
        raise AdapterError(
            "wrong_source",
            f"device {device.device!r} on site {device.site!r} is provisioned with source "
            f"{device.source}, not chirpstack",
        )
