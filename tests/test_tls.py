"""MQTT over TLS with certificates from Nattero's own CA (``provisioning.certs``), against
the real Mosquitto: a TLS-only broker that requires client certificates, and the local
stack's TLS listener (``nattero up --tls``) that the gateway stores events through."""

from __future__ import annotations

import gc
import getpass
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.errors import ConfigurationError
from core.settings import Settings, StackInfo, get_settings
from deploy import stack as local_stack
from provisioning.certs import CertificateAuthority
from provisioning.errors import ProvisioningError
from tests.support.devices import event_payload
from tests.support.pipeline import gateway_env
from tests.support.waiting import wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def _connack(port: int, username: str, password: str,
             tls: ssl.SSLContext | None) -> int | str:
    """The CONNACK reason code (0 = accepted), or what failed before one came."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    codes: list[int] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                   _p: Properties | None) -> None:
        codes.append(reason.value)

    client.on_connect = on_connect
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        gc.collect()  # paho's socket of the failed handshake: closed here, not in a later test
        return f"{type(exc).__name__}: {exc}"
    deadline = time.monotonic() + 5
    while not codes and time.monotonic() < deadline:
        if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
            return "connection closed before CONNACK"
    client.disconnect()
    return codes[0] if codes else "no CONNACK"


# paho 2.2 drops the socket of a failed TLS handshake without closing it (client.py,
# _ssl_wrap_socket): the garbage collector closes it and Python reports it as unraisable.
HANDSHAKE_FAILS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@dataclass(frozen=True)
class TlsBroker:
    port: int
    ca: CertificateAuthority
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """Mosquitto with one listener, TLS only, requiring a client certificate from the CA."""
    folder = tmp_path_factory.mktemp("tls-broker")
    ca = CertificateAuthority.create(folder / "ca", "Solsikken")
    server = ca.issue_server("broker", ["localhost", "127.0.0.1"])
    passwords = {"solsikken.door-1": uuid.uuid4().hex, "solsikken.door-2": uuid.uuid4().hex}
    password_file = folder / "passwords"
    password_file.touch(mode=0o600)
    for user, password in passwords.items():
        subprocess.run(["mosquitto_passwd", "-b", str(password_file), user, password],
                       check=True, capture_output=True)
    port = _free_port()
    log = folder / "mosquitto.log"
    (folder / "mosquitto.conf").write_text(
        f"user {getpass.getuser()}\nper_listener_settings false\nallow_anonymous false\n"
        f"password_file {password_file}\npersistence false\nlog_dest file {log}\n"
        f"listener {port} 127.0.0.1\ncafile {server.ca}\ncertfile {server.cert}\n"
        f"keyfile {server.key}\nrequire_certificate true\ntls_version tlsv1.2\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([binary, "-c", str(folder / "mosquitto.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"mosquitto exited: {log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.05)
        yield TlsBroker(port, ca, passwords)
    finally:
        process.terminate()
        process.wait(10)


def test_tls_only_broker_refuses_a_plain_connection(tls_broker: TlsBroker) -> None:
    answer = _connack(tls_broker.port, "solsikken.door-1",
                      tls_broker.passwords["solsikken.door-1"], None)
    assert answer != 0 and not isinstance(answer, int), answer


def test_tls_only_broker_accepts_a_device_with_its_certificate_and_password(
        tls_broker: TlsBroker) -> None:
    device = tls_broker.ca.issue_client("solsikken.door-1", "solsikken.door-1")
    cert = x509.load_pem_x509_certificate(device.cert.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=solsikken.door-1,O=Nattero"
    tls = _context(device.ca, device.cert, device.key)
    assert _connack(tls_broker.port, "solsikken.door-1",
                    tls_broker.passwords["solsikken.door-1"], tls) == 0
    # The certificate does not replace the account: a wrong password is still refused.
    assert _connack(tls_broker.port, "solsikken.door-1", "wrong", tls) not in (0, None)


@HANDSHAKE_FAILS
def test_tls_only_broker_refuses_a_device_without_a_certificate_or_with_another_cas(
        tls_broker: TlsBroker, tmp_path: Path) -> None:
    password = tls_broker.passwords["solsikken.door-2"]
    no_cert = _connack(tls_broker.port, "solsikken.door-2", password,
                       _context(tls_broker.ca.ca_file))
    assert not isinstance(no_cert, int), no_cert
    stranger = CertificateAuthority.create(tmp_path / "other", "Elsewhere").issue_client(
        "solsikken.door-2", "solsikken.door-2")
    forged = _connack(tls_broker.port, "solsikken.door-2", password,
                      _context(tls_broker.ca.ca_file, stranger.cert, stranger.key))
    assert not isinstance(forged, int), forged


@HANDSHAKE_FAILS
def test_a_client_refuses_a_broker_whose_certificate_another_ca_signed(
        tls_broker: TlsBroker, tmp_path: Path) -> None:
    device = tls_broker.ca.issue_client("solsikken.door-1", "solsikken.door-1")
    other = CertificateAuthority.create(tmp_path / "other", "Elsewhere")
    answer = _connack(tls_broker.port, "solsikken.door-1",
                      tls_broker.passwords["solsikken.door-1"],
                      _context(other.ca_file, device.cert, device.key))
    assert isinstance(answer, str) and "CERTIFICATE_VERIFY_FAILED" in answer, answer


@pytest.mark.pure
def test_a_ca_is_never_replaced_and_a_server_certificate_names_its_hosts(
        tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path, "Havnely")
    with pytest.raises(ProvisioningError, match="already holds a certificate authority"):
        CertificateAuthority.create(tmp_path, "Havnely")
    issued = ca.issue_server("broker", ["mqtt.havnely.example", "10.0.0.5"])
    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mqtt.havnely.example"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert oct(issued.key.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "ca.key").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ProvisioningError, match="file name"):
        ca.issue_client("../escape", "x")


@pytest.fixture(scope="module")
def tls_stack(migrated: StackInfo) -> StackInfo:
    """The test stack with its TLS listener on (``nattero up --tls``; it stays on)."""
    info = local_stack.up(get_settings(), tls=True)
    assert info.mqtt_tls_port is not None and info.tls_ca_file is not None
    return info


def test_the_gateway_stores_an_event_received_over_tls(
        tls_stack: StackInfo, site: str, db, add_device) -> None:
    from gateway.service import Gateway

    assert tls_stack.mqtt_tls_port is not None and tls_stack.tls_ca_file is not None
    user, password = add_device(site, "door-1")
    # Plain MQTT is not spoken on the TLS port.
    assert not isinstance(_connack(tls_stack.mqtt_tls_port, user, password, None), int)
    settings = Settings(
        mqtt_port=tls_stack.mqtt_tls_port, mqtt_host="localhost",
        mqtt_tls_ca_file=Path(tls_stack.tls_ca_file), gateway_sites=[site],
        gateway_client_id=gateway_env(site)["NATTERO_GATEWAY_CLIENT_ID"],
        gateway_session_expiry_s=600, gateway_bridges=False)
    gateway = Gateway(settings)
    gateway.start()
    try:
        assert gateway.connected
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        device.username_pw_set(user, password)
        device.tls_set_context(_context(Path(tls_stack.tls_ca_file)))
        device.connect("localhost", tls_stack.mqtt_tls_port)
        device.loop_start()
        try:
            sent = device.publish(f"nattero/v1/{site}/door-1/events",
                                  event_payload("door.open", event_id="over-tls"), qos=1)
            sent.wait_for_publish(10)
        finally:
            device.disconnect()
            device.loop_stop()
        assert wait_until(lambda: db.execute(
            "SELECT count(*) FROM events WHERE site = %s AND event_id = 'over-tls'",
            (site,)).fetchone() == (1,))
    finally:
        gateway.stop()


@HANDSHAKE_FAILS
def test_the_gateway_over_tls_refuses_a_broker_that_another_ca_certified(
        tls_stack: StackInfo, site: str, tmp_path: Path) -> None:
    from gateway.service import Gateway

    assert tls_stack.mqtt_tls_port is not None
    other = CertificateAuthority.create(tmp_path, "Elsewhere")
    settings = Settings(
        mqtt_port=tls_stack.mqtt_tls_port, mqtt_host="localhost",
        mqtt_tls_ca_file=other.ca_file, gateway_sites=[site],
        gateway_client_id=gateway_env(site)["NATTERO_GATEWAY_CLIENT_ID"],
        gateway_session_expiry_s=600, gateway_bridges=False)
    gateway = Gateway(settings)
    gateway.start(wait_connected_s=3)
    try:
        assert not gateway.connected
    finally:
        gateway.stop()
        gc.collect()


def test_simulated_devices_publish_over_tls_with_a_client_certificate(
        tls_broker: TlsBroker) -> None:
    from simulators.errors import PublishError
    from simulators.pacing import Timetable
    from simulators.plan import EventDelivery
    from simulators.publisher import DeviceAccount, publish

    at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    plan = [EventDelivery(at + timedelta(seconds=n), "solsikken", "door-1",
                          {"id": f"e-{n}", "ts": (at + timedelta(seconds=n)).isoformat(),
                           "kind": "door.open" if n % 2 == 0 else "door.closed"})
            for n in range(4)]
    accounts = {("solsikken", "door-1"): DeviceAccount(
        "solsikken", "door-1", "solsikken.door-1", tls_broker.passwords["solsikken.door-1"])}
    device = tls_broker.ca.issue_client("sim-door-1", "solsikken.door-1")
    stats = publish(plan, accounts, Timetable(at, [], float("inf")), host="localhost",
                    port=tls_broker.port, tls=_context(device.ca, device.cert, device.key))
    assert stats.events == {"solsikken": 4}
    with pytest.raises(PublishError):
        publish(plan, accounts, Timetable(at, [], float("inf")), host="localhost",
                port=tls_broker.port, connect_timeout=3)


def test_nattero_up_keeps_tls_on_and_prints_the_ca(tls_stack: StackInfo) -> None:
    # Without --tls: the listener stays (the stack file remembers it).
    result = subprocess.run([str(Path(sys.executable).parent / "nattero"), "up", "--json"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["mqtt_tls_port"] == tls_stack.mqtt_tls_port
    assert printed["tls_ca_file"] == tls_stack.tls_ca_file
    ca = x509.load_pem_x509_certificate(Path(printed["tls_ca_file"]).read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    conf = (Path(get_settings().state_dir) / "mosquitto" / "mosquitto.conf").read_text()
    assert f"listener {tls_stack.mqtt_tls_port} 127.0.0.1\n" in conf


def test_the_settings_tls_context_carries_the_client_certificate(tls_broker: TlsBroker,
                                                                  tmp_path: Path) -> None:
    device = tls_broker.ca.issue_client("solsikken.door-2", "solsikken.door-2")
    settings = Settings(mqtt_tls_ca_file=device.ca, mqtt_tls_cert_file=device.cert,
                        mqtt_tls_key_file=device.key)
    tls = settings.mqtt_tls_context()
    assert tls is not None and tls.check_hostname
    assert _connack(tls_broker.port, "solsikken.door-2",
                    tls_broker.passwords["solsikken.door-2"], tls) == 0
    assert Settings().mqtt_tls_context() is None
    with pytest.raises(ValueError, match="go together"):
        Settings(mqtt_tls_ca_file=device.ca, mqtt_tls_cert_file=device.cert)
    with pytest.raises(ConfigurationError, match="NATTERO_MQTT_TLS_CA_FILE"):
        Settings(mqtt_tls_ca_file=tmp_path / "missing.pem").mqtt_tls_context()
