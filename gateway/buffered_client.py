"""A paho client that reads the socket in large chunks.

paho reads every packet with three or more ``recv()`` calls and goes through ``select()``
once per packet; at 15,000 messages/s those syscalls, not our code, are the limit. This
subclass serves paho's small reads from a 64 KiB buffer and drains every complete packet
of the buffer per wake-up. It touches two of paho's private methods (``_sock_recv`` and the
public ``loop_read``), queues acknowledgements through ``_packet_queue`` and dispatches to
the one ``on_message`` without topic matching; the gateway's tests pin all of it.
Everything else is paho's.

Because it leans on paho's internals, it refuses to run on a paho version it was not
checked against (``PahoVersionError``); ``tests/test_buffered_client_paho.py`` lists what
to re-check before widening ``SUPPORTED_PAHO`` and the pin in ``pyproject.toml``.
"""

from __future__ import annotations

import struct
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from core.errors import NatteroError

__all__ = ["SUPPORTED_PAHO", "BufferedClient", "PahoVersionError", "check_paho_version"]

CHUNK = 65536
_PUBACK = struct.Struct("!BBH")

# [lowest, first unsupported) minor versions of paho-mqtt whose private members this class
# was read against; keep in step with the ``paho-mqtt`` pin in pyproject.toml.
SUPPORTED_PAHO = ((2, 2), (2, 3))


class PahoVersionError(NatteroError):
    """The installed paho-mqtt is outside the versions ``BufferedClient`` was checked on."""


def check_paho_version(version: str = paho.mqtt.__version__) -> None:
    """Raise ``PahoVersionError`` unless ``version`` is inside ``SUPPORTED_PAHO``."""
    low, high = SUPPORTED_PAHO
    try:
        minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        minor = (-1, -1)
    if not low <= minor < high:
        raise PahoVersionError(
            f"paho-mqtt {version} is installed, but the gateway's BufferedClient overrides "
            f"paho's private methods and was checked only on {low[0]}.{low[1]}.x; install "
            f"'paho-mqtt>={low[0]}.{low[1]},<{high[0]}.{high[1]}' (pip install -e .), or "
            f"re-check gateway/buffered_client.py against the new paho as "
            f"tests/test_buffered_client_paho.py describes, then widen SUPPORTED_PAHO and "
            f"the pin in pyproject.toml")


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_paho_version()
        super().__init__(*args, **kwargs)
        self._buffer = b""
        self._offset = 0

    def loop_start(self) -> MQTTErrorCode:
        # paho makes a new wake-up socket pair on every loop_start without closing the one
        # of the last: a client whose loop is started again would leak two sockets.
        if self._thread is None:
            self._reset_sockets(sockpair_only=True)
        return super().loop_start()

    def reset_buffer(self) -> None:
        """Forget bytes of a previous connection (call when a new socket opens)."""
        self._buffer = b""
        self._offset = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._offset >= len(self._buffer):
            data = super()._sock_recv(CHUNK)  # BlockingIOError when nothing is there
            if not data:
                return data  # the broker closed the connection
            self._buffer, self._offset = data, 0
        start = self._offset
        self._offset = min(start + bufsize, len(self._buffer))
        return self._buffer[start:self._offset]

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge many QoS 1 messages with one write: paho's ``ack`` wakes its loop and
        sends one 4-byte PUBACK per call. The PUBACKs are the same bytes, in the same order."""
        if not mids:
            return
        packet = b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids)
        self._packet_queue(mqtt.PUBACK, packet, 0, 1)

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # The gateway has one on_message and no per-topic callbacks, so paho's topic
        # matching (a trie walk and a lock per message) is skipped.
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            on_message(self, self._userdata, message)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None
               and self._offset < len(self._buffer)):
            rc = super().loop_read(max_packets)
        return rc
