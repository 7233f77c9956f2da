"""The same account change on every broker a device may connect to.

An installation with several central brokers (``NATTERO_MQTT_BROKERS``) and site hubs
(``NATTERO_MQTT_HUBS``) keeps one set of accounts: Mosquitto's dynamic-security plugin has
no replication of its own (eclipse-mosquitto/mosquitto#2922), so provisioning writes each
change to each broker, in the order listed, and reads from the first. Every broker must be
reachable before anything is written: a change made on some brokers only would let a
device connect to one and be refused by the other.
"""

from __future__ import annotations

import contextlib
from types import TracebackType

from core.settings import Settings
from provisioning.broker_accounts import BrokerAccountError, BrokerAccounts

__all__ = ["BrokerGroup", "managed_brokers"]


class BrokerGroup:
    """Admin connections to several brokers, used as one ``BrokerAccounts``."""

    def __init__(self, members: list[BrokerAccounts]) -> None:
        if not members:
            raise ValueError("a broker group needs at least one broker")
        self._members = members

    def __enter__(self) -> BrokerGroup:
        entered: list[BrokerAccounts] = []
        try:
            for member in self._members:
                entered.append(member.__enter__())
        except BrokerAccountError as exc:
            for member in entered:
                member.close()
            raise BrokerAccountError(
                f"{exc}. Nothing was changed: every broker must be reachable, or devices "
                "would be accepted by some brokers and refused by others") from exc
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for member in self._members:
            with contextlib.suppress(Exception):
                member.close()

    @property
    def first(self) -> BrokerAccounts:
        return self._members[0]

    # -- changes: on every broker ---------------------------------------------------------
    def create_device_account(self, username: str, password: str, topic_prefix: str, *,
                              client_id: str) -> None:
        for member in self._members:
            member.create_device_account(username, password, topic_prefix,
                                         client_id=client_id)

    def create_bridge_account(self, username: str, password: str,
                              topic_patterns: list[str], *, client_id: str) -> None:
        for member in self._members:
            member.create_bridge_account(username, password, topic_patterns,
                                         client_id=client_id)

    def create_gateway_account(self, username: str, password: str,
                               topic_patterns: list[str]) -> None:
        for member in self._members:
            member.create_gateway_account(username, password, topic_patterns)

    def bind_client_id(self, username: str, client_id: str) -> None:
        for member in self._members:
            member.bind_client_id(username, client_id)

    def delete_account(self, username: str) -> None:
        """Deleted wherever it exists (a broker that lacks it is not an error here: the
        account is gone from every broker afterwards either way)."""
        found = False
        for member in self._members:
            if member.account_exists(username):
                member.delete_account(username)
                found = True
        if not found:
            self.first.delete_account(username)  # raises the broker's own "not found"

    # -- reads: from the first ------------------------------------------------------------
    def client_ids(self) -> dict[str, str | None]:
        return self.first.client_ids()

    def publish_topics(self, username: str) -> list[str]:
        return self.first.publish_topics(username)

    def account_exists(self, username: str) -> bool:
        return self.first.account_exists(username)


def managed_brokers(settings: Settings, *, hubs: bool = True) -> BrokerGroup:
    """Admin connections to every central broker and (``hubs``) site hub of this
    installation (use as a context manager)."""
    tls = settings.mqtt_tls_context()
    admin = settings.broker_admin_account()
    addresses = settings.central_brokers() + (settings.site_hubs() if hubs else [])
    # One address named twice (a hub on the central host) is one broker.
    unique = list(dict.fromkeys(addresses))
    return BrokerGroup([BrokerAccounts(host, port, admin, tls=tls) for host, port in unique])
