"""Native protocol v1 (DESIGN.md): topics and payloads, validated into ``Event``s.

Every way a message can be wrong has its own ``RejectReason`` so a dead letter tells an
installer what to fix. Decoding never raises anything but ``Rejected``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from core.errors import NatteroError
from core.events import Event, EventKind, Presence, StatusChange

MAX_PAYLOAD_BYTES = 4096
TOPIC_RE = re.compile(r"^nattero/v1/(?P<site>[^/]+)/(?P<device>[^/]+)/(?P<channel>events|status)$")


class RejectReason(StrEnum):
    INVALID_JSON = "invalid_json"
    NOT_UTF8 = "not_utf8"
    TOO_LARGE = "too_large"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_ID = "missing_id"
    BAD_ID = "bad_id"
    MISSING_TS = "missing_ts"
    BAD_TS = "bad_ts"
    MISSING_KIND = "missing_kind"
    UNKNOWN_KIND = "unknown_kind"
    BAD_BATTERY = "bad_battery"
    BAD_TOPIC = "bad_topic"
    BAD_STATUS = "bad_status"
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
    ts: AwareDatetime
    kind: EventKind
    battery: Annotated[StrictInt, Field(ge=0, le=100)] | None = None


_FIELD_REASONS: dict[str, tuple[RejectReason, RejectReason, str]] = {
    "id": (RejectReason.MISSING_ID, RejectReason.BAD_ID,
           "a non-empty string of at most 128 characters, unique per device"),
    "ts": (RejectReason.MISSING_TS, RejectReason.BAD_TS,
           "an RFC 3339 time with an offset or Z, e.g. 2026-11-23T02:10:03.120Z"),
    "kind": (RejectReason.MISSING_KIND, RejectReason.UNKNOWN_KIND,
             "one of " + ", ".join(k.value for k in EventKind)),
    "battery": (RejectReason.BAD_BATTERY, RejectReason.BAD_BATTERY,
                "an integer from 0 to 100, or absent"),
}


def _reject_from(error: ValidationError) -> Rejected:
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return Rejected(RejectReason.INVALID_JSON, f"payload is not valid JSON: {first['msg']}")
    if first["type"] in ("model_type", "model_attributes_type"):
        return Rejected(RejectReason.NOT_AN_OBJECT, "payload must be a JSON object")
    field = str(first["loc"][0]) if first["loc"] else ""
    missing, bad, expected = _FIELD_REASONS.get(
        field, (RejectReason.INVALID_JSON, RejectReason.INVALID_JSON, "a valid value"))
    if first["type"] == "missing":
        return Rejected(missing, f"field '{field}' is missing; expected {expected}")
    shown = repr(first.get("input"))[:60]
    return Rejected(bad, f"field '{field}' is {shown}; expected {expected}")


def decode_event(site: str, device: str, payload: bytes) -> Event:
    """Validate one native event payload. Raises ``Rejected`` with the specific reason."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected(RejectReason.TOO_LARGE,
                       f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(RejectReason.NOT_UTF8, f"payload is not UTF-8 ({exc.reason} at byte "
                       f"{exc.start})") from None
    try:
        parsed = _Payload.model_validate_json(payload)
    except ValidationError as exc:
        raise _reject_from(exc) from None
    if "\x00" in parsed.id:
        raise Rejected(RejectReason.BAD_ID, "field 'id' contains a NUL character; expected "
                       + _FIELD_REASONS["id"][2])
    ts = parsed.ts.astimezone(UTC)
    if not 2000 <= ts.year <= 2100:
        raise Rejected(RejectReason.BAD_TS, f"field 'ts' is {ts.isoformat()}; outside 2000-2100")
    return Event(site=site, device=device, id=parsed.id, ts=ts, kind=parsed.kind,
                 battery=parsed.battery)


def decode_status(site: str, device: str, payload: bytes, received_at: datetime) -> StatusChange:
    """A retained ``online``/``offline`` status message."""
    text = payload.decode("utf-8", errors="replace").strip().lower()
    try:
        presence = Presence(text)
    except ValueError:
        raise Rejected(RejectReason.BAD_STATUS,
                       f"status payload is {text[:40]!r}; expected 'online' or 'offline'") from None
    return StatusChange(site=site, device=device, presence=presence, ts=received_at)
