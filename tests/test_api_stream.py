"""The live alert stream: boards see each other's actions at once and catch up exactly."""

from __future__ import annotations

import contextlib
import json
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from websockets.sync.client import ClientConnection

from api.db import APPLICATION_NAME
from core.alerts import AlertChange
from core.events import RoomKind
from ingest.alerts import NOTIFY_MAX_BYTES, record_change
from tests.support.api import open_stream
from tests.support.store import unique


def receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    """The next message that is not a keep-alive ping."""
    deadline = time.monotonic() + timeout
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=max(0.01,
                                                                 deadline - time.monotonic())))
        if message["type"] != "ping":
            return message


def open_board(api, token: str,
               since: int | None = None) -> contextlib.AbstractContextManager[ClientConnection]:
    return open_stream(api.ws_url, token, since)


def test_a_new_board_gets_hello_then_a_snapshot_of_open_alerts(api, make_user, site,
                                                               raise_alert, token_for) -> None:
    alert = raise_alert(site)
    with open_board(api, token_for(make_user("staff", site))) as board:
        hello = receive(board)
        assert hello["type"] == "hello"
        snapshot = receive(board)
        assert snapshot["type"] == "snapshot"
        assert snapshot["seq"] == hello["seq"]
        assert [a["id"] for a in snapshot["alerts"]] == [alert]


def test_one_board_acknowledges_and_the_other_sees_it_within_a_second(
        api, http, make_user, site, raise_alert, token_for) -> None:
    alert = raise_alert(site)
    anna, bo = make_user("staff", site), make_user("staff", site)
    with open_board(api, token_for(anna)) as board_a, open_board(api, token_for(bo)) as board_b:
        for board in (board_a, board_b):
            assert receive(board)["type"] == "hello"
            assert receive(board)["type"] == "snapshot"
        started = time.monotonic()
        response = http.post(f"/api/v1/alerts/{alert}/ack",
                             headers={"Authorization": f"Bearer {token_for(anna)}"})
        assert response.status_code == 200
        change = receive(board_b, timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert change["type"] == "change"
        assert change["change"] == "acknowledged"
        assert change["alert"]["id"] == alert
        assert change["alert"]["acknowledged_by"] == anna.username
        assert receive(board_a, timeout=1.0)["seq"] == change["seq"]


def test_a_board_reconnecting_with_since_gets_exactly_the_missed_changes_in_order(
        api, http, make_user, site, raise_alert, token_for) -> None:
    nurse = make_user("staff", site)
    token = token_for(nurse)
    first = raise_alert(site)
    with open_board(api, token) as board:
        receive(board)
        receive(board)
        raised = raise_alert(site, "lounge", "common_motion")
        change = receive(board)
        assert change["alert"]["id"] == raised
        last_seq = change["seq"]
    # Offline for a while: three changes happen meanwhile.
    headers = {"Authorization": f"Bearer {token}"}
    http.post(f"/api/v1/alerts/{first}/ack", headers=headers)
    third = raise_alert(site, "exit", "building_exit", "high")
    http.post(f"/api/v1/alerts/{first}/resolve", headers=headers, json={"outcome": "help_given"})
    with open_board(api, token, since=last_seq) as board:
        assert receive(board)["type"] == "hello"
        missed = [receive(board) for _ in range(3)]
        assert [(m["change"], m["alert"]["id"]) for m in missed] == [
            ("acknowledged", first), ("raised", third), ("resolved", first)]
        seqs = [m["seq"] for m in missed]
        assert seqs == sorted(seqs) and seqs[0] > last_seq
        # Nothing more, and nothing twice: the next live change follows directly.
        fourth = raise_alert(site, "f1", "bed_exit_not_back")
        live = receive(board)
        assert live["alert"]["id"] == fourth
        assert live["seq"] > seqs[-1]


def test_a_board_does_not_receive_changes_of_a_site_it_cannot_see(
        api, make_user, site, raise_alert, token_for) -> None:
    import provisioning
    from core.settings import get_settings
    from tests.support.store import unique

    other = unique("t")
    provisioning.add_site(get_settings(), other, "Naboen")
    provisioning.add_room(get_settings(), other, "f1", RoomKind.FLAT)
    with open_board(api, token_for(make_user("staff", site))) as board:
        receive(board)
        receive(board)
        raise_alert(other)
        mine = raise_alert(site)
        assert receive(board)["alert"]["id"] == mine


def _store_alert(db, site: str, detail: str) -> int:
    now = datetime.now(UTC)
    row = db.execute(
        "INSERT INTO alerts (site, room, rule, severity, episode_key, first_ts, last_ts, "
        "detail) VALUES (%s, 'f1', 'left_flat', 'normal', %s, %s, %s, %s) RETURNING id",
        (site, unique(site), now, now, detail)).fetchone()
    record_change(db, int(row[0]), AlertChange.RAISED)
    return int(row[0])


def test_a_change_too_large_for_a_notification_reaches_the_board_whole_and_in_order(
        api, make_user, site, raise_alert, token_for, db) -> None:
    detail = "x" * (NOTIFY_MAX_BYTES + 100)  # the payload then carries the seq alone
    with open_board(api, token_for(make_user("staff", site))) as board:
        receive(board)
        receive(board)
        with db.transaction():
            large = _store_alert(db, site, detail)
        small = raise_alert(site)
        first, second = receive(board), receive(board)
        assert (first["alert"]["id"], second["alert"]["id"]) == (large, small)
        assert first["alert"]["detail"] == detail
        assert second["seq"] == first["seq"] + 1


def test_a_rolled_back_change_does_not_hold_up_the_next_one(
        api, make_user, site, raise_alert, token_for, db) -> None:
    with open_board(api, token_for(make_user("staff", site))) as board:
        receive(board)
        receive(board)
        with contextlib.suppress(RuntimeError), db.transaction():
            _store_alert(db, site, "never committed")
            raise RuntimeError("roll back")  # leaves a hole in the seq numbers
        started = time.monotonic()
        alert = raise_alert(site)
        change = receive(board, timeout=1.0)
        assert change["alert"]["id"] == alert
        assert time.monotonic() - started < 1.0


def test_numbers_a_promoted_standby_skipped_do_not_hold_up_a_change_read_on_reconnect(
        api, make_user, site, raise_alert, token_for, db) -> None:
    """After a database failover the change numbers jump (a sequence skips the values it
    had logged ahead), and the listener, reconnecting, reads the change above the hole
    from the table. The change lock settles that hole: the change reached the board 1.5 s
    late (the old grace for holes) after every failover. Here: the listener's connection
    is ended, the numbers jump by 32, and an alert is raised before the listener is back."""
    with open_board(api, token_for(make_user("staff", site))) as board:
        receive(board)
        receive(board)
        ended = db.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s", (f"{APPLICATION_NAME}:listen",)).fetchone()
        assert ended == (1,)
        db.execute("SELECT setval(pg_get_serial_sequence('alert_changes', 'seq'), "
                   "nextval(pg_get_serial_sequence('alert_changes', 'seq')) + 32)")
        started = time.monotonic()
        alert = raise_alert(site)
        change = receive(board, timeout=5.0)
        assert change["alert"]["id"] == alert
        # The listener tries again after 0.5 s; the change follows at once.
        assert time.monotonic() - started < 1.4


def test_five_boards_share_one_listen_connection(api, make_user, site, token_for, db) -> None:
    token = token_for(make_user("staff", site))
    with ExitStack() as boards:
        for _ in range(5):
            board = boards.enter_context(open_board(api, token))
            receive(board)
            receive(board)
        listening = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s "
            "AND query ILIKE 'LISTEN%%'", (f"{APPLICATION_NAME}%",)).fetchone()[0]
        assert listening == 1
        metrics = api.app.state.fanout.subscriber_count
        assert metrics == 5


def test_a_board_catches_up_after_the_api_restarts(api, http, make_user, site, raise_alert,
                                                   token_for) -> None:
    token = token_for(make_user("staff", site))
    with open_board(api, token) as board:
        hello = receive(board)
    api.restart()
    alert = raise_alert(site)
    with open_board(api, token, since=hello["seq"]) as board:
        assert receive(board)["type"] == "hello"
        change = receive(board)
        assert (change["change"], change["alert"]["id"]) == ("raised", alert)


def test_a_change_the_store_cannot_read_does_not_deafen_the_boards(
        api, make_user, site, raise_alert, token_for, db) -> None:
    """A row of ``alert_changes`` this version cannot read (written by hand, by a later
    version) is skipped: the listener must not die and leave every board hearing pings."""
    token = token_for(make_user("staff", site))
    with open_board(api, token) as board:
        hello, _ = receive(board), receive(board)
        first = raise_alert(site)
        assert receive(board)["alert"]["id"] == first
        with db.transaction():  # no notification: the next one finds a hole and reads it
            db.execute("INSERT INTO alert_changes (alert_id, site, change, at, alert) "
                       "VALUES (%s, %s, 'raised', now(), '{}')", (first, site))
        later = [raise_alert(site) for _ in range(2)]  # the read that meets it, and the next
        for alert in later:
            change = receive(board)
            assert (change["change"], change["alert"]["id"]) == ("raised", alert)
    with open_board(api, token, since=hello["seq"]) as board:  # a catch-up skips it too
        assert receive(board)["type"] == "hello"
        assert [receive(board)["alert"]["id"] for _ in range(3)] == [first, *later]
