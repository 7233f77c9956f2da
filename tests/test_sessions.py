"""Shift-long sessions (issue 16 §1): an enrolled board stays live through the night, a
stranger's wrong passwords lock only the stranger's client, an admin unlocks, and a
revoked board is cut off at once.

Time is the API's own clock (``app.state.clock``), moved by the test: a 13-hour night
passes in seconds, and every expiry on the way is the real code's.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from api.clock import system_clock
from api.lockout import FIRST_LOCK_S, FREE_FAILURES
from tests.support.api import Account, ApiServer, bearer, open_stream
from tests.support.cli import nattero_cli


class MovableClock:
    """The API's clock, moved by the test instead of slept on."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(api: ApiServer) -> Iterator[MovableClock]:
    moved = MovableClock()
    api.app.state.clock = moved
    yield moved
    api.app.state.clock = system_clock


def _device() -> str:
    return secrets.token_hex(16)


def _pairing_code(http: httpx.Client, admin_headers: dict[str, str], site: str,
                  label: str = "kontoret") -> str:
    response = http.post(f"/api/v1/sites/{site}/boards/pairings", json={"label": label},
                         headers=admin_headers)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def _pair(http: httpx.Client, code: str, device: str) -> dict[str, Any]:
    response = http.post("/api/v1/auth/board/pair", json={"code": code, "device": device})
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


def _refresh(http: httpx.Client, board_secret: str, device: str) -> httpx.Response:
    return http.post("/api/v1/auth/board/refresh",
                     json={"board_secret": board_secret, "device": device})


def _login(http: httpx.Client, account: Account, password: str | None = None,
           client_key: str | None = None) -> httpx.Response:
    form = {"username": account.username, "password": password or account.password}
    if client_key is not None:
        form["client_key"] = client_key
    return http.post("/api/v1/auth/token", data=form)


def _live(board: ClientConnection) -> None:
    for expected in ("hello", "snapshot"):
        message: dict[str, Any] = json.loads(board.recv(timeout=10))
        assert message["type"] == expected, message


def _next_change(board: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message: dict[str, Any] = json.loads(board.recv(timeout=deadline - time.monotonic()))
        if message["type"] == "change":
            return message


# --- the enrolled board through the night ---------------------------------------------


def test_an_enrolled_board_stays_live_through_a_thirteen_hour_night(
        api, http, clock, make_user, headers_for, site, token_for, raise_alert) -> None:
    admin, nurse = make_user("admin"), make_user("staff", site)
    personal = token_for(nurse)  # a personal login at 15:00, the old way
    device = _device()
    board = _pair(http, _pairing_code(http, headers_for(admin), site), device)
    assert board["site"] == site and board["sites"] == [site]
    assert board["expires_in"] == api.settings.board_token_minutes * 60
    first_token = token = board["access_token"]
    issued = start = clock.now

    with open_stream(api.ws_url, token) as stream:
        _live(stream)
        renewals = 0
        while clock.now - start < timedelta(hours=13):
            clock.advance(minutes=5)
            age = clock.now - issued
            # The board renews at half the token's life, as the page does.
            if age >= timedelta(minutes=api.settings.board_token_minutes / 2):
                renewed = _refresh(http, board["board_secret"], device)
                assert renewed.status_code == 200, (clock.now, renewed.text)
                token, issued, renewals = renewed.json()["access_token"], clock.now, renewals + 1
            assert http.get("/api/v1/alerts", headers=bearer(token)).status_code == 200, clock.now
            if renewals == 2:
                # The clock really moves: the pairing's first token has run out by now.
                expired = http.get("/api/v1/alerts", headers=bearer(first_token))
                assert expired.status_code == 401 and "expired" in expired.json()["detail"]
        assert clock.now - datetime.now(UTC) >= timedelta(hours=12, minutes=59)
        assert renewals >= 13 * 60 // (api.settings.board_token_minutes // 2) - 1

        # 04:00: the personal 12-hour login of 15:00 is gone; the board is not.
        assert http.get("/api/v1/alerts", headers=bearer(personal)).status_code == 401
        alert = raise_alert(site)
        change = _next_change(stream)  # the stream opened at 15:00 still carries the night
        assert change["alert"]["id"] == alert
    with open_stream(api.ws_url, token) as reconnected:  # and a reconnect at 04:00 is let in
        _live(reconnected)


def test_a_pairing_code_is_single_use_and_runs_out(http, clock, make_user, headers_for,
                                                   site) -> None:
    admin = headers_for(make_user("admin"))
    code = _pairing_code(http, admin, site)
    _pair(http, code.lower().replace("-", " "), _device())  # typed loosely on a tablet
    again = http.post("/api/v1/auth/board/pair", json={"code": code, "device": _device()})
    assert again.status_code == 401 and "used or expired" in again.json()["detail"]

    late = _pairing_code(http, admin, site)
    clock.advance(minutes=11)
    expired = http.post("/api/v1/auth/board/pair", json={"code": late, "device": _device()})
    assert expired.status_code == 401
    dansk = http.post("/api/v1/auth/board/pair", json={"code": late, "device": _device()},
                      headers={"Accept-Language": "da"})
    assert "parringskoden er forkert, brugt eller udløbet" in dansk.json()["detail"]


def test_a_board_secret_copied_to_another_device_is_refused(http, make_user, headers_for,
                                                            site) -> None:
    device = _device()
    board = _pair(http, _pairing_code(http, headers_for(make_user("admin")), site), device)
    assert _refresh(http, board["board_secret"], device).status_code == 200
    copied = _refresh(http, board["board_secret"], _device())
    assert copied.status_code == 401 and "another device" in copied.json()["detail"]


def test_a_board_sees_only_its_own_site(http, make_user, headers_for, site, raise_alert,
                                        migrated) -> None:
    other = f"{site}-x"[:60]
    admin = headers_for(make_user("admin"))
    assert http.post("/api/v1/sites", json={"id": other, "name": "Anden"},
                     headers=admin).status_code == 201
    raise_alert(other)
    mine = raise_alert(site)
    board = _pair(http, _pairing_code(http, admin, site), _device())
    alerts = http.get("/api/v1/alerts", headers=bearer(board["access_token"])).json()
    assert [alert["id"] for alert in alerts] == [mine]
    assert http.get("/api/v1/users", headers=bearer(board["access_token"])).status_code == 403


# --- revoking a board -----------------------------------------------------------------


def test_a_revoked_board_is_cut_off_at_once(api, http, make_user, headers_for, site,
                                            db: psycopg.Connection) -> None:
    admin = headers_for(make_user("admin"))
    device = _device()
    board = _pair(http, _pairing_code(http, admin, site, "stuen"), device)
    listed = [b for b in http.get("/api/v1/boards", headers=admin).json()
              if b["id"] == board["board_id"]]
    assert listed and listed[0]["label"] == "stuen" and listed[0]["revoked_at"] is None
    token = board["access_token"]
    with open_stream(api.ws_url, token) as stream:
        _live(stream)
        revoked = http.post(f"/api/v1/boards/{board['board_id']}/revoke", headers=admin)
        assert revoked.status_code == 200, revoked.text
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                assert json.loads(stream.recv(timeout=5))["type"] == "ping"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert time.monotonic() - started < 5
    assert http.get("/api/v1/alerts", headers=bearer(token)).status_code == 401
    assert _refresh(http, board["board_secret"], device).status_code == 401
    listed = [b for b in http.get("/api/v1/boards", headers=admin).json()
              if b["id"] == board["board_id"]]
    assert listed[0]["revoked_at"] is not None
    assert http.post(f"/api/v1/boards/{board['board_id']}/revoke",
                     headers=admin).status_code == 404
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'board.revoke' AND "
                      "target = %s", (f"board-{board['board_id']}",)).fetchone() == (1,)


def test_only_an_admin_enrols_lists_and_revokes_boards(http, make_user, headers_for,
                                                       site) -> None:
    nurse = headers_for(make_user("staff", site))
    assert http.post(f"/api/v1/sites/{site}/boards/pairings", json={"label": "x"},
                     headers=nurse).status_code == 403
    assert http.get("/api/v1/boards", headers=nurse).status_code == 403
    assert http.post("/api/v1/boards/1/revoke", headers=nurse).status_code == 403
    assert http.post("/api/v1/sites/no-such-site/boards/pairings", json={"label": "x"},
                     headers=headers_for(make_user("admin"))).status_code == 404


# --- lockout per (account, client) ----------------------------------------------------


def test_wrong_passwords_lock_the_client_with_growing_delays(http, clock, make_user,
                                                             site) -> None:
    nurse = make_user("staff", site)
    codes = [_login(http, nurse, f"guess-{n}").status_code for n in range(FREE_FAILURES)]
    assert codes == [401] * FREE_FAILURES
    locked = _login(http, nurse, "guess-again")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == FIRST_LOCK_S
    assert _login(http, nurse).status_code == 429  # the right password too, while locked
    clock.advance(seconds=FIRST_LOCK_S + 1)
    longer = _login(http, nurse, "guess-once-more")
    assert longer.status_code == 429
    assert int(longer.headers["Retry-After"]) == 2 * FIRST_LOCK_S  # growing
    dansk = http.post("/api/v1/auth/token", headers={"Accept-Language": "da"},
                      data={"username": nurse.username, "password": nurse.password})
    assert "fra denne enhed; prøv igen om" in dansk.json()["detail"]
    assert "administrator om at låse kontoen op" in dansk.json()["detail"]
    clock.advance(seconds=2 * FIRST_LOCK_S + 1)
    assert _login(http, nurse).status_code == 200
    # A success starts the count afresh.
    assert [_login(http, nurse, f"x-{n}").status_code for n in range(FREE_FAILURES)] == \
        [401] * FREE_FAILURES


def test_a_strangers_wrong_passwords_lock_neither_the_board_nor_the_nurses_tablet(
        api, http, make_user, headers_for, site) -> None:
    nurse = make_user("staff", site)
    tablet = _login(http, nurse)  # the night shift's tablet logged in before
    assert tablet.status_code == 200
    key = tablet.json()["client_key"]
    device = _device()
    board = _pair(http, _pairing_code(http, headers_for(make_user("admin")), site), device)

    # A stranger at another client (no login key; a made-up one counts as none).
    stranger = [_login(http, nurse, f"guess-{n}", client_key="made.up").status_code
                for n in range(8)]
    assert stranger[:FREE_FAILURES] == [401] * FREE_FAILURES
    assert set(stranger[FREE_FAILURES:]) == {429}
    assert _login(http, nurse).status_code == 429  # the stranger's client is locked ...

    again = _login(http, nurse, client_key=key)  # ... the nurse's tablet is not
    assert again.status_code == 200, again.text
    assert again.json()["client_key"] == key
    renewed = _refresh(http, board["board_secret"], device)  # nor the enrolled board
    assert renewed.status_code == 200
    with open_stream(api.ws_url, renewed.json()["access_token"]) as stream:
        _live(stream)
    # A key of another account names no client of this one.
    other = _login(http, make_user("staff", site)).json()["client_key"]
    assert _login(http, nurse, client_key=other).status_code == 429


def test_an_admin_unlocks_an_account_on_the_api_and_with_the_cli(
        http, make_user, headers_for, site, db: psycopg.Connection) -> None:
    nurse, admin = make_user("staff", site), headers_for(make_user("admin"))
    for _ in range(FREE_FAILURES + 1):
        _login(http, nurse, "wrong-wrong")
    assert _login(http, nurse).status_code == 429
    row = [u for u in http.get("/api/v1/users", headers=admin).json()
           if u["username"] == nurse.username]
    assert row[0]["locked_clients"] == 1
    unlocked = http.post(f"/api/v1/users/{nurse.username}/unlock", headers=admin)
    assert unlocked.status_code == 200, unlocked.text
    assert _login(http, nurse).status_code == 200

    for _ in range(FREE_FAILURES + 1):
        _login(http, nurse, "wrong-wrong")
    assert _login(http, nurse).status_code == 429
    listed = nattero_cli("user", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [u for u in json.loads(listed.stdout) if u["username"] == nurse.username]
    assert mine[0]["locked_until"] is not None
    done = nattero_cli("user", "unlock", nurse.username.upper())
    assert done.returncode == 0, done.stderr
    assert f"user {nurse.username} unlocked" in done.stdout
    assert _login(http, nurse).status_code == 200
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'user.unlock' AND "
                      "target = %s", (nurse.username,)).fetchone() == (2,)
    missing = nattero_cli("user", "unlock", "nobody-at-all")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_unknown_users_and_unlock_of_nobody(http, make_user, headers_for) -> None:
    admin = headers_for(make_user("admin"))
    assert http.post("/api/v1/users/nobody-here/unlock", headers=admin).status_code == 404
    ghost = Account("nobody-here", "whatever-it-is", "staff")
    assert _login(http, ghost).status_code == 401


# --- personal logins: short tokens, renewed up to the session limit ---------------------


def test_a_personal_login_renews_its_short_token_until_the_session_limit(
        api, http, clock, make_user, headers_for, site) -> None:
    nurse = make_user("staff", site)
    login = _login(http, nurse)
    assert login.json()["expires_in"] == api.settings.token_minutes * 60 <= 60 * 60
    token = first = login.json()["access_token"]
    logged_in, expires_in = clock.now, login.json()["expires_in"]
    renewals = 0
    while True:
        clock.advance(seconds=expires_in / 2)  # as the pages do: at half the token's life
        renewed = http.post("/api/v1/auth/refresh", headers=bearer(token))
        if renewed.status_code != 200:
            break
        token, expires_in = renewed.json()["access_token"], renewed.json()["expires_in"]
        renewals += 1
        assert http.get("/api/v1/alerts", headers=bearer(token)).status_code == 200
        assert renewed.json()["client_key"] is None  # a login key comes only with a login
    assert renewed.status_code == 401
    assert "longest a personal login may" in renewed.json()["detail"], renewed.text
    assert renewals >= 2 * api.settings.session_hours - 2
    assert timedelta(hours=api.settings.session_hours - 1) <= clock.now - logged_in \
        <= timedelta(hours=api.settings.session_hours)
    dansk = http.post("/api/v1/auth/refresh", headers={**bearer(token), "Accept-Language": "da"})
    assert "det længste et personligt login må" in dansk.json()["detail"]
    # The login's first token ran out long ago; renewing it is refused too.
    assert http.post("/api/v1/auth/refresh", headers=bearer(first)).status_code == 401
    board = _pair(http, _pairing_code(http, headers_for(make_user("admin")), site), _device())
    assert http.post("/api/v1/auth/refresh",
                     headers=bearer(board["access_token"])).status_code == 401
