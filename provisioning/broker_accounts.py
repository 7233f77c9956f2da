"""Broker accounts: create and delete Mosquitto clients through its dynamic-security plugin.

Commands are JSON published (QoS 1) to ``$CONTROL/dynamic-security/v1`` with the admin
account; the plugin answers on ``$CONTROL/dynamic-security/v1/response``. Each account gets
its own role, named ``account:{username}``, holding exactly the ACLs its kind allows; no
account created here may subscribe unless its kind says so. This module never changes the
plugin's default ACL access (publish and subscribe stay denied to everyone else).

Every device and bridge account is bound to one client id (the plugin's ``clientid`` on a
client): the broker accepts that username only with that client id and answers any other
CONNECT with "not authorised". The binding restricts the *account*, not the id; so only
when every device and bridge account is bound can none of them take over another client's
session (the gateway's, or another device's) by connecting with its client id.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.errors import NatteroError
from core.settings import BrokerAccount

__all__ = ["BrokerAccountError", "BrokerAccounts"]

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"


class BrokerAccountError(NatteroError, RuntimeError):
    """The broker refused a command, refused the admin account, or did not answer in time."""


def role_name(username: str) -> str:
    """The role that holds ``username``'s ACLs."""
    return f"account:{username}"


class BrokerAccounts:
    """A short-lived admin connection to the broker's dynamic-security plugin.

    Use as a context manager; every method blocks until the broker answered and raises
    ``BrokerAccountError`` on an error answer or after ``timeout`` seconds. Thread-safe.

    >>> with BrokerAccounts("127.0.0.1", 51883, admin) as accounts:
    ...     accounts.create_device_account("solsikken.hall-3", pw, "nattero/v1/solsikken/hall-3",
    ...                                    client_id="solsikken.hall-3")
    """

    def __init__(self, host: str, port: int, admin: BrokerAccount, *,
                 timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"nattero-accounts-{uuid.uuid4().hex}",
                                   protocol=mqtt.MQTTv5)
        self._client.username_pw_set(admin.username, admin.password)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._ready = threading.Event()
        self._connect_error: str | None = None
        self._lock = threading.Lock()  # one command in flight at a time
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._answered = threading.Condition()

    # -------------------------------------------------------------- connection

    def __enter__(self) -> BrokerAccounts:
        try:
            self._client.connect(self._host, self._port, keepalive=30, clean_start=True)
        except OSError as exc:
            raise BrokerAccountError(
                f"cannot reach the broker at {self._host}:{self._port} ({exc}); "
                "is it running? (`nattero up`)") from exc
        self._client.loop_start()
        if not self._ready.wait(self._timeout) or self._connect_error:
            self.close()
            raise BrokerAccountError(
                self._connect_error
                or f"broker at {self._host}:{self._port} did not answer within {self._timeout}s")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object,
                    reason: ReasonCode, _props: Properties | None) -> None:
        if reason.is_failure:
            self._connect_error = (
                f"broker refused the admin account ({reason}); check "
                "broker_admin in stack.json or NATTERO_BROKER_ADMIN_USERNAME/_PASSWORD")
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: object, _mid: int,
                      reasons: list[ReasonCode], _props: Properties | None) -> None:
        if reasons[0].is_failure:
            self._connect_error = (f"the admin account may not read {RESPONSE_TOPIC} "
                                   f"({reasons[0]}); it needs the dynsec admin role")
        self._ready.set()

    def _on_message(self, _client: mqtt.Client, _userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return  # not an answer to us; the waiting call times out with a clear message
        with self._answered:
            for response in responses:
                key = response.get("correlationData")
                if isinstance(key, str):
                    self._answers.setdefault(key, []).append(response)
            self._answered.notify_all()

    # -------------------------------------------------------------- commands

    def _command(self, command: str, **fields: Any) -> dict[str, Any]:
        """Send one dynsec command and return its response; raise on an ``error`` answer."""
        key = uuid.uuid4().hex
        body = {"commands": [{"command": command, "correlationData": key, **fields}]}
        with self._lock:
            self._client.publish(CONTROL_TOPIC, json.dumps(body), qos=1)
            with self._answered:
                if not self._answered.wait_for(lambda: key in self._answers, self._timeout):
                    raise BrokerAccountError(
                        f"no answer to dynamic-security command {command!r} within "
                        f"{self._timeout}s; is the dynamic-security plugin loaded?")
                response = self._answers.pop(key)[0]
        if response.get("error"):
            raise BrokerAccountError(f"broker refused {command} "
                                     f"{_subject(fields)}: {response['error']}")
        return response

    def _create(self, username: str, password: str, acls: list[dict[str, Any]],
                client_id: str | None) -> None:
        role = role_name(username)
        self._command("createRole", rolename=role, acls=acls)
        bound = {} if client_id is None else {"clientid": client_id}
        try:
            self._command("createClient", username=username, password=password,
                          roles=[{"rolename": role}], **bound)
        except BrokerAccountError:
            self._command("deleteRole", rolename=role)
            raise

    def create_device_account(self, username: str, password: str, topic_prefix: str, *,
                              client_id: str) -> None:
        """A device: may connect only with ``client_id``, may publish to
        ``{topic_prefix}/events`` and ``{topic_prefix}/status`` (its Last Will included),
        nothing else, and may not subscribe. Raises if the account exists."""
        prefix = topic_prefix.rstrip("/")
        # Two topics, not prefix/#: the broker keeps a retained message per topic, so a '#'
        # let a device park retained payloads on as many topics as it liked.
        self._create(username, password, [_allow("publishClientSend", f"{prefix}/{channel}")
                                          for channel in ("events", "status")], client_id)

    def create_bridge_account(self, username: str, password: str,
                              topic_patterns: list[str], *, client_id: str) -> None:
        """A bridge (e.g. Zigbee2MQTT, ChirpStack): may connect only with ``client_id``, may
        publish to the given topic patterns (MQTT wildcards allowed) and nothing else; may
        not subscribe."""
        self._create(username, password,
                     [_allow("publishClientSend", pattern) for pattern in topic_patterns],
                     client_id)

    def create_gateway_account(self, username: str, password: str,
                               topic_patterns: list[str]) -> None:
        """A reader such as the gateway: may subscribe to and receive the given topic
        patterns, and publish nothing. Not bound to a client id: gateways sharing the
        account (``NATTERO_GATEWAY_SITES``) each keep a session of their own."""
        acls = []
        for pattern in topic_patterns:
            acls += [_allow("subscribePattern", pattern), _allow("publishClientReceive", pattern)]
        self._create(username, password, acls, None)

    def bind_client_id(self, username: str, client_id: str) -> None:
        """From now on accept ``username`` only with ``client_id`` (a connection with another
        id is refused as not authorised). Raises if there is no such account."""
        self._command("setClientId", username=username, clientid=client_id)

    def client_ids(self) -> dict[str, str | None]:
        """Every account's username and the client id it is bound to (None: any)."""
        listed = self._command("listClients", verbose=True, count=-1)
        clients = (listed.get("data") or {}).get("clients") or []
        return {str(c["username"]): c.get("clientid") or None for c in clients}

    def publish_topics(self, username: str) -> list[str]:
        """The topic patterns ``username``'s own role lets it publish to."""
        role = self._command("getRole", rolename=role_name(username))
        acls = ((role.get("data") or {}).get("role") or {}).get("acls") or []
        return sorted(str(acl["topic"]) for acl in acls
                      if acl.get("acltype") == "publishClientSend" and acl.get("allow", True))

    def delete_account(self, username: str) -> None:
        """Delete the client and its role. The broker disconnects it at once if connected.
        Raises if there is no such account."""
        self._command("deleteClient", username=username)
        try:
            self._command("deleteRole", rolename=role_name(username))
        except BrokerAccountError as exc:
            if "not found" not in str(exc).lower():
                raise

    def account_exists(self, username: str) -> bool:
        """True if the broker has a client ``username``."""
        try:
            self._command("getClient", username=username)
        except BrokerAccountError as exc:
            if "not found" in str(exc).lower():
                return False
            raise
        return True


def _allow(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def _subject(fields: dict[str, Any]) -> str:
    for name in ("username", "rolename"):
        if name in fields:
            return f"for {name} {fields[name]!r}"
    return ""
