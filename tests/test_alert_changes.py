"""An alert change as the store announces it and as boards receive it.

The store notifies the change itself (``ingest.alerts.notification``); the API frames it
for the boards (``api.fanout``). A change read back from ``alert_changes`` after a
reconnect must reach a board as the same frame as one that came by NOTIFY.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest

from api.fanout import PublishedChange, from_notification, published_change
from core.alerts import AlertChange, AlertStatus, RuleName, Severity
from core.events import RoomKind
from core.settings import StackInfo
from ingest.alerts import (
    NOTIFY_CHANNEL,
    NOTIFY_MAX_BYTES,
    AlertSnapshot,
    StoredAlertChange,
    changes_since,
    notification,
    record_change,
)

RAISED_AT = datetime(2026, 11, 23, 1, 0, 12, 345678, tzinfo=UTC)

ALERT = AlertSnapshot(
    id=41, site="solsikken", room="f12", room_label="Lejlighed 12", room_kind=RoomKind.FLAT,
    device="f12-door", rule=RuleName.LEFT_FLAT, severity=Severity.NORMAL,
    status=AlertStatus.OPEN, escalated=False, escalated_at=None, reannounced_at=None,
    called_at=None,
    late=False, count=1, first_ts=RAISED_AT, last_ts=RAISED_AT, raised_at=RAISED_AT,
    detail="left the flat at night", acknowledged_by=None, acknowledged_at=None,
    resolved_by=None, resolved_at=None, outcome=None, outcome_note=None, seq=1007)


@pytest.mark.pure
def test_an_alert_read_back_from_its_json_is_the_same_alert() -> None:
    assert AlertSnapshot.from_json(json.loads(ALERT.json_text())) == ALERT


@pytest.mark.pure
def test_a_notified_change_reaches_boards_as_the_same_frame_as_a_stored_one() -> None:
    notified = from_notification(notification(ALERT, AlertChange.RAISED))
    stored = StoredAlertChange(ALERT.seq, AlertChange.RAISED,
                               AlertSnapshot.from_json(json.loads(ALERT.json_text())))

    assert isinstance(notified, PublishedChange)
    assert notified == published_change(stored)
    assert (notified.seq, notified.site, notified.alert_id) == (1007, "solsikken", 41)
    assert json.loads(notified.message) == {
        "type": "change", "seq": 1007, "change": "raised", "alert": ALERT.to_json()}


@pytest.mark.pure
def test_a_change_too_large_for_a_notification_is_announced_by_its_seq_alone() -> None:
    large = replace(ALERT, detail="x" * NOTIFY_MAX_BYTES)

    assert notification(large, AlertChange.MERGED) == "1007"
    assert from_notification("1007") == 1007


@pytest.mark.pure
def test_a_payload_of_another_form_makes_the_listener_read_the_table() -> None:
    board_frame = json.dumps({"type": "change", "seq": 1007, "alert": ALERT.to_json()})

    assert from_notification(f"1007\tsolsikken\t41\t{board_frame}") is None  # older form
    assert from_notification(f"1007\tsolsikken\t41\tvanished\t{ALERT.json_text()}") is None


def test_a_recorded_change_is_notified_as_it_is_stored(site: str, migrated: StackInfo,
                                                       db: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(migrated.database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        with psycopg.connect(migrated.database_url) as conn:
            row = conn.execute(
                "INSERT INTO alerts (site, room, rule, severity, episode_key, first_ts, "
                "last_ts) VALUES (%s, 'f1', 'left_flat', 'normal', %s, %s, %s) RETURNING id",
                (site, f"test:{uuid.uuid4().hex}", now, now)).fetchone()
            assert row is not None
            alert = record_change(conn, int(row[0]), AlertChange.RAISED)
        payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    stored = [c for c in changes_since(db, alert.seq - 1, [site]) if c.seq == alert.seq]

    assert stored == [StoredAlertChange(alert.seq, AlertChange.RAISED, alert)]
    assert alert.room_kind is RoomKind.FLAT and alert.room_label == "Lejlighed 1"
    assert from_notification(payloads[0]) == published_change(stored[0])
