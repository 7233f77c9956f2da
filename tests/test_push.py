"""Web Push against a real push endpoint: an HTTP server in the test receives what the API
sends, checks the VAPID signature (RFC 8292) and decrypts the RFC 8291 ``aes128gcm``
payload with the subscription's own private key, as a browser's push service and the
browser would. And the server-side watch: a site whose boards are all gone at night."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import http_ece
import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.events import RoomKind
from core.settings import Settings, StackInfo, get_settings
from tests.support.api import PASSWORD, Account, ApiServer, bearer, open_stream
from tests.support.store import unique

pytestmark = pytest.mark.slow


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushEndpoint:
    """A push service: records every POST; ``answers[path]`` lists the statuses to give in
    turn (then 201)."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def posts(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.posts(path)) < count:
            assert time.monotonic() < deadline, (
                f"{count} push(es) to {path} expected; got {len(self.posts(path))}")
            time.sleep(0.05)
        return self.posts(path)


@pytest.fixture
def push_endpoint() -> Iterator[PushEndpoint]:
    endpoint: PushEndpoint

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            endpoint.received.append(Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            queue = endpoint.answers.get(self.path, [])
            code = queue.pop(0) if queue else 201
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint = PushEndpoint(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield endpoint
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Browser:
    """A browser's push subscription keys (RFC 8291): its own P-256 pair and auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def keys(self) -> dict[str, str]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(public), "auth": b64url(self.auth)}

    def decrypt(self, received: Received) -> dict[str, Any]:
        assert received.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(received.body, private_key=self.private_key,
                                 auth_secret=self.auth, version="aes128gcm")
        message: dict[str, Any] = json.loads(plain)
        return message


METRICS_TOKEN = "push-test-metrics-" + "m" * 32  # /metrics is not open (issue 17)


def push_settings(**overrides: Any) -> Settings:
    return get_settings().model_copy(update={"push_retry_s": 0.05, "push_attempts": 3,
                                             "metrics_token": METRICS_TOKEN, **overrides})


def metrics_text(api: ApiServer) -> str:
    return httpx.get(f"{api.url}/metrics", headers=bearer(METRICS_TOKEN)).text


@pytest.fixture
def push_api(migrated: StackInfo, request: pytest.FixtureRequest
             ) -> Callable[..., ApiServer]:
    def start(**overrides: Any) -> ApiServer:
        server = ApiServer(push_settings(**overrides))
        server.start()
        request.addfinalizer(server.stop)
        return server

    return start


def login(client: httpx.Client, account: Account) -> dict[str, str]:
    response = client.post("/api/v1/auth/token",
                           data={"username": account.username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def subscribe(client: httpx.Client, headers: dict[str, str], endpoint: str,
              browser: Browser) -> int:
    response = client.post("/api/v1/push/subscriptions", headers=headers,
                           json={"endpoint": endpoint, "keys": browser.keys()})
    assert response.status_code == 201, response.text
    sub_id: int = response.json()["id"]
    return sub_id


def test_a_call_is_pushed_encrypted_and_signed_with_its_room_and_rule_in_danish(
        site: str, push_api: Callable[..., ApiServer], push_endpoint: PushEndpoint,
        make_user: Callable[..., Account], raise_alert: Callable[..., int]) -> None:
    api = push_api()
    other_site = unique("o")
    import provisioning

    provisioning.add_site(get_settings(), other_site, "Andetsted")
    provisioning.add_room(get_settings(), other_site, "f1", RoomKind.FLAT, "Lejlighed 1")
    nurse, stranger = Browser.new(), Browser.new()
    with httpx.Client(base_url=api.url, timeout=10) as client:
        headers = login(client, make_user("staff", site))
        public_key = client.get("/api/v1/push/key", headers=headers).json()["public_key"]
        subscribe(client, headers, f"{push_endpoint.url}/nurse", nurse)
        subscribe(client, login(client, make_user("staff", other_site)),
                  f"{push_endpoint.url}/stranger", stranger)

        raise_alert(site, "lounge", "common_motion", "normal", call=False)  # quiet: no push
        alert = raise_alert(site, "f1", "left_flat", "high")
        (received,) = push_endpoint.wait_for("/nurse")

    message = nurse.decrypt(received)
    assert message["alert"] == alert and message["site"] == site
    assert message["room"] == "f1" and message["room_label"] == "Lejlighed 1"
    assert message["rule"] == "left_flat"
    assert message["title"] == "Alarm: Lejlighed 1"
    assert message["body"] == "Har forladt lejligheden på Testhjemmet"
    # Signed with the installation's VAPID key, for this push service (RFC 8292).
    scheme, _, credentials = received.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in credentials.split(","))
    assert fields["k"] == public_key
    signer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public_key))
    claims = jwt.decode(fields["t"], signer, algorithms=["ES256"],
                        audience=push_endpoint.url)
    assert claims["sub"].startswith("mailto:")
    assert int(received.headers["ttl"]) > 0
    # Only the call, only to who sees its site.
    time.sleep(0.5)
    assert len(push_endpoint.posts("/nurse")) == 1
    assert push_endpoint.posts("/stranger") == []


def test_vapid_keys_are_made_once_per_installation_and_kept_in_the_database(
        push_api: Callable[..., ApiServer], site: str, make_user: Callable[..., Account],
        db: psycopg.Connection) -> None:
    first, second = push_api(), push_api()
    keys = []
    for api in (first, second):
        with httpx.Client(base_url=api.url, timeout=10) as client:
            headers = login(client, make_user("staff", site))
            keys.append(client.get("/api/v1/push/key", headers=headers).json()["public_key"])
    assert keys[0] == keys[1] and len(unb64url(keys[0])) == 65
    row = db.execute("SELECT value FROM installation_secrets WHERE name = 'vapid'").fetchone()
    assert row is not None and len(unb64url(row[0])) == 32


def counters(api: ApiServer) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in metrics_text(api).splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("nattero_push_"):
            found[name] = float(value)
    return found


def test_a_failing_push_is_retried_and_recorded_and_a_gone_subscription_removed(
        site: str, push_api: Callable[..., ApiServer], push_endpoint: PushEndpoint,
        make_user: Callable[..., Account], raise_alert: Callable[..., int],
        db: psycopg.Connection, caplog: pytest.LogCaptureFixture) -> None:
    api = push_api()
    flaky, gone, broken = Browser.new(), Browser.new(), Browser.new()
    push_endpoint.answers = {"/flaky": [503, 500], "/gone": [410], "/broken": [500] * 10}
    with httpx.Client(base_url=api.url, timeout=10) as client:
        headers = login(client, make_user("staff", site))
        flaky_id = subscribe(client, headers, f"{push_endpoint.url}/flaky", flaky)
        gone_id = subscribe(client, headers, f"{push_endpoint.url}/gone", gone)
        broken_id = subscribe(client, headers, f"{push_endpoint.url}/broken", broken)
        before = counters(api)
        with caplog.at_level("WARNING", logger="api.push"):
            alert = raise_alert(site, "exit", "building_exit", "high")
            push_endpoint.wait_for("/flaky", 3)
            push_endpoint.wait_for("/broken", 3)
            deadline = time.monotonic() + 10
            while db.execute("SELECT count(*) FROM push_deliveries WHERE subscription_id = "
                             "ANY(%s) AND status = 'sending'",
                             ([flaky_id, broken_id],)).fetchone() != (0,):
                assert time.monotonic() < deadline
                time.sleep(0.05)

    # Retried until the push service took it: the third try arrived and decrypts.
    assert flaky.decrypt(push_endpoint.posts("/flaky")[-1])["alert"] == alert
    rows = {r[0]: (r[1], r[2], r[3]) for r in db.execute(
        "SELECT subscription_id, status, attempts, last_error FROM push_deliveries "
        "WHERE key LIKE %s", (f"alert:{alert}:%",)).fetchall()}
    assert rows[flaky_id] == ("sent", 3, None)
    status, attempts, error = rows[broken_id]
    assert (status, attempts) == ("failed", 3) and "500" in error
    # Never silently: each failed try is logged, and the give-up says so.
    assert any("given up after 3 attempts" in r.getMessage() for r in caplog.records)
    # 410 Gone: the subscription is removed, not retried.
    assert len(push_endpoint.posts("/gone")) == 1
    assert db.execute("SELECT count(*) FROM push_subscriptions WHERE id = %s",
                      (gone_id,)).fetchone() == (0,)
    # Counted: every push given up is one failure (subscriptions left in the shared store
    # by other tests may fail too, so the count is checked against the recorded rows).
    failed_rows = db.execute("SELECT count(*) FROM push_deliveries WHERE key LIKE %s AND "
                             "status = 'failed'", (f"alert:{alert}:%",)).fetchone()
    assert failed_rows is not None
    after = counters(api)
    assert after["nattero_push_failures_total"] - before["nattero_push_failures_total"] == \
        failed_rows[0]
    assert after["nattero_push_subscriptions_gone_total"] - \
        before["nattero_push_subscriptions_gone_total"] == 1


def night_site(name: str) -> str:
    """A site whose night window contains now (UTC)."""
    import provisioning

    now = datetime.now(UTC)
    night = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=3)):%H:%M}"
    site_id = unique("nb")
    provisioning.add_site(get_settings(), site_id, name, tz="UTC", night=night)
    provisioning.add_room(get_settings(), site_id, "f1", RoomKind.FLAT, "Lejlighed 1")
    return site_id


def test_a_site_without_any_board_at_night_is_recorded_shown_and_pushed(
        push_api: Callable[..., ApiServer], push_endpoint: PushEndpoint,
        make_user: Callable[..., Account], db: psycopg.Connection) -> None:
    deaf, watched = night_site("Solsikken"), night_site("Kornblomsten")
    # 9 s: long enough to log in, subscribe and connect the other site's board first.
    api = push_api(board_silence_minutes=0.15, board_check_every_s=0.3,
                   board_watch_sites=[deaf, watched])
    phone = Browser.new()
    with httpx.Client(base_url=api.url, timeout=10) as client:
        nurse = make_user("staff", deaf)
        headers = login(client, nurse)
        subscribe(client, headers, f"{push_endpoint.url}/phone", phone)
        watcher = login(client, make_user("staff", watched))
        # A board of the other site stays connected all along: that site is never flagged.
        with open_stream(api.ws_url, watcher["Authorization"].split()[1]) as board:
            assert json.loads(board.recv(timeout=5))["type"] == "hello"
            (received,) = push_endpoint.wait_for("/phone", timeout=20)
            message = phone.decrypt(received)
            assert message["body"] == "Ingen nattavle er forbundet på Solsikken"
            assert message["kind"] == "no_board" and message["site"] == deaf
            health = client.get(f"/api/v1/sites/{deaf}/health", headers=headers).json()
            assert health["ok"] is False
            assert health["no_board_since"] is not None
            watched_health = client.get(f"/api/v1/sites/{watched}/health",
                                        headers=watcher).json()
            assert watched_health["no_board_since"] is None
        audit = db.execute("SELECT site FROM audit_log WHERE action = 'board.none_connected' "
                           "AND site = ANY(%s)", ([deaf, watched],)).fetchall()
        assert audit == [(deaf,)]
        assert f'nattero_board_silences_total{{site="{deaf}"}} 1.0' in metrics_text(api)
        # A board of the site connects: the silence ends, and is not pushed again.
        with open_stream(api.ws_url, headers["Authorization"].split()[1]) as board:
            assert json.loads(board.recv(timeout=5))["type"] == "hello"
            deadline = time.monotonic() + 10
            while client.get(f"/api/v1/sites/{deaf}/health",
                             headers=headers).json()["no_board_since"] is not None:
                assert time.monotonic() < deadline, "the silence did not end with a board"
                time.sleep(0.1)
        assert len(push_endpoint.posts("/phone")) == 1
    assert urlparse(received.path).path == "/phone"


def test_subscription_keys_a_browser_could_not_have_made_are_refused(
        site: str, push_api: Callable[..., ApiServer], make_user: Callable[..., Account],
        db: psycopg.Connection) -> None:
    api = push_api()
    good = Browser.new().keys()
    with httpx.Client(base_url=api.url, timeout=10) as client:
        headers = login(client, make_user("staff", site))
        for keys in ({**good, "p256dh": "A" * 87}, {**good, "p256dh": "A" * 89},
                     {**good, "auth": "A" * 20}):
            response = client.post("/api/v1/push/subscriptions", headers=headers,
                                   json={"endpoint": "http://127.0.0.1:9/x", "keys": keys})
            assert response.status_code == 422, response.text
        # A site the nurse does not see: refused as not found (never confirmed to exist).
        response = client.post("/api/v1/push/subscriptions", headers=headers,
                               json={"endpoint": "http://127.0.0.1:9/y", "keys": good,
                                     "site": unique("o")})
        assert response.status_code == 404, response.text
    assert db.execute("SELECT count(*) FROM push_subscriptions WHERE endpoint LIKE "
                      "'http://127.0.0.1:9/%'").fetchone() == (0,)
