"""Room pseudonyms for room-level exports: one per room and calendar month.

``key = HMAC-SHA256(secret_key, "nattero/room-pseudonym/v2|<YYYY-MM>")`` and
``pseudonym = "r-" + HMAC-SHA256(key, "<site>/<room>")[:12 hex]``, the month being that of
the bucket's local date.

Why months and not the export's period: with a key per requested period, two overlapping
periods gave the same room two pseudonyms on identical rows, and the overlap linked them
(and with them every row outside the overlap). With a key per fixed calendar block every
export of a month shows the same rows under the same pseudonyms, so overlapping exports
hold nothing to link that one of them did not already say; and room-level exports cover
whole months only (``evaluation.exports``), so no request can straddle a block boundary
with rows of one block under another's pseudonyms. Without the server's secret nobody can
recompute a pseudonym from a room id. Never log or export the key.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

_CONTEXT = "nattero/room-pseudonym/v2"


class RoomPseudonyms:
    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key.encode()
        self._keys: dict[str, bytes] = {}
        self._cache: dict[tuple[str, str, str], str] = {}

    def __call__(self, site: str, room: str, month: date) -> str:
        """The pseudonym of ``room`` in the calendar month of ``month``."""
        block = f"{month:%Y-%m}"
        known = self._cache.get((block, site, room))
        if known is None:
            key = self._keys.get(block)
            if key is None:
                key = self._keys[block] = hmac.new(
                    self._secret, f"{_CONTEXT}|{block}".encode(), hashlib.sha256).digest()
            digest = hmac.new(key, f"{site}/{room}".encode(), hashlib.sha256).hexdigest()
            known = self._cache[(block, site, room)] = f"r-{digest[:12]}"
        return known
