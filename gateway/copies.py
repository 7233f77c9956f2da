"""Which rejected messages are another central broker's copy of one rejected already.

With several central brokers (``docs/brokers.md``) a site hub forwards every message to
each of them, and the gateway hears it once per broker. A good event's second copy is
dropped by the store (its event id); a rejected message has no id the store could know it
by, so without this each bad message became one dead letter per broker: doubled counts
on the admin page and a device's dead-letter allowance spent twice as fast.

A message is a copy when the same topic and payload was rejected from *another* broker
within ``window``. The same message twice from one broker is two messages (a device that
sent it again), and stays two dead letters.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["BrokerCopies"]

COPY_WINDOW_S = 120.0  # a copy comes through the other broker within this


class BrokerCopies:
    def __init__(self, window_s: float = COPY_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        # message digest -> (brokers it came from, when first rejected); oldest first
        self._seen: OrderedDict[bytes, tuple[frozenset[int], float]] = OrderedDict()

    def __len__(self) -> int:
        """Messages remembered now (bounded by what the window holds)."""
        return len(self._seen)

    def is_copy(self, broker: int, topic: str, payload: bytes) -> bool:
        """Whether this rejected message is a copy of one rejected from another broker;
        noted either way."""
        now = self._clock()
        while self._seen:
            oldest = next(iter(self._seen.values()))
            if now - oldest[1] < self._window_s:
                break
            self._seen.popitem(last=False)
        digest = hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).digest()
        found = self._seen.get(digest)
        if found is not None and broker not in found[0]:
            self._seen[digest] = (found[0] | {broker}, found[1])
            return True
        self._seen.pop(digest, None)  # new, or sent again through the same broker
        self._seen[digest] = (frozenset({broker}), now)
        return False
