"""Logging in, tokens, the account lock, and who may see live data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.security import create_token


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


def test_account_is_locked_after_five_wrong_passwords_even_for_the_right_one(
        http, make_user, site, db, token_for) -> None:
    nurse = make_user("staff", site)
    codes = [http.post("/api/v1/auth/token",
                       data={"username": nurse.username, "password": f"guess-{n}"}).status_code
             for n in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    response = http.post("/api/v1/auth/token",
                         data={"username": nurse.username, "password": nurse.password})
    assert response.status_code == 429
    assert "try again in 5 minute(s)" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) > 0
    # When the lock has run out, the right password works again.
    db.execute("UPDATE users SET locked_until = now() - interval '1 second' WHERE username = %s",
               (nurse.username,))
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


def test_expired_token_is_401(http, make_user, site, api) -> None:
    nurse = make_user("staff", site)
    token = create_token(api.settings, nurse.username, "staff",
                         now=datetime.now(UTC) - timedelta(hours=2), minutes=60)
    response = http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_signed_with_another_key_is_401(http, make_user, site, api) -> None:
    nurse = make_user("staff", site)
    forged = create_token(api.settings.model_copy(update={"secret_key": "x" * 40}),
                          nurse.username, "admin")
    response = http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_evaluator_gets_403_on_alerts(http, make_user, headers_for) -> None:
    evaluator = make_user("evaluator")
    response = http.get("/api/v1/alerts", headers=headers_for(evaluator))
    assert response.status_code == 403
    assert "staff account" in response.json()["detail"]


def _close_code(url: str) -> int:
    with connect(url, open_timeout=5) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_evaluator_is_refused_by_the_stream_with_4403(api, make_user, token_for) -> None:
    evaluator = make_user("evaluator")
    token = token_for(evaluator)
    assert _close_code(f"{api.ws_url}/api/v1/alerts/stream?token={token}") == 4403


def test_stream_without_a_valid_token_closes_with_4401(api) -> None:
    assert _close_code(f"{api.ws_url}/api/v1/alerts/stream") == 4401
    assert _close_code(f"{api.ws_url}/api/v1/alerts/stream?token=garbage") == 4401
