"""Native protocol v1 (DESIGN.md): topics and payloads, validated into ``Event``s.

Every way a message can be wrong has its own ``RejectReason`` so a dead letter tells an
installer what to fix. Decoding never raises anything but ``Rejected``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from core.errors import NatteroError
from core.events import Event, EventKind, Presence, StatusChange

MAX_PAYLOAD_BYTES = 4096
TOPIC_RE = re.compile(r"^nattero/v1/(?P<site>[^/]+)/(?P<device>[^/]+)/(?P<channel>events|status)$")
# RFC 3339 date-time (section 5.6): a string with seconds and an offset or Z; no epoch numbers,
# no naive times, no ISO 8601 variants the contract does not name (week dates, no seconds).
RFC3339_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


class RejectReason(StrEnum):
    INVALID_JSON = "invalid_json"
    NOT_UTF8 = "not_utf8"
    TOO_LARGE = "too_large"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_ID = "missing_id"
    BAD_ID = "bad_id"
    MISSING_TS = "missing_ts"
    BAD_TS = "bad_ts"
    FUTURE_TS = "future_ts"
    MISSING_KIND = "missing_kind"
    UNKNOWN_KIND = "unknown_kind"
    BAD_BATTERY = "bad_battery"
    BAD_OCCUPIED = "bad_occupied"
    BAD_TOPIC = "bad_topic"
    BAD_STATUS = "bad_status"
    DUPLICATE_KEY = "duplicate_key"
    RETAINED_EVENT = "retained_event"
    UNKNOWN_DEVICE = "unknown_device"
    WRONG_SITE = "wrong_site"
    REVOKED_DEVICE = "revoked_device"
    ADAPTER = "adapter"
    STORAGE_REJECTED = "storage_rejected"


class Rejected(NatteroError):
    """A message that cannot become an event; it goes to ``dead_letters``."""

    def __init__(self, reason: RejectReason | str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = str(reason)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class NativeTopic:
    site: str
    device: str
    channel: Literal["events", "status"]


def parse_topic(topic: str) -> NativeTopic | None:
    """The parts of a native topic, or None when the topic is not native protocol v1."""
    match = TOPIC_RE.match(topic)
    if match is None:
        return None
    channel: Literal["events", "status"] = "events" if match["channel"] == "events" else "status"
    return NativeTopic(match["site"], match["device"], channel)


class _Payload(BaseModel):
    # Unknown fields are ignored (DESIGN.md), so devices can add diagnostics freely.
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    ts: StrictStr
    kind: EventKind
    battery: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    occupied: StrictBool | None = None


_FIELD_REASONS: dict[str, tuple[RejectReason, RejectReason, str]] = {
    "id": (RejectReason.MISSING_ID, RejectReason.BAD_ID,
           "a non-empty string of at most 128 printable characters, unique per device"),
    "ts": (RejectReason.MISSING_TS, RejectReason.BAD_TS,
           "a string with an RFC 3339 time with an offset or Z, e.g. "
           "\"2026-11-23T02:10:03.120Z\" (not an epoch number)"),
    "kind": (RejectReason.MISSING_KIND, RejectReason.UNKNOWN_KIND,
             "one of " + ", ".join(k.value for k in EventKind)),
    "battery": (RejectReason.BAD_BATTERY, RejectReason.BAD_BATTERY,
                "an integer from 0 to 100, or absent"),
    "occupied": (RejectReason.BAD_OCCUPIED, RejectReason.BAD_OCCUPIED,
                 "true or false (a bed sensor's state in its heartbeat), or absent"),
}


def _reject_from(error: ValidationError) -> Rejected:
    first = error.errors(include_url=False)[0]
    if first["type"] in ("model_type", "model_attributes_type"):
        return Rejected(RejectReason.NOT_AN_OBJECT, "payload is JSON but not an object; "
                        "expected a JSON object with id, ts and kind")
    field = str(first["loc"][0]) if first["loc"] else ""
    missing, bad, expected = _FIELD_REASONS.get(
        field, (RejectReason.INVALID_JSON, RejectReason.INVALID_JSON, "a valid value"))
    if first["type"] == "missing":
        return Rejected(missing, f"field '{field}' is missing; expected {expected}")
    shown = repr(first.get("input"))[:60]
    return Rejected(bad, f"field '{field}' is {shown}; expected {expected}")


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads keeps the last of two equal keys; a device, a log reader and the store
    # could then each believe a different value. The contract has one value per field.
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def parse_json_object(payload: bytes) -> object:
    """Strict JSON (RFC 8259): UTF-8, no duplicate keys, no NaN/Infinity. Raises ``Rejected``."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(RejectReason.NOT_UTF8, f"payload is not UTF-8 ({exc.reason} at byte "
                       f"{exc.start}); expected a UTF-8 JSON object") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise Rejected(RejectReason.DUPLICATE_KEY,
                       f"key {str(exc)[:40]!r} appears more than once in one JSON object; "
                       "expected each field once") from None
    except ValueError as exc:  # json.JSONDecodeError, NaN/Infinity, too deep
        raise Rejected(RejectReason.INVALID_JSON,
                       f"payload is not valid JSON ({str(exc)[:120]}); expected one JSON "
                       "object (RFC 8259)") from None
    except RecursionError:
        raise Rejected(RejectReason.INVALID_JSON,
                       "payload is not valid JSON (nested too deeply); expected one flat "
                       "JSON object") from None


def _unprintable(text: str) -> str | None:
    """The first control or format character (C0/C1 controls such as an ANSI escape, bidi
    overrides, zero-width characters), or None. Such ids would rewrite a terminal or a log
    line that shows them, and look like other ids."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf"):
            return char
    return None


def parse_ts(value: str) -> datetime:
    """An RFC 3339 time with an offset or Z, in UTC. Raises ``Rejected`` (``bad_ts``)."""
    expected = _FIELD_REASONS["ts"][2]
    if not RFC3339_RE.fullmatch(value):
        raise Rejected(RejectReason.BAD_TS, f"field 'ts' is {value[:60]!r}; expected {expected}")
    try:
        # fromisoformat reads RFC 3339 (Z included since Python 3.11), but at most
        # microseconds: finer digits are cut, not rounded.
        head, dot, rest = value.partition(".")
        if dot:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            value = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
        parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError as exc:
        raise Rejected(RejectReason.BAD_TS, f"field 'ts' is {value[:60]!r} ({exc}); expected "
                       f"{expected}") from None
    ts = parsed.astimezone(UTC)
    if not 2000 <= ts.year <= 2100:
        raise Rejected(RejectReason.BAD_TS, f"field 'ts' is {ts.isoformat()}; outside 2000-2100")
    return ts


def future_detail(event_id: str, ts: datetime, ahead: timedelta, skew: timedelta) -> str:
    """The dead letter's detail for an event stamped too far after its arrival."""
    return (f"event {event_id[:60]!r} has ts {ts.isoformat()}, {ahead.total_seconds():.1f} s "
            f"after it arrived (at most {skew.total_seconds():g} s allowed, "
            "NATTERO_EVENT_FUTURE_SKEW_S); set the device's clock by NTP (or send ts as the "
            "time of the observation in UTC) and send it again")


def decode_event(site: str, device: str, payload: bytes) -> Event:
    """Validate one native event payload. Raises ``Rejected`` with the specific reason."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected(RejectReason.TOO_LARGE,
                       f"payload is {len(payload)} bytes; expected at most {MAX_PAYLOAD_BYTES} "
                       "bytes (native protocol v1)")
    body = parse_json_object(payload)
    try:
        parsed = _Payload.model_validate(body)
    except ValidationError as exc:
        raise _reject_from(exc) from None
    bad_char = _unprintable(parsed.id)
    if bad_char is not None:
        raise Rejected(RejectReason.BAD_ID,
                       f"field 'id' contains the control character {bad_char!r} "
                       f"(U+{ord(bad_char):04X}); expected {_FIELD_REASONS['id'][2]}")
    # ``occupied`` is a heartbeat's report of the bed's state; on a bed.exit or bed.enter
    # the kind says it already, and on other kinds it means nothing: not kept.
    occupied = parsed.occupied if parsed.kind is EventKind.HEARTBEAT else None
    return Event(site=site, device=device, id=parsed.id, ts=parse_ts(parsed.ts),
                 kind=parsed.kind, battery=parsed.battery, occupied=occupied)


def decode_status(site: str, device: str, payload: bytes, received_at: datetime) -> StatusChange:
    """A retained ``online``/``offline`` status message: exactly those bytes, lower case."""
    text = payload.decode("utf-8", errors="replace")
    try:
        presence = Presence(text)
    except ValueError:
        hint = " (lower case)" if text.strip().lower() in ("online", "offline") else ""
        raise Rejected(RejectReason.BAD_STATUS,
                       f"status payload is {text[:40]!r}; expected exactly 'online' or "
                       f"'offline'{hint}, with no spaces") from None
    return StatusChange(site=site, device=device, presence=presence, ts=received_at)
