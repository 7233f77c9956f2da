"""Reading bridge payloads: JSON objects, their timestamps and battery levels.

Every failure is an :class:`AdapterError` with a reason, never a bare ``ValueError``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from .base import AdapterError

# Bridges write up to nanoseconds (ChirpStack: "2022-07-18T09:34:15.775023242+00:00");
# datetime keeps microseconds, so longer fractions are cut, not rounded, to stay monotonic.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def json_object(payload: bytes, what: str) -> dict[str, Any]:
    """``payload`` parsed as a JSON object; ``what`` names it in the error."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AdapterError("not_utf8", f"{what} is not UTF-8 text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise AdapterError("invalid_json", f"{what} is not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise AdapterError(
            "not_an_object", f"{what} must be a JSON object, got {type(value).__name__}"
        )
    return value


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is a programming error, not bad input."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"received_at must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def parse_time(value: object) -> datetime | None:
    """An aware UTC time from an RFC 3339 string or epoch milliseconds, else None.

    Zigbee2MQTT's ``advanced.last_seen`` is ``ISO_8601`` (``...Z``), ``ISO_8601_local``
    (``...+02:00``) or ``epoch`` (milliseconds); ChirpStack's ``time`` is RFC 3339.
    A string without an offset is refused: guessing its zone would shift events by hours.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            return None
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = _LONG_FRACTION.sub(r"\1", value.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    return moment.astimezone(UTC)


def battery_percent(value: object) -> int | None:
    """A battery level 0–100 from a bridge's number, else None (absent or nonsense)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= 100:
        return None
    return round(value)
