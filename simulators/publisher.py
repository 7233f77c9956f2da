"""Publish planned deliveries over real MQTT, one paho client per device, its own account.

Each device connects with its own broker credentials (never a privileged account) and its
own client id (its username, the only one the broker accepts for the account), sets a
retained Last Will ``offline`` on its status topic and publishes a retained ``online``,
exactly like a real sensor under protocol v1. The ``online`` goes out right after its
site's first event of the run, not at connect: a status carries no device time, so the
rules runtime stamps it on the site's clock, and a site's clock starts with its first
event (before that the runtime takes wall time, days after a simulated night, which would
make the whole night late).

All clients run in the calling thread: one ``selectors`` loop drives every client's
socket through paho's external-loop calls (``loop_read``/``loop_write``/``loop_misc``).
A thread per client (``loop_start``) would also work up to a few hundred devices, but one
loop scales to the shelter's 60 devices times five sites without threads, keeps
publishing and acknowledgement in one place, and waits on ``select`` rather than sleeping.

Throttling: paho numbers QoS 1 messages with 16-bit ids, so a client with more than
65,535 unacknowledged publishes would reuse ids; each client is kept below
``max_unacked`` (500) outstanding publishes, and the run ends only when every PUBACK
is in.

Order: a site's deliveries reach the broker, and so the gateway, in planned order (see
``_replay``), because its rules engine runs on event time. Sites go side by side.
"""

from __future__ import annotations

import json
import math
import selectors
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from core.events import Presence
from simulators.errors import CredentialsError, PublishError
from simulators.pacing import Timetable
from simulators.plan import Delivery, EventDelivery, StatusDelivery, status_topic

__all__ = ["BrokerRefusal", "DeviceAccount", "PublishStats", "publish"]

# CONNACK reason codes that mean "these credentials are wrong", not "the broker is down".
_BAD_CREDENTIALS = {134, 135}


@dataclass(frozen=True, slots=True)
class DeviceAccount:
    site: str
    device: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class BrokerRefusal:
    site: str
    device: str
    reason: str
    code: int


@dataclass
class PublishStats:
    events: dict[str, int] = field(default_factory=dict)        # per site, incl. duplicates
    statuses: dict[str, int] = field(default_factory=dict)      # per site
    refused: list[str] = field(default_factory=list)            # PUBACK failures


class _Device:
    """One device's MQTT client and what is outstanding on it."""

    def __init__(self, account: DeviceAccount, tls: ssl.SSLContext | None = None) -> None:
        self.account = account
        # A device's client id is its username: the broker refuses the account with any other.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=account.username,
            protocol=mqtt.MQTTv5, userdata=self)
        self.client.username_pw_set(account.username, account.password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.will_set(status_topic(account.site, account.device), Presence.OFFLINE.value,
                             qos=1, retain=True)
        self.client.on_connect = _on_connect
        self.client.on_publish = _on_publish
        self.client.on_disconnect = _on_disconnect
        self.connack: ReasonCode | None = None
        self.unacked: set[int] = set()
        self.refused: list[str] = []
        self.lost: str | None = None
        self.closing = False

    @property
    def name(self) -> str:
        return f"{self.account.site}/{self.account.device}"

    def send(self, topic: str, payload: str, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(
                f"device {self.name} could not publish to {topic}: "
                f"{mqtt.error_string(info.rc)}")
        self.unacked.add(info.mid)


def _on_connect(client: mqtt.Client, device: _Device, _flags: object, reason: ReasonCode,
                _props: object) -> None:
    device.connack = reason


def _on_publish(_client: mqtt.Client, device: _Device, mid: int, reason: ReasonCode,
                _props: object) -> None:
    device.unacked.discard(mid)
    if reason.is_failure:
        device.refused.append(f"{device.name}: {reason} ({reason.value})")


def _on_disconnect(_client: mqtt.Client, device: _Device, _flags: object, reason: ReasonCode,
                   _props: object) -> None:
    # A refused CONNACK also ends in a disconnect; that is reported as a refusal instead.
    accepted = device.connack is not None and not device.connack.is_failure
    if accepted and not device.closing and device.lost is None:
        device.lost = f"{reason} ({reason.value})"


class _Loop:
    """Drives every device's socket from this thread (paho's external-loop API)."""

    def __init__(self, devices: Sequence[_Device], clock: Callable[[], float]) -> None:
        self.devices, self.clock = devices, clock
        self.selector = selectors.DefaultSelector()
        self.registered: dict[int, _Device] = {}
        self.last_misc = clock()

    def register(self, device: _Device) -> None:
        sock = device.client.socket()
        if sock is not None:
            self.registered[sock.fileno()] = device
            self.selector.register(sock, selectors.EVENT_READ, device)

    def pump(self, timeout: float) -> None:
        self._service(timeout)
        if self.clock() - self.last_misc >= 1.0:
            self.last_misc = self.clock()
            for device in self.devices:
                device.client.loop_misc()
        lost = [d for d in self.devices if d.lost is not None and not d.closing]
        if lost:
            raise PublishError(
                f"{len(lost)} device connection(s) dropped by the broker, first "
                f"{lost[0].name}: {lost[0].lost}; is the broker still running?")

    def _service(self, timeout: float) -> None:
        """Write what is queued, read what arrived, drop sockets paho has closed."""
        for device in self.devices:
            if device.client.want_write():
                device.client.loop_write()
        self._drop_closed()
        if not self.registered:
            return
        for key, _events in self.selector.select(timeout):
            device = key.data
            assert isinstance(device, _Device)
            device.client.loop_read()
        self._drop_closed()

    def _drop_closed(self) -> None:
        for fd, device in list(self.registered.items()):
            sock = device.client.socket()
            if sock is None or sock.fileno() != fd:
                del self.registered[fd]
                self.selector.unregister(fd)

    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = self.clock() + timeout
        while not done():
            if self.clock() > deadline:
                raise PublishError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.pump(0.05)

    def close(self) -> None:
        for device in self.devices:
            device.closing = True
            device.client.disconnect()
        deadline = self.clock() + 5.0
        while self.registered and self.clock() < deadline:
            self._service(0.05)
        for fd in list(self.registered):
            self.selector.unregister(fd)
        self.registered.clear()
        self.selector.close()


def publish(deliveries: Sequence[Delivery], accounts: Mapping[tuple[str, str], DeviceAccount],
            timetable: Timetable, *, host: str, port: int,
            on_sent: Callable[[Delivery], None] | None = None,
            clock: Callable[[], float] = time.monotonic, max_unacked: int = 500,
            connect_timeout: float = 15.0, ack_timeout: float = 60.0,
            tls: ssl.SSLContext | None = None) -> PublishStats:
    """Connect every device, replay ``deliveries`` on ``timetable``, wait for every PUBACK.
    ``tls``: connect over TLS with this context (``Settings.mqtt_tls_context``).

    Raises CredentialsError (with ``.refusals``) when the broker refuses devices'
    credentials, PublishError when it cannot be reached or does not acknowledge.
    """
    needed = sorted({(d.site, d.device) for d in deliveries})
    missing = [f"{site}/{device}" for site, device in needed if (site, device) not in accounts]
    if missing:
        raise CredentialsError(f"no broker credentials for {', '.join(missing[:5])}"
                               f"{' …' if len(missing) > 5 else ''}")
    devices = {key: _Device(accounts[key], tls) for key in needed}
    loop = _Loop(list(devices.values()), clock)
    try:
        _connect(loop, devices, host, port, connect_timeout)
        stats = PublishStats()
        _replay(loop, deliveries, devices, timetable, stats, on_sent, clock, max_unacked,
                ack_timeout)
        loop.wait(lambda: all(not d.unacked for d in devices.values()), ack_timeout,
                  "the broker to acknowledge every publish")
        stats.refused = [line for d in devices.values() for line in d.refused]
        return stats
    finally:
        loop.close()


def _replay(loop: _Loop, deliveries: Sequence[Delivery],
            devices: Mapping[tuple[str, str], _Device], timetable: Timetable,
            stats: PublishStats, on_sent: Callable[[Delivery], None] | None,
            clock: Callable[[], float], max_unacked: int, ack_timeout: float) -> None:
    """Send each site's deliveries in order, sites side by side, each when it is due.

    A site's messages must reach the gateway in the order they were planned: its rules
    engine runs on event time and fires a timer as soon as a newer event passes it, so a
    message overtaken by a later one would expire a timer early (at ``--speed max`` a
    night lasts seconds, and a few milliseconds of reordering are minutes of night).
    The broker keeps the order of one connection, not across connections; so a device
    sends only when no other device of its site has a publish unacknowledged (the broker
    acknowledges QoS 1 after queueing the message to its subscribers). Hence at most one
    device per site has publishes in flight: the one that sent last.
    """
    queues = {site: deque(planned) for site, planned in _with_online(deliveries, devices).items()}
    # (the ``online`` statuses added there are not in the plan: not counted, not reported)
    last: dict[str, _Device] = {}
    start = clock()
    blocked_since: float | None = None
    while queues:
        now = clock()
        next_due = math.inf
        sent = False
        for site, queue in list(queues.items()):
            while queue:
                delivery, planned = queue[0]
                due = start + timetable.offset(delivery.at)
                if due > now:
                    next_due = min(next_due, due)
                    break
                device = devices[(site, delivery.device)]
                previous = last.get(site)
                if previous is not None and previous is not device and previous.unacked:
                    break  # another device of this site is still in flight
                if len(device.unacked) >= max_unacked:
                    break
                if isinstance(delivery, EventDelivery):
                    device.send(delivery.topic,
                                json.dumps(delivery.payload, separators=(",", ":")))
                    stats.events[site] = stats.events.get(site, 0) + 1
                else:
                    device.send(delivery.topic, delivery.presence.value, retain=True)
                    if planned:
                        stats.statuses[site] = stats.statuses.get(site, 0) + 1
                last[site] = device
                queue.popleft()
                sent = True
                if on_sent is not None and planned:
                    on_sent(delivery)
            if not queue:
                del queues[site]
        if sent:
            blocked_since = None
            loop.pump(0)
            continue
        waiting = math.isinf(next_due) or next_due <= clock()
        if waiting:
            # Everything due is held back by unacknowledged publishes.
            blocked_since = blocked_since if blocked_since is not None else clock()
            if clock() - blocked_since > ack_timeout:
                raise PublishError(f"timed out after {ack_timeout:.0f} s waiting for the "
                                   f"broker to acknowledge publishes")
            loop.pump(0.25)
        else:
            blocked_since = None
            loop.pump(min(next_due - clock(), 0.25))


def _with_online(deliveries: Sequence[Delivery], devices: Mapping[tuple[str, str], _Device]
                 ) -> dict[str, list[tuple[Delivery, bool]]]:
    """Each site's (delivery, planned), every device's ``online`` after the first event."""
    by_site: dict[str, list[tuple[Delivery, bool]]] = {}
    for delivery in deliveries:
        by_site.setdefault(delivery.site, []).append((delivery, True))
    for site, queue in by_site.items():
        first = next((i for i, (d, _) in enumerate(queue) if isinstance(d, EventDelivery)), -1)
        at = queue[max(first, 0)][0].at
        online = [(StatusDelivery(at, site, device, Presence.ONLINE), False)
                  for s, device in sorted(devices) if s == site]
        queue[first + 1:first + 1] = online
    return by_site


def _connect(loop: _Loop, devices: Mapping[tuple[str, str], _Device], host: str, port: int,
             timeout: float) -> None:
    for device in devices.values():
        try:
            device.client.connect(host, port, keepalive=60, clean_start=True)
        except OSError as exc:
            raise PublishError(
                f"cannot reach the MQTT broker at {host}:{port} ({exc}); start the local "
                f"stack with `nattero up` or set NATTERO_MQTT_HOST/NATTERO_MQTT_PORT") from exc
        loop.register(device)
    loop.wait(lambda: all(d.connack is not None for d in devices.values()), timeout,
              "CONNACKs from the broker")
    refusals = [BrokerRefusal(d.account.site, d.account.device, str(d.connack), d.connack.value)
                for d in devices.values() if d.connack is not None and d.connack.is_failure]
    if refusals:
        first = refusals[0]
        hint = ("the stored password is wrong or the device was revoked"
                if first.code in _BAD_CREDENTIALS else "see the broker log")
        raise CredentialsError(
            f"the broker refused {len(refusals)} device(s), first {first.site}/{first.device}: "
            f"{first.reason} ({first.code}); {hint}",
            refused=tuple(f"{r.site}/{r.device}" for r in refusals))


def _below(device: _Device, limit: int) -> Callable[[], bool]:
    return lambda: len(device.unacked) < limit
