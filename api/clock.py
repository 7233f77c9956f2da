"""The API's one source of "now" for tokens, locks and pairing codes.

The app keeps its clock in ``app.state.clock`` (``system_clock`` unless a test sets
another), and routes read it through ``api.deps.NowDep``: a test moves time through a
night by setting the clock, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "system_clock"]

#: Returns the current time, timezone-aware UTC.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
