"""The gateway's ``BufferedClient`` against the paho-mqtt it was written for.

``gateway/buffered_client.py`` overrides paho's private ``_sock_recv`` and
``_handle_on_message``, calls ``_packet_queue`` and reads ``_sock``, ``_userdata`` and
``_in_callback_mutex``. A paho release may change any of them without notice, so these
tests fail on an upgrade before the gateway silently loses or duplicates acknowledgements.

Before widening ``SUPPORTED_PAHO`` and the ``paho-mqtt`` pin in pyproject.toml, re-read
paho's ``Client`` for each name below and check that:
  * ``_packet_read`` still reads every byte through ``_sock_recv`` (and treats
    ``BlockingIOError`` as "nothing yet" and ``b""`` as "connection closed");
  * ``loop_read`` is still what ``loop_forever`` calls when the socket is readable;
  * ``_handle_publish`` still hands each message to ``_handle_on_message``, and
    ``on_message`` is still called under ``_in_callback_mutex`` with ``_userdata``;
  * a manual QoS 1 ``ack`` is still one ``!BBH`` PUBACK passed to ``_packet_queue``;
then run the gateway tests (tests/test_gateway_resilience.py, tests/test_ingest.py) and
bench/ingest.py.
"""

from __future__ import annotations

import inspect
import socket
import struct
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest
from packaging.specifiers import SpecifierSet
from paho.mqtt.enums import CallbackAPIVersion

from gateway.buffered_client import (
    SUPPORTED_PAHO,
    BufferedClient,
    PahoVersionError,
    check_paho_version,
)

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

REPO = Path(__file__).resolve().parent.parent
RECHECK = ("paho-mqtt changed under gateway/buffered_client.py: re-check it as the docstring of "
           "tests/test_buffered_client_paho.py says before raising the pin")

# name -> the parameters (after self) BufferedClient relies on, with their defaults.
PRIVATE_METHODS: dict[str, list[tuple[str, object]]] = {
    "_sock_recv": [("bufsize", inspect.Parameter.empty)],
    "loop_read": [("max_packets", 1)],
    "_packet_queue": [("command", inspect.Parameter.empty), ("packet", inspect.Parameter.empty),
                      ("mid", inspect.Parameter.empty), ("qos", inspect.Parameter.empty),
                      ("info", None)],
    "_handle_on_message": [("message", inspect.Parameter.empty)],
}


def paho_pin() -> SpecifierSet:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("paho-mqtt")]
    assert len(pins) == 1, pins
    return SpecifierSet(pins[0].removeprefix("paho-mqtt"))


def test_installed_paho_is_inside_the_supported_range() -> None:
    installed = version("paho-mqtt")
    assert installed == paho.mqtt.__version__
    assert installed in paho_pin(), f"paho-mqtt {installed} is outside the pin; {RECHECK}"
    check_paho_version(installed)


def test_pin_in_pyproject_matches_the_supported_range() -> None:
    (low_major, low_minor), (high_major, high_minor) = SUPPORTED_PAHO
    assert paho_pin() == SpecifierSet(f">={low_major}.{low_minor},<{high_major}.{high_minor}")


@pytest.mark.parametrize("other", ["2.1.0", "2.3.0", "3.0.0", "1.6.1", "not-a-version"])
def test_a_paho_outside_the_range_is_refused_with_what_to_do(other: str) -> None:
    with pytest.raises(PahoVersionError, match=r"re-check gateway/buffered_client\.py"):
        check_paho_version(other)


@pytest.mark.parametrize("name", sorted(PRIVATE_METHODS))
def test_private_method_keeps_its_signature(name: str) -> None:
    method = getattr(mqtt.Client, name, None)
    assert callable(method), f"paho's Client has no {name}(); {RECHECK}"
    parameters = list(inspect.signature(method).parameters.values())[1:]
    found = [(p.name, p.default) for p in parameters]
    assert found == PRIVATE_METHODS[name], f"paho's Client.{name} is now {found}; {RECHECK}"


def test_reads_publishes_and_acks_go_through_the_overridden_methods() -> None:
    def calls(method: str, callee: str) -> bool:
        return f"self.{callee}(" in inspect.getsource(getattr(mqtt.Client, method))

    assert calls("_packet_read", "_sock_recv"), RECHECK
    assert calls("_handle_publish", "_handle_on_message"), RECHECK
    assert calls("loop_forever", "_loop") and calls("_loop", "loop_read"), RECHECK
    assert calls("_send_command_with_mid", "_packet_queue"), RECHECK


def test_private_attributes_exist_on_a_new_client() -> None:
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="paho-check",
                            manual_ack=True)
    assert client._sock is None, RECHECK
    assert client._userdata is None, RECHECK
    mutex: Any = client._in_callback_mutex
    assert hasattr(mutex, "__enter__") and hasattr(mutex, "acquire"), RECHECK


def test_ack_many_queues_the_same_bytes_as_paho_acking_one_by_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[tuple[int, bytes, int, int]] = []

    def record(command: int, packet: bytes, mid: int, qos: int, info: object = None) -> Any:
        queued.append((command, bytes(packet), mid, qos))
        return mqtt.MQTT_ERR_SUCCESS

    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="paho-ack", manual_ack=True)
    monkeypatch.setattr(client, "_packet_queue", record)
    for mid in (7, 8, 65535):
        client.ack(mid, 1)
    one_by_one = b"".join(packet for _, packet, _, _ in queued)
    assert {command for command, *_ in queued} == {mqtt.PUBACK}
    queued.clear()
    client.ack_many([7, 8, 65535])
    assert len(queued) == 1 and queued[0][0] == mqtt.PUBACK
    assert queued[0][1] == one_by_one, RECHECK


def _publish_qos1(topic: str, mid: int, payload: bytes) -> bytes:
    body = struct.pack("!H", len(topic)) + topic.encode() + struct.pack("!H", mid) + payload
    assert len(body) < 128  # one-byte remaining length keeps the packet builder simple
    return bytes([mqtt.PUBLISH | 0x02, len(body)]) + body


def test_one_wake_up_delivers_every_buffered_message_in_order() -> None:
    received: list[tuple[str, int, bytes]] = []
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="paho-read",
                            protocol=mqtt.MQTTv311, manual_ack=True)
    client.on_message = lambda c, userdata, m: received.append((m.topic, m.mid, bytes(m.payload)))
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        client._sock = ours
        client.reset_buffer()
        theirs.sendall(b"".join(_publish_qos1(f"nattero/v1/s/d{i}/event", i, b"{}")
                                for i in range(1, 6)))
        client.loop_read()  # one wake-up of paho's loop
        client._sock = None
    assert [mid for _, mid, _ in received] == [1, 2, 3, 4, 5], RECHECK
