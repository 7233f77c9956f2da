"""Zigbee2MQTT adapter: real bridge payloads (tests/fixtures/zigbee2mqtt) → native events.

Pure decoding: no broker, no database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.events import DeviceKind, DeviceSource, EventKind, Presence
from gateway.adapters import (
    AdapterError,
    BridgeTopic,
    DeviceRef,
    Zigbee2MqttDecoder,
    resolve,
    route,
)

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

FIXTURES = Path(__file__).parent / "fixtures" / "zigbee2mqtt"
NIGHT = datetime(2019, 3, 8, 23, 30, tzinfo=UTC)

HALL_DOOR = DeviceRef(
    "solsikken", "hall-3", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, "hall door 3"
)
LOUNGE_PIR = DeviceRef(
    "solsikken", "lounge-pir", DeviceKind.MOTION, DeviceSource.ZIGBEE2MQTT, "lounge pir"
)


def messages(name: str) -> list[bytes]:
    """The fixture's payloads as published: objects as compact JSON, strings verbatim."""
    fixture: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return [
        message["payload"].encode()
        if isinstance(message["payload"], str)
        else json.dumps(message["payload"], separators=(",", ":")).encode()
        for message in fixture["messages"]
    ]


def kinds(decoder: Zigbee2MqttDecoder, device: DeviceRef, payload: bytes) -> list[EventKind]:
    return [event.kind for event in decoder.decode_state(device, payload, NIGHT).events]


def test_contact_false_means_door_open() -> None:
    _closed, opened, _republished, _closed_again = messages("door_sequence.json")
    assert kinds(Zigbee2MqttDecoder(), HALL_DOOR, opened) == [EventKind.DOOR_OPEN]


def test_contact_true_means_door_closed() -> None:
    closed, *_ = messages("door_sequence.json")
    assert kinds(Zigbee2MqttDecoder(), HALL_DOOR, closed) == [EventKind.DOOR_CLOSED]


def test_door_sequence_becomes_closed_open_heartbeat_closed() -> None:
    decoder = Zigbee2MqttDecoder()
    seen = [kinds(decoder, HALL_DOOR, payload) for payload in messages("door_sequence.json")]
    assert seen == [
        [EventKind.DOOR_CLOSED],
        [EventKind.DOOR_OPEN],
        [EventKind.HEARTBEAT],
        [EventKind.DOOR_CLOSED],
    ]


def test_republished_state_without_contact_change_is_no_door_event() -> None:
    decoder = Zigbee2MqttDecoder()
    _closed, opened, republished, _ = messages("door_sequence.json")
    decoder.decode_state(HALL_DOOR, opened, NIGHT)
    events = decoder.decode_state(HALL_DOOR, republished, NIGHT).events
    assert [event.kind for event in events] == [EventKind.HEARTBEAT]


def test_last_seen_is_the_event_time_in_utc() -> None:
    _closed, opened, *_ = messages("door_sequence.json")
    (event,) = Zigbee2MqttDecoder().decode_state(HALL_DOOR, opened, NIGHT).events
    assert event.ts == datetime(2019, 3, 8, 16, 52, 10, tzinfo=UTC)  # 19:52:10+03:00
    assert event.ts.tzinfo is UTC


def test_receipt_time_is_the_event_time_without_last_seen() -> None:
    (payload,) = messages("motion_minimal.json")
    events = Zigbee2MqttDecoder().decode_state(LOUNGE_PIR, payload, NIGHT).events
    assert {event.ts for event in events} == {NIGHT}


def test_battery_is_carried_when_reported_and_none_before_first_report() -> None:
    closed, *_ = messages("door_sequence.json")
    (fresh,) = messages("door_before_battery_report.json")
    flat_door = DeviceRef(
        "solsikken", "flat-12-door", DeviceKind.DOOR, DeviceSource.ZIGBEE2MQTT, "flat 12 door"
    )
    decoder = Zigbee2MqttDecoder()
    assert decoder.decode_state(HALL_DOOR, closed, NIGHT).events[0].battery == 100
    (event,) = decoder.decode_state(flat_door, fresh, NIGHT).events
    assert (event.kind, event.battery) == (EventKind.DOOR_OPEN, None)
    assert event.ts == datetime(2024, 12, 10, 9, 7, 51, 399000, tzinfo=UTC)


def test_redelivered_message_gives_the_same_event_ids() -> None:
    _closed, opened, *_ = messages("door_sequence.json")
    decoder = Zigbee2MqttDecoder()
    first = decoder.decode_state(HALL_DOOR, opened, NIGHT)
    again = decoder.decode_state(HALL_DOOR, opened, NIGHT + timedelta(seconds=5))
    after_restart = Zigbee2MqttDecoder().decode_state(
        HALL_DOOR, opened, NIGHT + timedelta(minutes=1)
    )
    assert again.events == first.events
    assert [e.id for e in after_restart.events] == [e.id for e in first.events]


def test_distinct_changes_get_distinct_event_ids() -> None:
    decoder = Zigbee2MqttDecoder()
    ids = [
        event.id
        for payload in messages("door_sequence.json")
        for event in decoder.decode_state(HALL_DOOR, payload, NIGHT).events
    ]
    assert len(ids) == len(set(ids)) == 4


def test_occupancy_true_means_motion_and_presence_on() -> None:
    (payload,) = messages("motion_minimal.json")
    assert kinds(Zigbee2MqttDecoder(), LOUNGE_PIR, payload) == [
        EventKind.MOTION,
        EventKind.PRESENCE_ON,
    ]


def test_motion_sequence_reports_continued_occupancy_once_and_clears_presence() -> None:
    decoder = Zigbee2MqttDecoder()
    seen = [kinds(decoder, LOUNGE_PIR, payload) for payload in messages("motion_sequence.json")]
    assert seen == [
        [EventKind.PRESENCE_OFF],
        [EventKind.MOTION, EventKind.PRESENCE_ON],
        [EventKind.HEARTBEAT],
        [EventKind.PRESENCE_OFF],
    ]


def test_occupancy_cleared_by_the_bridge_timeout_is_stamped_with_receipt_time() -> None:
    decoder = Zigbee2MqttDecoder()
    *earlier, cleared = messages("motion_sequence.json")
    for payload in earlier:
        decoder.decode_state(LOUNGE_PIR, payload, NIGHT)
    (event,) = decoder.decode_state(LOUNGE_PIR, cleared, NIGHT).events
    # last_seen did not move: the bridge's occupancy_timeout, not a Zigbee report.
    assert (event.kind, event.ts) == (EventKind.PRESENCE_OFF, NIGHT)


def test_bed_pad_occupancy_means_bed_enter_and_exit() -> None:
    bed = DeviceRef("solsikken", "bed-12", DeviceKind.BED, DeviceSource.ZIGBEE2MQTT, "bed 12")
    decoder = Zigbee2MqttDecoder()
    assert kinds(decoder, bed, b'{"occupancy":true}') == [EventKind.BED_ENTER]
    assert kinds(decoder, bed, b'{"occupancy":false}') == [EventKind.BED_EXIT]


def test_a_bed_pads_repeated_state_is_a_heartbeat_that_says_the_state() -> None:
    # The change itself (occupancy false) was lost; the pad's next report repeats it.
    bed = DeviceRef("solsikken", "bed-12", DeviceKind.BED, DeviceSource.ZIGBEE2MQTT, "bed 12")
    decoder = Zigbee2MqttDecoder()
    decoder.seed("bed 12", EventKind.BED_EXIT)
    seen = NIGHT.isoformat().replace("+00:00", "Z")
    [beat] = decoder.decode_state(bed, json.dumps({"occupancy": False, "last_seen": seen})
                                  .encode(), NIGHT).events
    assert (beat.kind, beat.occupied) == (EventKind.HEARTBEAT, False)
    # A door's heartbeat says no bed state.
    closed, *_ = messages("door_sequence.json")
    door = Zigbee2MqttDecoder()
    door.seed("hall door 3", EventKind.DOOR_CLOSED)
    [door_beat] = door.decode_state(HALL_DOOR, closed, NIGHT).events
    assert (door_beat.kind, door_beat.occupied) == (EventKind.HEARTBEAT, None)


def test_seeded_state_makes_the_first_message_after_restart_a_repeat() -> None:
    closed, *_ = messages("door_sequence.json")
    decoder = Zigbee2MqttDecoder()
    decoder.seed("hall door 3", EventKind.DOOR_CLOSED)
    assert kinds(decoder, HALL_DOOR, closed) == [EventKind.HEARTBEAT]


def test_bridge_resending_cached_state_on_startup_is_no_heartbeat() -> None:
    closed, *_ = messages("door_sequence.json")
    decoder = Zigbee2MqttDecoder()
    decoder.seed(
        "hall door 3",
        EventKind.DOOR_CLOSED,
        last_seen=datetime(2019, 3, 8, 16, 50, 47, tzinfo=UTC),
    )
    assert kinds(decoder, HALL_DOOR, closed) == []


@pytest.mark.parametrize(
    ("payload", "presence"),
    list(
        zip(
            messages("availability.json"),
            [Presence.ONLINE, Presence.OFFLINE, Presence.ONLINE, Presence.OFFLINE],
            strict=True,
        )
    ),
)
def test_availability_in_both_payload_styles_becomes_a_status_change(
    payload: bytes, presence: Presence
) -> None:
    decoded = Zigbee2MqttDecoder().decode_availability(HALL_DOOR, payload, NIGHT)
    assert decoded.events == []
    assert decoded.status is not None
    assert (decoded.status.device, decoded.status.presence) == ("hall-3", presence)
    assert decoded.status.ts == NIGHT


def test_unknown_availability_payload_is_rejected() -> None:
    with pytest.raises(AdapterError) as caught:
        Zigbee2MqttDecoder().decode_availability(HALL_DOOR, b'{"state":"asleep"}', NIGHT)
    assert caught.value.reason == "invalid_availability"


def test_state_that_is_not_json_is_rejected() -> None:
    with pytest.raises(AdapterError) as caught:
        Zigbee2MqttDecoder().decode_state(HALL_DOOR, b"contact=false", NIGHT)
    assert caught.value.reason == "invalid_json"


def test_contact_that_is_not_a_boolean_is_rejected() -> None:
    with pytest.raises(AdapterError) as caught:
        Zigbee2MqttDecoder().decode_state(HALL_DOOR, b'{"contact":"open"}', NIGHT)
    assert caught.value.reason == "invalid_contact"


def test_unreadable_last_seen_falls_back_to_receipt_time_with_a_warning() -> None:
    decoded = Zigbee2MqttDecoder().decode_state(
        HALL_DOOR, b'{"contact":false,"last_seen":"yesterday"}', NIGHT
    )
    assert decoded.events[0].ts == NIGHT
    assert decoded.warnings and "last_seen" in decoded.warnings[0]


def test_route_recognises_state_and_availability_topics() -> None:
    assert route("zigbee2mqtt/hall door 3") == BridgeTopic(
        DeviceSource.ZIGBEE2MQTT, "hall door 3", "state"
    )
    assert route("zigbee2mqtt/hall door 3/availability") == BridgeTopic(
        DeviceSource.ZIGBEE2MQTT, "hall door 3", "availability"
    )
    assert route("zigbee2mqtt/kitchen/floor pir") == BridgeTopic(
        DeviceSource.ZIGBEE2MQTT, "kitchen/floor pir", "state"
    )


@pytest.mark.parametrize(
    "topic",
    [
        "zigbee2mqtt/bridge/state",
        "zigbee2mqtt/bridge/devices",
        "zigbee2mqtt/hall door 3/set",
        "zigbee2mqtt/hall door 3/get",
        "nattero/v1/solsikken/hall-3/events",
    ],
)
def test_route_ignores_bridge_command_and_foreign_topics(topic: str) -> None:
    assert route(topic) is None


def test_unmapped_friendly_name_is_rejected_not_guessed() -> None:
    topic = route("zigbee2mqtt/hall door 4")
    assert topic is not None
    devices = {(DeviceSource.ZIGBEE2MQTT, "hall door 3"): HALL_DOOR}
    with pytest.raises(AdapterError) as caught:
        resolve(topic, devices)
    assert caught.value.reason == "unmapped_external_id"
    assert "--external-id 'hall door 4'" in caught.value.message
    known = route("zigbee2mqtt/hall door 3")
    assert known is not None
    assert resolve(known, devices) is HALL_DOOR
