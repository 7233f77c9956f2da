"""Bind the device and bridge accounts made before client ids were bound (one-off upgrade).

Accounts created by ``nattero device add``, ``device rotate`` and ``bridge add`` are bound
to their client id when they are created. Accounts from before that accept any client id,
so one of them could connect with the gateway's or another device's id, wipe that client's
session and fire its Last Will. ``bind_existing_accounts`` binds each device account
(``{site}.{device}``) and bridge account (``bridge-{name}``) to its username. It never
touches the admin or gateway accounts, nor accounts Nattero did not name.
"""

from __future__ import annotations

from core.settings import Settings
from provisioning.bridges import bridge_username
from provisioning.broker_group import managed_brokers
from provisioning.names import client_id_of

__all__ = ["bind_existing_accounts", "is_device_or_bridge_account"]


def is_device_or_bridge_account(username: str) -> bool:
    """A device's ``{site}.{device}`` or a bridge's ``bridge-{name}``."""
    return "." in username or username.startswith(bridge_username(""))


def bind_existing_accounts(settings: Settings) -> list[str]:
    """Bind every device and bridge account not yet bound to its own client id; returns
    the usernames bound now (empty when all were bound already). Idempotent."""
    bound: list[str] = []
    with managed_brokers(settings) as broker:
        for username, client_id in sorted(broker.client_ids().items()):
            if not is_device_or_bridge_account(username):
                continue
            if client_id != client_id_of(username):
                broker.bind_client_id(username, client_id_of(username))
                bound.append(username)
    return bound
