"""Room pseudonyms for room-level exports: stable inside one evaluation period, unlinkable
across periods.

``key = HMAC-SHA256(secret_key, "nattero/room-pseudonym/v1|<from>|<to>")`` and
``pseudonym = "r-" + HMAC-SHA256(key, "<site>/<room>")[:12 hex]``. Without the server's
secret nobody can recompute a pseudonym from a room id, and the same room gets unrelated
pseudonyms in two different periods, so exports of different periods cannot be joined.
Never log or export the key.
"""

from __future__ import annotations

import hashlib
import hmac

from evaluation.period import Period

_CONTEXT = "nattero/room-pseudonym/v1"


class RoomPseudonyms:
    def __init__(self, secret_key: str, period: Period) -> None:
        message = f"{_CONTEXT}|{period.first.isoformat()}|{period.last.isoformat()}"
        self._key = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()
        self._cache: dict[tuple[str, str], str] = {}

    def __call__(self, site: str, room: str) -> str:
        known = self._cache.get((site, room))
        if known is None:
            digest = hmac.new(self._key, f"{site}/{room}".encode(), hashlib.sha256).hexdigest()
            known = self._cache[(site, room)] = f"r-{digest[:12]}"
        return known
