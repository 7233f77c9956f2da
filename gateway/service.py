"""The gateway: a persistent MQTT session whose messages are acknowledged only after commit.

paho's network thread only enqueues messages (paho sends no PUBACK until we call ``ack``,
and the callback must not block). One writer thread drains the queue in batches, decodes,
commits through ``EventWriter`` and then acknowledges. If the database is away it retries
the same batch with backoff and keeps the acknowledgements back: the broker keeps the
messages, and the unique key dedupes whatever it redelivers after a crash.

With several central brokers (``NATTERO_MQTT_BROKERS``, `nattero up --ha`) the gateway
keeps one session on each, with the same client id: a site hub bridges every message to
each of them, so no one broker stands between a sensor and the database. The writer
stores a message's event once, whichever broker it came from first (the store's unique
key drops the doubles), and acknowledges each copy to the broker that sent it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core import metrics
from core.errors import NatteroError
from core.settings import Settings
from gateway.bridges import ChirpStackBridge, EventHistory, Zigbee2MqttBridge
from gateway.buffered_client import BufferedClient
from gateway.copies import BrokerCopies
from gateway.protocol import Rejected, RejectReason, future_detail
from gateway.registry import DeviceRegistry
from gateway.routing import MessageRouter, bridge_of, is_native_events, sender_of
from ingest.writer import (
    Batch,
    BatchHook,
    BatchResult,
    DeadLetterRecord,
    EventWriter,
    StoredEventRow,
    StoreUnavailable,
    WriteFence,
)

log = logging.getLogger(__name__)

BRIDGE_SUBSCRIPTIONS = [("zigbee2mqtt/#", 1), ("application/+/device/+/event/+", 1)]
AUTH_FAILURES = {134, 135}  # bad user name or password, not authorised


class GatewayAuthError(NatteroError):
    """The broker refused the gateway's credentials; retrying will not help."""


class _Inbound(NamedTuple):  # a tuple: built once per message on paho's thread
    topic: str
    payload: bytes
    received_at: datetime
    mid: int
    qos: int
    generation: int
    retained: bool
    broker: int  # index in Gateway._sessions


class _Session:
    """The gateway's persistent session on one central broker."""

    def __init__(self, index: int, host: str, port: int, client: BufferedClient) -> None:
        self.index = index
        self.host = host
        self.port = port
        self.client = client
        # Bumped on every connect and disconnect: acknowledgements for messages of an old
        # connection must never be sent on a new one (their message ids may be reused).
        self.generation = 0
        self.connected = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class Gateway:
    def __init__(self, settings: Settings, hooks: Sequence[BatchHook] = (),
                 fence: WriteFence | None = None) -> None:
        """``fence``: a leased worker's (``ingest.leases``); its writes are refused once a
        site's lease was taken over, and the refused messages are never acknowledged."""
        self._settings = settings
        dsn = settings.resolved_database_url()
        self.registry = DeviceRegistry(dsn, sites=settings.gateway_sites or None)
        self.router = MessageRouter(self.registry)
        self.bridge_history: EventHistory | None = None
        if settings.gateway_bridges:
            self.bridge_history = EventHistory(dsn)
            for bridge in (Zigbee2MqttBridge, ChirpStackBridge):
                self.router.add_bridge(bridge(self.registry, self.bridge_history,
                                              sites=settings.gateway_sites))
        self.writer = EventWriter(
            dsn, hooks, dead_letters_per_minute=settings.dead_letters_per_minute,
            dead_letters_per_minute_per_bridge=settings.dead_letters_per_minute_per_bridge,
            dead_letters_per_minute_total=settings.dead_letters_per_minute_total,
            dead_letter_payload_bytes=settings.dead_letter_payload_bytes, fence=fence)
        self._future_skew = timedelta(seconds=settings.event_future_skew_s)
        # deque: append/popleft are atomic; cheaper than queue.Queue's locks per message.
        self._queue: deque[_Inbound] = deque()
        self._arrived = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()  # set while any session is ready
        self.fatal: Exception | None = None
        self._thread: threading.Thread | None = None
        self._copies = BrokerCopies()
        self._sessions = [_Session(index, host, port, self._make_client(index))
                          for index, (host, port) in enumerate(settings.central_brokers())]

    # -- MQTT side (paho's threads, one per broker) ----------------------------------------
    def _make_client(self, index: int) -> BufferedClient:
        account = self._settings.gateway_account()
        v5 = self._settings.gateway_mqtt_version == "5"
        # MQTT 3.1.1: a persistent session is clean_session=False (kept by the broker until
        # persistent_client_expiration); MQTT 5: clean_start=False with a session expiry.
        client = BufferedClient(CallbackAPIVersion.VERSION2,
                             client_id=self._settings.resolved_gateway_client_id(),
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                             clean_session=None if v5 else False, manual_ack=True,
                             userdata=index)
        client.username_pw_set(account.username, account.password)
        tls = self._settings.mqtt_tls_context()
        if tls is not None:
            client.tls_set_context(tls)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        return client

    def _on_socket_open(self, client: mqtt.Client, userdata: object, sock: object) -> None:
        if isinstance(client, BufferedClient):
            client.reset_buffer()
        # Latency matters more than packet count: PUBACKs and alerts must not wait for Nagle.
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _session(self, userdata: object) -> _Session:
        return self._sessions[userdata if isinstance(userdata, int) else 0]

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        session = self._session(userdata)
        if reason_code.is_failure:
            if reason_code.value in AUTH_FAILURES:
                self.fatal = GatewayAuthError(
                    f"the broker at {session.address} refused the gateway account "
                    f"({reason_code}); check NATTERO_GATEWAY_USERNAME/PASSWORD (the same "
                    "account on every central broker) or run `nattero up` to recreate it")
                self._stop.set()
                client.disconnect()
            else:
                log.warning("broker %s refused connection: %s; retrying", session.address,
                            reason_code)
            return
        session.generation += 1
        log.info("connected to broker %s (session present: %s)", session.address,
                 flags.session_present)
        client.subscribe(self.subscriptions())

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[ReasonCode], properties: Properties | None) -> None:
        session = self._session(userdata)
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker %s refused subscriptions %s: %s; check the gateway account's "
                      "role", session.address, self.subscriptions(), refused)
        # Connected means ready to receive: devices may publish from here on.
        session.connected.set()
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object,
                       flags: mqtt.DisconnectFlags, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        session = self._session(userdata)
        session.connected.clear()
        if not any(s.connected.is_set() for s in self._sessions):
            self._connected.clear()
        session.generation += 1
        if not self._stop.is_set():
            log.warning("disconnected from broker %s (%s); reconnecting", session.address,
                        reason_code)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Never raise here: an exception would end paho's network thread. A topic that is
        # not UTF-8 (Mosquitto refuses those anyway) becomes a bad-topic dead letter.
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", errors="replace")
        session = self._session(userdata)
        self._queue.append(_Inbound(topic, bytes(msg.payload), datetime.now(UTC), msg.mid,
                                    msg.qos, session.generation, bool(msg.retain),
                                    session.index))
        if not self._arrived.is_set():  # set() takes a lock; skip it when already set
            self._arrived.set()

    def subscriptions(self) -> list[tuple[str, int]]:
        sites = self._settings.gateway_sites or ["+"]
        topics = [(f"nattero/v1/{site}/+/{channel}", 1)
                  for site in sites for channel in ("events", "status")]
        return topics + (BRIDGE_SUBSCRIPTIONS if self._settings.gateway_bridges else [])

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, wait_connected_s: float = 15.0) -> None:
        """Connect to every central broker; wait up to ``wait_connected_s`` for them. One
        that is down is not waited for past that: the gateway serves from the others and
        keeps trying it (a central broker may be away, the night goes on)."""
        props: Properties | None = None
        if self._settings.gateway_mqtt_version == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._settings.gateway_session_expiry_s
            props.ReceiveMaximum = self._settings.gateway_receive_maximum
        self._thread = threading.Thread(target=self._write_loop, name="gateway-writer",
                                        daemon=True)
        self._thread.start()
        for session in self._sessions:
            # clean_start=False on every connect: a restarted gateway must resume its
            # session and receive what the broker queued while it was away.
            if props is None:
                session.client.connect_async(session.host, session.port, keepalive=20)
            else:
                session.client.connect_async(session.host, session.port, keepalive=20,
                                             clean_start=False, properties=props)
            session.client.loop_start()
        deadline = time.monotonic() + wait_connected_s
        for session in self._sessions:
            if not wait_connected_s or self.fatal:
                break
            if not session.connected.wait(max(0.0, deadline - time.monotonic())):
                log.warning("gateway not yet connected to %s; will keep trying",
                            session.address)
        if self.fatal:
            raise self.fatal

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for session in self._sessions:
            session.client.disconnect()
            session.client.loop_stop()
        self.writer.close()
        self.registry.close()
        if self.bridge_history is not None:
            self.bridge_history.close()

    @property
    def connected(self) -> bool:
        """Ready on at least one central broker."""
        return self._connected.is_set()

    def brokers(self) -> dict[str, bool]:
        """Each central broker's address and whether the gateway's session there is ready."""
        return {s.address: s.connected.is_set() for s in self._sessions}

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def wait(self) -> None:
        """Block until stopped; raises the fatal error if there was one."""
        while not self._stop.wait(0.5):
            pass
        if self.fatal:
            raise self.fatal

    # -- writer thread -------------------------------------------------------------------
    def _take_batch(self) -> list[_Inbound]:
        if not self._queue:
            self._arrived.wait(0.2)
            self._arrived.clear()
        taken: list[_Inbound] = []
        limit = self._settings.ingest_batch_max
        popleft = self._queue.popleft
        while len(taken) < limit:
            try:
                taken.append(popleft())
            except IndexError:
                break
        return taken

    def _decode(self, inbound: list[_Inbound]) -> Batch:
        batch = Batch()
        self.registry.reload_if_stale()
        for item in inbound:
            try:
                if item.retained and is_native_events(item.topic):
                    # The broker replays a retained event on every (re)subscription; stored,
                    # it would raise its alert again each time. Only status is retained.
                    raise Rejected(RejectReason.RETAINED_EVENT,
                                   "an event was published with the retain flag; the broker "
                                   "replays it on every subscription. Publish events with "
                                   "retain=false (only the status topic is retained), and clear "
                                   "this one by publishing an empty retained message to the topic")
                routed = self.router.route(item.topic, item.payload, item.received_at)
            except Rejected as rejected:
                if self._another_brokers_copy(item, item.topic):
                    continue
                batch.dead_letters.append(DeadLetterRecord(
                    item.received_at, item.topic, item.payload, rejected.reason, rejected.detail,
                    sender=sender_of(item.topic), bridge=bridge_of(item.topic)))
                metrics.DEAD_LETTERS.labels(reason=rejected.reason).inc()
                continue
            for event in routed.events:
                ahead = event.ts - item.received_at
                if ahead > self._future_skew:
                    # A device clock ahead of ours would move the site's rules clock and
                    # fire other flats' timers early: kept for the record, never evaluated.
                    if self._another_brokers_copy(item, f"{item.topic}#{event.id}"):
                        continue
                    batch.dead_letters.append(DeadLetterRecord(
                        item.received_at, item.topic, item.payload, RejectReason.FUTURE_TS,
                        future_detail(event.id, event.ts, ahead, self._future_skew),
                        sender=sender_of(item.topic), bridge=bridge_of(item.topic)))
                    metrics.DEAD_LETTERS.labels(reason=RejectReason.FUTURE_TS).inc()
                    continue
                batch.events.append((event, item.received_at))
            if routed.status is not None:
                batch.statuses.append(replace(routed.status, retained=item.retained)
                                      if item.retained else routed.status)
        return batch

    def _another_brokers_copy(self, item: _Inbound, key: str) -> bool:
        """Whether a message about to be dead-lettered (``key``: what it is known by) was
        dead-lettered already from another central broker (``gateway.copies``)."""
        if len(self._sessions) < 2 or not self._copies.is_copy(item.broker, key, item.payload):
            return False
        metrics.DEAD_LETTER_COPIES.inc()  # recorded from the first broker
        return True

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            inbound = self._take_batch()
            if not inbound:
                self._idle()
                continue
            delay = 0.1
            while True:
                try:
                    batch = self._decode(inbound)
                    started = time.perf_counter()
                    result = self._write(batch)
                    metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
                    metrics.EVENTS_INGESTED.inc(result.stored)
                    metrics.EVENTS_DUPLICATE.inc(result.duplicates)
                    break
                except StoreUnavailable as exc:
                    metrics.STORE_RETRIES.inc()
                    # A lost lease fails the same way: nothing acknowledged, and the worker
                    # stops this gateway (its messages go to the new owner's session).
                    log.warning("cannot commit (%s); retrying %d messages in %.1f s",
                                exc, len(inbound), delay)
                    if self._stop.wait(delay):
                        return  # not acknowledged: the broker redelivers after restart
                    delay = min(delay * 2, self._settings.ingest_retry_max_s)
            self._ack(inbound)

    def _write(self, batch: Batch) -> BatchResult:
        try:
            return self.writer.write(batch)
        except StoreUnavailable:
            raise
        except Exception as exc:  # a batch the database refuses: store each message alone
            log.exception("batch refused by the database; storing messages one by one")
            return self._write_singly(batch, exc)

    def _write_singly(self, batch: Batch, cause: Exception) -> BatchResult:
        new: list[StoredEventRow] = []
        stored = dup = 0
        for event, received_at in batch.events:
            try:
                result = self.writer.write(Batch(events=[(event, received_at)]))
                new.extend(result.new_events)
                stored += result.stored
                dup += result.duplicates
            except StoreUnavailable:
                raise
            except Exception as exc:
                self.writer.dead_letter_alone(DeadLetterRecord(
                    received_at, f"nattero/v1/{event.site}/{event.device}/events",
                    repr(event).encode(), RejectReason.STORAGE_REJECTED,
                    f"the database refused this event: {exc}",
                    sender=f"nattero/v1/{event.site}/{event.device}"))
        rest = Batch(statuses=batch.statuses, dead_letters=batch.dead_letters)
        if len(rest):
            self.writer.write(rest)
        return BatchResult(new_events=new, stored=stored, duplicates=dup,
                           dead_letters=len(batch.dead_letters))

    def _ack(self, inbound: list[_Inbound]) -> None:
        # Each copy to the broker that sent it, only messages of that session's current
        # connection, in the order received (MQTT requires PUBACKs in order); QoS 0
        # messages need none.
        for session in self._sessions:
            index, generation = session.index, session.generation
            session.client.ack_many([item.mid for item in inbound
                                     if item.broker == index and item.qos == 1
                                     and item.generation == generation])

    def _idle(self) -> None:
        # The next batch retries the reload; an idle gateway need not report the outage.
        with contextlib.suppress(StoreUnavailable):
            self.registry.reload_if_stale()
