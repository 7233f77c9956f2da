"""Test-side MQTT devices: real paho clients with a device's own credentials."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

MAX_IN_FLIGHT = 500  # paho mids are 16-bit; stay far below 65,535 unacknowledged


class DeviceClient:
    """One connected device; ``publish_many`` waits for every PUBACK.

    It connects with its account's own client id (the username) unless given another, which
    the broker refuses for a bound account (``ConnectionRefusedError``)."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 client_id: str | None = None, will: tuple[str, str] | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or username,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        # As docs/devices.md asks of a device: after a lost connection, try again every 1-2 s
        # (paho's default doubles its pause up to 2 minutes: an exit opened while the hub
        # restarted waited on the device for 8 s more).
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        if will is not None:  # (status topic, payload): retained, as a real device sets it
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self._connected = threading.Event()
        self.disconnects = 0  # connections the broker closed (or takeovers) since connecting
        self.connect_reason: ReasonCode | None = None
        self._window = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._acked = 0
        self._sent = 0
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.close()
            raise TimeoutError("device could not connect to the broker")
        if self.connect_reason is not None and self.connect_reason.is_failure:
            self.close()
            raise ConnectionRefusedError(str(self.connect_reason))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason_code: ReasonCode, properties: Any) -> None:
        self.connect_reason = reason_code
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: ReasonCode, properties: Any) -> None:
        self.disconnects += 1

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                    reason_code: ReasonCode, properties: Any) -> None:
        with self._lock:
            self._acked += 1
        self._window.release()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1,
                retain: bool = False) -> mqtt.MQTTMessageInfo:
        self._window.acquire()
        with self._lock:
            self._sent += 1
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def flush(self, timeout: float = 60) -> None:
        """Wait until the broker acknowledged everything published so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._acked >= self._sent:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{self._sent - self._acked} publishes not acknowledged")

    def publish_many(self, messages: Iterable[tuple[str, bytes | str]],
                     timeout: float = 60) -> None:
        for topic, payload in messages:
            self.publish(topic, payload)
        self.flush(timeout)

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


def event_payload(kind: str = "motion", ts: datetime | None = None, event_id: str | None = None,
                  battery: int | None = None, occupied: bool | None = None) -> bytes:
    body: dict[str, Any] = {"id": event_id or uuid.uuid4().hex,
                            "ts": (ts or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
                            "kind": kind}
    if battery is not None:
        body["battery"] = battery
    if occupied is not None:
        body["occupied"] = occupied
    return json.dumps(body).encode()
