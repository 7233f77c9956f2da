"""The provisioning error: a request that cannot be carried out, saying what to do instead."""

from __future__ import annotations

from core.errors import NatteroError

__all__ = ["ProvisioningError"]


class ProvisioningError(NatteroError, ValueError):
    """A provisioning request that cannot be carried out; the message says what to do."""
