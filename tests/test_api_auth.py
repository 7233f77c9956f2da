"""Logging in, tokens, the client lock, and who may see live data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.deps import app_signing_secret
from api.security import create_token
from api.users import StoredUser, get_user


def test_login_with_the_right_password_returns_a_bearer_token(http, make_user, site,
                                                               db) -> None:
    nurse = make_user("staff", site)
    response = http.post("/api/v1/auth/token",
                         data={"username": nurse.username, "password": nurse.password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["role"] == "staff"
    assert body["sites"] == [site]
    me = http.get("/api/v1/auth/me",
                  headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == nurse.username
    assert db.execute("SELECT count(*) FROM audit_log WHERE actor = %s AND action = 'login'",
                      (nurse.username,)).fetchone()[0] == 1


def test_login_with_a_wrong_password_is_401_with_a_message(http, make_user, site) -> None:
    nurse = make_user("staff", site)
    response = http.post("/api/v1/auth/token",
                         data={"username": nurse.username, "password": "wrong password"})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}


def test_a_client_is_locked_after_four_wrong_passwords_even_for_the_right_one(
        http, make_user, site, db, token_for) -> None:
    nurse = make_user("staff", site)
    codes = [http.post("/api/v1/auth/token",
                       data={"username": nurse.username, "password": f"guess-{n}"}).status_code
             for n in range(4)]
    assert codes == [401, 401, 401, 429]
    response = http.post("/api/v1/auth/token",
                         data={"username": nurse.username, "password": nurse.password})
    assert response.status_code == 429
    assert "from this device; try again in" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) > 0
    # When the lock has run out, the right password works again. (Other clients of the
    # account were never locked: tests/test_sessions.py.)
    db.execute("UPDATE login_locks SET locked_until = now() - interval '1 second' "
               "WHERE user_id = (SELECT id FROM users WHERE username = %s)", (nurse.username,))
    assert token_for(nurse)


def test_one_address_guessing_many_accounts_is_slowed_down(http, make_user, site) -> None:
    codes = [http.post("/api/v1/auth/token",
                       data={"username": f"nobody-{n}", "password": "x" * 12}).status_code
             for n in range(21)]
    assert codes[:20] == [401] * 20
    assert codes[20] == 429


def test_alerts_without_a_token_are_401(http) -> None:
    response = http.get("/api/v1/alerts")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "not logged in" in response.json()["detail"]


def _stored(db: psycopg.Connection, username: str) -> StoredUser:
    stored = get_user(db, username)
    assert stored is not None
    return stored


def test_expired_token_is_401(http, make_user, site, api, db) -> None:
    nurse = _stored(db, make_user("staff", site).username)
    token = create_token(api.settings, app_signing_secret(api.app, db), nurse.id,
                         nurse.token_version, nurse.username, "staff",
                         now=datetime.now(UTC) - timedelta(hours=2), minutes=60)
    response = http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_signed_with_another_key_is_401(http, make_user, site, api, db) -> None:
    nurse = _stored(db, make_user("staff", site).username)
    forged = create_token(api.settings, "x" * 40, nurse.id, nurse.token_version,
                          nurse.username, "admin")
    response = http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_evaluator_gets_403_on_alerts(http, make_user, headers_for) -> None:
    evaluator = make_user("evaluator")
    response = http.get("/api/v1/alerts", headers=headers_for(evaluator))
    assert response.status_code == 403
    assert "staff account" in response.json()["detail"]


def _close_code(url: str, first_message: str | None = None) -> int:
    with connect(url, open_timeout=5) as ws, pytest.raises(ConnectionClosed) as closed:
        if first_message is not None:
            ws.send(first_message)
        ws.recv(timeout=15)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def _auth(token: str) -> str:
    return json.dumps({"type": "auth", "token": token})


def test_evaluator_is_refused_by_the_stream_with_4403(api, make_user, token_for) -> None:
    evaluator = make_user("evaluator")
    token = token_for(evaluator)
    assert _close_code(f"{api.ws_url}/api/v1/alerts/stream", _auth(token)) == 4403


def test_stream_without_a_valid_token_closes_with_4401(api) -> None:
    stream = f"{api.ws_url}/api/v1/alerts/stream"
    assert _close_code(stream, _auth("garbage")) == 4401
    assert _close_code(stream, "not json") == 4401
    assert _close_code(stream, json.dumps({"type": "hello"})) == 4401
    assert _close_code(stream, json.dumps({"type": "auth", "token": 42})) == 4401


def test_stream_refuses_a_token_in_the_url_even_a_valid_one(api, make_user, site,
                                                            token_for) -> None:
    token = token_for(make_user("staff", site))
    assert _close_code(f"{api.ws_url}/api/v1/alerts/stream?token={token}", _auth(token)) == 4401


def test_stream_without_an_auth_message_closes_with_4401(api, monkeypatch) -> None:
    monkeypatch.setattr("api.routes.stream.AUTH_WAIT_S", 0.5)
    assert _close_code(f"{api.ws_url}/api/v1/alerts/stream") == 4401
