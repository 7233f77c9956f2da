"""Zigbee2MQTT: device state on ``zigbee2mqtt/{name}``, availability on ``.../availability``.

The traps this module exists to handle:

* ``contact: true`` means the door is *closed* (the reed contact is made); ``false`` is open.
* Zigbee2MQTT republishes a device's full state on every report, so only a *change* of
  ``contact``/``occupancy`` is an event; anything else is at most a heartbeat.
* ``battery`` is missing until the device first reports it.
* ``last_seen`` (``advanced.last_seen``: ISO_8601, ISO_8601_local or epoch) is the event time
  when present, otherwise the time the gateway received the message.
* Availability is ``{"state": "online"}`` since Zigbee2MQTT 2.0 and plain ``online`` before.
  Battery devices are marked offline only after 25 h by default, so Nattero's own heartbeat
  expectation stays the real offline detector; nothing here relies on availability.

Device kinds: a ``door``/``exit`` device maps ``contact``; a ``motion`` device maps
``occupancy`` (``true`` → ``motion`` + ``presence.on``, ``false`` → ``presence.off``); a ``bed``
device is a bed pad exposing ``occupancy`` (someone on the pad), so ``true`` → ``bed.enter`` and
``false`` → ``bed.exit``.

Never talks to MQTT or the database; the gateway restores state with :meth:`seed`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from core.events import DeviceKind, DeviceSource, Event, EventKind, Presence, StatusChange

from .base import AdapterError, Decoded, DeviceRef
from .payload import battery_percent, json_object, parse_time, utc
from .state import LastKnownState

_DOOR_KINDS = (DeviceKind.DOOR, DeviceKind.EXIT)


class Zigbee2MqttDecoder:
    """Decodes one Zigbee2MQTT bridge's messages, remembering each device's last state.

    Not thread-safe: the gateway keeps one decoder and calls it from its message thread.
    """

    def __init__(self) -> None:
        self._state = LastKnownState()
        self._last_seen: dict[str, datetime] = {}
        # The last message and its result, per device: an MQTT redelivery of the same message
        # must give the very same events (same ids), not be mistaken for "no change".
        self._last_message: dict[str, tuple[bytes, Decoded]] = {}

    def seed(
        self, external_id: str, last: EventKind | None = None, *, last_seen: datetime | None = None
    ) -> None:
        """Restore a device's last stored event kind (and ``last_seen``) after a restart."""
        if last is not None:
            self._state.seed(external_id, last)
        if last_seen is not None:
            self._last_seen[external_id] = utc(last_seen)

    def decode_state(self, device: DeviceRef, payload: bytes, received_at: datetime) -> Decoded:
        """Events from a ``zigbee2mqtt/{name}`` state message (JSON object)."""
        _require_source(device)
        received = utc(received_at)
        name = device.external_id
        previous = self._last_message.get(name)
        if previous is not None and previous[0] == payload:
            return previous[1]

        state = json_object(payload, f"Zigbee2MQTT state of {name!r}")
        warnings: list[str] = []

        battery = battery_percent(state.get("battery"))
        if state.get("battery") is not None and battery is None:
            warnings.append(f"ignored battery {state['battery']!r}: not a percentage 0-100")

        seen = None
        if state.get("last_seen") is not None:
            seen = parse_time(state["last_seen"])
            if seen is None:
                warnings.append(
                    f"unreadable last_seen {state['last_seen']!r}; used the receipt time"
                )
        before = self._last_seen.get(name)
        # A message whose last_seen did not advance was published by the bridge itself (an
        # occupancy_timeout clearing occupancy, the cached state resent on startup), not
        # caused by a new Zigbee message: it is not proof of life, and a change it carries
        # happened now rather than at the device's last report.
        advanced = seen is None or before is None or seen > before
        if seen is not None and advanced:
            self._last_seen[name] = seen

        kinds = self._state.changes(name, _read(device, state))
        if kinds:
            ts = seen if seen is not None and advanced else received
        elif advanced:
            kinds = [EventKind.HEARTBEAT]
            ts = seen if seen is not None else received
        else:
            ts = received

        # A bed's repeated state is its heartbeat, and says the state (``occupied``): the
        # evidence the rules need when the message of the change itself was lost.
        occupied = (_flag(state, "occupancy", device) if device.kind is DeviceKind.BED
                    else None)
        events = [
            Event(device.site, device.device, _event_id(name, kind, ts), ts, kind, battery,
                  occupied if kind is EventKind.HEARTBEAT else None)
            for kind in kinds
        ]
        decoded = Decoded(events, warnings=tuple(warnings))
        self._last_message[name] = (payload, decoded)
        return decoded

    def decode_availability(
        self, device: DeviceRef, payload: bytes, received_at: datetime
    ) -> Decoded:
        """The presence from a ``zigbee2mqtt/{name}/availability`` message (either style)."""
        _require_source(device)
        received = utc(received_at)
        presence = _availability(payload, device.external_id)
        return Decoded([], StatusChange(device.site, device.device, presence, received))


def _require_source(device: DeviceRef) -> None:
    if device.source is not DeviceSource.ZIGBEE2MQTT:
        raise AdapterError(
            "wrong_source",
            f"device {device.device!r} on site {device.site!r} is provisioned with source "
            f"{device.source}, not zigbee2mqtt",
        )


def _read(device: DeviceRef, state: dict[str, object]) -> list[EventKind]:
    """The level kinds a state message reports for this kind of device (before dedup)."""
    if device.kind in _DOOR_KINDS:
        contact = _flag(state, "contact", device)
        if contact is None:
            return []
        # The classic trap: contact true means the magnet is at the reed, i.e. closed.
        return [EventKind.DOOR_CLOSED] if contact else [EventKind.DOOR_OPEN]
    occupancy = _flag(state, "occupancy", device)
    if occupancy is None:
        return []
    if device.kind is DeviceKind.BED:
        return [EventKind.BED_ENTER] if occupancy else [EventKind.BED_EXIT]
    return [EventKind.MOTION, EventKind.PRESENCE_ON] if occupancy else [EventKind.PRESENCE_OFF]


def _flag(state: dict[str, object], key: str, device: DeviceRef) -> bool | None:
    value = state.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise AdapterError(
            f"invalid_{key}",
            f"Zigbee2MQTT {key!r} of {device.external_id!r} must be true or false, "
            f"got {value!r}",
        )
    return value


def _availability(payload: bytes, name: str) -> Presence:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise AdapterError("not_utf8", f"availability of {name!r} is not UTF-8 text") from exc
    value: object = text
    if text.startswith(("{", '"')):
        try:
            parsed: object = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdapterError(
                "invalid_json", f"availability of {name!r} is not valid JSON ({exc.msg})"
            ) from exc
        # Zigbee2MQTT >= 2.0: {"state": "online"}; tolerate a JSON string as well.
        value = parsed.get("state") if isinstance(parsed, dict) else parsed
    if value in ("online", "offline"):
        return Presence(value)
    raise AdapterError(
        "invalid_availability",
        f"availability of {name!r} must be online/offline or {{\"state\": \"online\"|"
        f"\"offline\"}}, got {text[:80]!r}",
    )


def _event_id(name: str, kind: EventKind, ts: datetime) -> str:
    # Zigbee2MQTT messages carry no id, so the id is derived from what happened and when:
    # (friendly name, kind, event time). With last_seen enabled the time comes from the
    # bridge, so the same message redelivered, or the same state resent by the bridge, gives
    # the same id and is stored once; two different changes differ in kind or time. (An exact
    # redelivery is also answered from the decoder's memory of the last message.)
    digest = hashlib.sha256(f"{name}\x1f{kind}\x1f{ts.isoformat()}".encode()).hexdigest()
    return f"z2m-{digest[:32]}"
