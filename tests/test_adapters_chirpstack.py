"""ChirpStack v4 adapter and vendor mappings: real payloads (tests/fixtures/chirpstack).

Pure decoding: no broker, no database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.events import DeviceKind, DeviceSource, EventKind
from gateway.adapters import (
    MAPPINGS,
    AdapterError,
    BridgeTopic,
    ChirpStackDecoder,
    DeviceRef,
    route,
)

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

FIXTURES = Path(__file__).parent / "fixtures" / "chirpstack"
RECEIVED = datetime(2026, 11, 23, 2, 10, 4, tzinfo=UTC)

FLAT_DOOR = DeviceRef(
    "solsikken", "flat-12-door", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
    "24e124136b316363", "milesight-ws301",
)
LOUNGE_PIR = DeviceRef(
    "solsikken", "lounge-pir", DeviceKind.MOTION, DeviceSource.CHIRPSTACK,
    "24e124538c223031", "milesight-ws202",
)
CORRIDOR_EYE = DeviceRef(
    "solsikken", "corridor-eye", DeviceKind.MOTION, DeviceSource.CHIRPSTACK,
    "a81758fffe0312ab", "elsys",
)
DOCS_DEVICE = DeviceRef(
    "solsikken", "test-device", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
    "0101010101010101", "milesight-ws301",
)


def payload(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(payload(name))
    return value


def up_kinds(decoder: ChirpStackDecoder, device: DeviceRef, name: str) -> list[EventKind]:
    return [event.kind for event in decoder.decode_up(device, payload(name), RECEIVED).events]


def rejection(call: Any, *args: Any) -> str:
    with pytest.raises(AdapterError) as caught:
        call(*args)
    return caught.value.reason


def test_ws301_open_uplink_becomes_door_open_with_battery() -> None:
    (event,) = ChirpStackDecoder().decode_up(
        FLAT_DOOR, payload("up_ws301_open.json"), RECEIVED
    ).events
    assert (event.site, event.device, event.kind, event.battery) == (
        "solsikken", "flat-12-door", EventKind.DOOR_OPEN, 100,
    )


def test_uplink_time_is_the_event_time_in_utc() -> None:
    (event,) = ChirpStackDecoder().decode_up(
        FLAT_DOOR, payload("up_ws301_open.json"), RECEIVED
    ).events
    assert event.ts == datetime(2026, 11, 23, 2, 10, 3, 120514, tzinfo=UTC)


def test_ws301_open_close_sequence_and_periodic_repeat() -> None:
    decoder = ChirpStackDecoder()
    seen = [
        up_kinds(decoder, FLAT_DOOR, name)
        for name in ("up_ws301_open.json", "up_ws301_closed.json", "up_ws301_closed_periodic.json")
    ]
    assert seen == [[EventKind.DOOR_OPEN], [EventKind.DOOR_CLOSED], [EventKind.HEARTBEAT]]


def test_retry_with_the_same_deduplication_id_gives_the_same_event_id() -> None:
    decoder = ChirpStackDecoder()
    first = decoder.decode_up(FLAT_DOOR, payload("up_ws301_open.json"), RECEIVED)
    retry = decoder.decode_up(FLAT_DOOR, payload("up_ws301_open.json"), RECEIVED)
    after_restart = ChirpStackDecoder().decode_up(
        FLAT_DOOR, payload("up_ws301_open.json"), RECEIVED
    )
    dedup = fixture("up_ws301_open.json")["deduplicationId"]
    assert [e.id for e in first.events] == [f"{dedup}:door.open"]
    assert retry.events == first.events
    assert after_restart.events == first.events


def test_seeded_state_makes_a_repeated_state_a_heartbeat_after_restart() -> None:
    decoder = ChirpStackDecoder()
    decoder.seed("24e124136b316363", EventKind.DOOR_CLOSED)
    assert up_kinds(decoder, FLAT_DOOR, "up_ws301_closed_periodic.json") == [
        EventKind.HEARTBEAT
    ]


def test_uplink_without_codec_is_rejected_as_missing_codec() -> None:
    reason = rejection(
        ChirpStackDecoder().decode_up, DOCS_DEVICE, payload("up_without_codec.json"), RECEIVED
    )
    assert reason == "missing_codec"


def test_chirpstack_v3_payload_is_rejected_with_its_own_reason() -> None:
    reason = rejection(ChirpStackDecoder().decode_up, DOCS_DEVICE, payload("v3_up.json"), RECEIVED)
    assert reason == "chirpstack_v3_payload"


def test_unknown_or_missing_mapping_is_rejected() -> None:
    for mapping in ("milesight-ws999", None):
        device = DeviceRef(
            "solsikken", "flat-12-door", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
            "24e124136b316363", mapping,
        )
        reason = rejection(
            ChirpStackDecoder().decode_up, device, payload("up_ws301_open.json"), RECEIVED
        )
        assert reason == "unknown_mapping"


def test_uplink_for_another_dev_eui_is_rejected() -> None:
    reason = rejection(
        ChirpStackDecoder().decode_up, DOCS_DEVICE, payload("up_ws301_open.json"), RECEIVED
    )
    assert reason == "dev_eui_mismatch"


def test_legacy_ws301_mapping_reads_the_older_decoders_state_key() -> None:
    legacy = DeviceRef(
        "solsikken", "flat-12-door", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
        "24e124136b316363", "milesight-ws301-legacy",
    )
    assert up_kinds(ChirpStackDecoder(), legacy, "up_ws301_legacy_open.json") == [
        EventKind.DOOR_OPEN
    ]


def test_older_decoder_output_under_the_current_mapping_is_refused() -> None:
    reason = rejection(
        ChirpStackDecoder().decode_up, FLAT_DOOR, payload("up_ws301_legacy_open.json"), RECEIVED
    )
    assert reason == "mapping_version_mismatch"


def test_ws301_raw_value_decoder_output_is_read() -> None:
    ws301 = MAPPINGS["milesight-ws301"]
    assert ws301({"battery": 90, "magnet_status": 1}, DeviceKind.DOOR) == [
        (EventKind.DOOR_OPEN, 90)
    ]
    assert ws301({"magnet_status": 0}, DeviceKind.EXIT) == [(EventKind.DOOR_CLOSED, None)]


def test_ws202_trigger_means_motion_and_presence_on_then_normal_means_presence_off() -> None:
    decoder = ChirpStackDecoder()
    assert up_kinds(decoder, LOUNGE_PIR, "up_ws202_trigger.json") == [
        EventKind.MOTION,
        EventKind.PRESENCE_ON,
    ]
    assert up_kinds(decoder, LOUNGE_PIR, "up_ws202_normal.json") == [EventKind.PRESENCE_OFF]


def test_one_uplink_saying_two_things_gives_two_distinct_ids() -> None:
    events = ChirpStackDecoder().decode_up(
        LOUNGE_PIR, payload("up_ws202_trigger.json"), RECEIVED
    ).events
    assert len({event.id for event in events}) == 2
    assert {event.battery for event in events} == {16}


def test_elsys_motion_count_and_occupancy_then_quiet_room() -> None:
    decoder = ChirpStackDecoder()
    assert up_kinds(decoder, CORRIDOR_EYE, "up_elsys_motion.json") == [
        EventKind.MOTION,
        EventKind.PRESENCE_ON,
    ]
    assert up_kinds(decoder, CORRIDOR_EYE, "up_elsys_quiet.json") == [EventKind.PRESENCE_OFF]


def test_elsys_digital_input_is_a_door_contact() -> None:
    elsys = MAPPINGS["elsys"]
    assert elsys({"digital": 1, "vdd": 3600}, DeviceKind.DOOR) == [(EventKind.DOOR_OPEN, None)]
    assert elsys({"digital": 0}, DeviceKind.DOOR) == [(EventKind.DOOR_CLOSED, None)]


def test_mapping_used_for_the_wrong_kind_of_device_is_rejected() -> None:
    door_with_pir_mapping = DeviceRef(
        "solsikken", "lounge-pir", DeviceKind.DOOR, DeviceSource.CHIRPSTACK,
        "24e124538c223031", "milesight-ws202",
    )
    reason = rejection(
        ChirpStackDecoder().decode_up,
        door_with_pir_mapping,
        payload("up_ws202_trigger.json"),
        RECEIVED,
    )
    assert reason == "mapping_kind_mismatch"


def test_object_with_none_of_the_mappings_keys_is_rejected() -> None:
    assert rejection(MAPPINGS["milesight-ws202"], {"temperatureSensor": 25}, DeviceKind.MOTION) == (
        "unrecognised_object"
    )


def test_status_event_becomes_a_heartbeat_with_the_battery_level() -> None:
    (event,) = ChirpStackDecoder().decode(
        DOCS_DEVICE, "status", payload("status.json"), RECEIVED
    ).events
    assert (event.kind, event.battery) == (EventKind.HEARTBEAT, 88)
    assert event.id == "bf2a9746-1c8b-49be-a92e-f0b89c8534e4:heartbeat"
    assert event.ts == datetime(2022, 7, 18, 9, 35, 6, 927172, tzinfo=UTC)


def test_join_event_stores_nothing() -> None:
    decoded = ChirpStackDecoder().decode(DOCS_DEVICE, "join", payload("join.json"), RECEIVED)
    assert decoded.events == [] and decoded.status is None


def test_route_recognises_v4_event_topics_and_lower_cases_the_dev_eui() -> None:
    topic = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/24E124136B316363/event/up"
    assert route(topic) == BridgeTopic(DeviceSource.CHIRPSTACK, "24e124136b316363", "up")
    status = "application/17c82e96/device/0101010101010101/event/status"
    assert route(status) == BridgeTopic(DeviceSource.CHIRPSTACK, "0101010101010101", "status")


@pytest.mark.parametrize(
    "topic",
    [
        "application/1/device/0101010101010101/command/down",
        "application/1/device/not-an-eui/event/up",
        "application/1/device/0101010101010101/rx",
    ],
)
def test_route_ignores_commands_and_malformed_topics(topic: str) -> None:
    assert route(topic) is None


def test_registry_names_the_versioned_mappings() -> None:
    assert set(MAPPINGS) == {
        "milesight-ws301", "milesight-ws301-legacy", "milesight-ws202", "elsys",
    }
