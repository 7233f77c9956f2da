"""Native protocol v1 read strictly: what a device may send, and who a dead letter is
charged to. Pure: no broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.protocol import Rejected, decode_event, parse_ts
from gateway.routing import sender_of

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-23T02:10:03Z", datetime(2026, 11, 23, 2, 10, 3, tzinfo=UTC)),
    ("2026-11-23T03:10:03.120+01:00", datetime(2026, 11, 23, 2, 10, 3, 120000, tzinfo=UTC)),
    ("2026-11-23t02:10:03.123456789z", datetime(2026, 11, 23, 2, 10, 3, 123456, tzinfo=UTC)),
    ("2026-11-23 02:10:03-00:30",
     datetime(2026, 11, 23, 2, 10, 3, tzinfo=timezone(timedelta(minutes=-30)))),
])
def test_rfc3339_times_with_an_offset_are_read_in_utc(text: str, expected: datetime) -> None:
    assert parse_ts(text) == expected
    assert parse_ts(text).tzinfo == UTC


@pytest.mark.parametrize("text", [
    "1795400000", "2026-11-23T02:10:03", "2026-11-23T02:10Z", "2026-W47-1T02:10:03Z",
    "2026-11-23T02:10:03+0100", "2026-02-30T02:10:03Z", "1999-12-31T23:59:59Z",
    "2026-11-23T02:10:03Z\n",
])
def test_times_outside_rfc3339_with_an_offset_are_refused(text: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_ts(text)
    assert refused.value.reason == "bad_ts"


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"id": "a", "ts": "2026-11-23T02:10:03Z", "kind": "motion", "id": "b"}',
     "duplicate_key"),
    (b'{"id": "a", "ts": "2026-11-23T02:10:03Z", "kind": "motion", '
     b'"extra": {"x": 1, "x": 2}}', "duplicate_key"),
    (b'{"id": "a", "ts": 1795400000.5, "kind": "motion"}', "bad_ts"),
    (b'{"id": "a\\u202e", "ts": "2026-11-23T02:10:03Z", "kind": "motion"}', "bad_id"),
    (b'{"id": "a\\u0085", "ts": "2026-11-23T02:10:03Z", "kind": "motion"}', "bad_id"),
    (b'{"id": "a", "ts": "2026-11-23T02:10:03Z", "kind": "motion", "battery": Infinity}',
     "invalid_json"),
    (b'{"id": "a", "ts": "2026-11-23T02:10:03Z", "kind": "motion", "battery": 50.0}',
     "bad_battery"),
    (b"[" * 100_000, "too_large"),
    (b"[" * 4000, "invalid_json"),
])
def test_payloads_outside_the_contract_are_refused_with_their_reason(
        payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        decode_event("solsikken", "hall-3", payload)
    assert refused.value.reason == reason
    assert "expected" in refused.value.detail


def test_unknown_fields_are_still_ignored() -> None:
    event = decode_event("solsikken", "hall-3", b'{"id": "a", "ts": "2026-11-23T02:10:03Z", '
                                                b'"kind": "motion", "rssi": -70, "fw": "1.2"}')
    assert event.id == "a"


@pytest.mark.parametrize(("topic", "sender"), [
    ("nattero/v1/solsikken/hall-3/events", "nattero/v1/solsikken/hall-3"),
    ("nattero/v1/solsikken/hall-3/status", "nattero/v1/solsikken/hall-3"),
    ("zigbee2mqtt/hall door 3", "zigbee2mqtt/hall door 3"),
    ("zigbee2mqtt/hall door 3/availability", "zigbee2mqtt/hall door 3"),
    ("application/0f1e/device/24e124136b316363/event/up",
     "application/0f1e/device/24e124136b316363"),
    ("somewhere/else", "somewhere/else"),
])
def test_dead_letters_are_charged_to_the_device_that_sent_them(topic: str, sender: str) -> None:
    assert sender_of(topic) == sender


@pytest.mark.parametrize(("state", "expected"), [("true", True), ("false", False)])
def test_a_heartbeat_may_report_the_beds_state(state: str, expected: bool) -> None:
    event = decode_event("solsikken", "f1-bed", (
        '{"id": "a", "ts": "2026-11-23T02:10:03Z", "kind": "heartbeat", '
        f'"occupied": {state}}}').encode())
    assert event.occupied is expected


def test_occupied_on_a_bed_edge_is_not_kept_and_a_non_boolean_is_refused() -> None:
    edge = decode_event("solsikken", "f1-bed", b'{"id": "a", "ts": "2026-11-23T02:10:03Z", '
                                               b'"kind": "bed.exit", "occupied": true}')
    assert edge.occupied is None  # the kind says it; a second answer would be a contradiction
    with pytest.raises(Rejected) as refused:
        decode_event("solsikken", "f1-bed", b'{"id": "a", "ts": "2026-11-23T02:10:03Z", '
                                            b'"kind": "heartbeat", "occupied": "yes"}')
    assert refused.value.reason == "bad_occupied"
    assert "true or false" in refused.value.detail
