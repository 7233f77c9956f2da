"""Tokens that die with the account they belong to, signed with the installation's own
secret: the old public development constant forges nothing, and a password change,
disable, role change or delete ends every older token at once - on REST and on an open
board stream."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from api.deps import app_signing_secret
from api.security import create_token
from api.users import StoredUser, create_user, get_user
from core.settings import DEV_SECRET, Settings
from ingest.installation import installation_secret
from tests.support.api import PASSWORD, Account, ApiServer, bearer, open_stream
from tests.support.cli import nattero_cli

NEW_PASSWORD = "en-helt-ny-nat-med-te-7"


def _stored(db: psycopg.Connection, username: str) -> StoredUser:
    stored = get_user(db, username)
    assert stored is not None
    return stored


def _me(http: httpx.Client, token: str) -> int:
    return http.get("/api/v1/auth/me", headers=bearer(token)).status_code


def _login(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.post("/api/v1/auth/token", data={"username": username, "password": password})


def _live(board: ClientConnection) -> None:
    """Read the hello and the snapshot: the stream is authenticated and live."""
    for expected in ("hello", "snapshot"):
        message: dict[str, Any] = json.loads(board.recv(timeout=10))
        assert message["type"] == expected, message


def _closed_within(board: ClientConnection, seconds: float) -> tuple[int, float]:
    """Wait for the server to close the stream; its close code and how long it took."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            message = json.loads(board.recv(timeout=seconds))
            assert message["type"] == "ping", f"a revoked stream sent {message}"
    assert closed.value.rcvd is not None, "the stream was not closed by the server"
    return closed.value.rcvd.code, time.monotonic() - started


def _stream_close_code(api: ApiServer, token: str) -> int:
    with open_stream(api.ws_url, token) as board, pytest.raises(ConnectionClosed) as closed:
        board.recv(timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


# --- the secret ------------------------------------------------------------------------


def test_the_installation_signs_with_a_random_secret_of_its_own(api, db) -> None:
    secret = installation_secret(db)
    assert secret != DEV_SECRET
    assert len(secret) >= 32
    assert installation_secret(db) == secret  # made once, then shared by every process
    assert app_signing_secret(api.app, db) == secret


def test_a_token_forged_with_the_old_public_constant_is_refused(api, http, db, make_user,
                                                                site) -> None:
    admin = _stored(db, make_user("admin").username)
    now = datetime.now(UTC)
    # The old token's shape, as anyone could sign it for any `make demo` install ...
    old_shape = jwt.encode({"sub": admin.username, "role": "admin", "iat": now,
                            "exp": now + timedelta(hours=1)}, DEV_SECRET, algorithm="HS256")
    # ... and today's shape, with the right id and version, signed with the constant.
    new_shape = create_token(api.settings, DEV_SECRET, admin.id, admin.token_version,
                             admin.username, "admin")
    for forged in (old_shape, new_shape):
        assert http.get("/api/v1/users", headers=bearer(forged)).status_code == 401
        assert _stream_close_code(api, forged) == 4401


def test_a_token_of_the_right_key_without_id_and_version_is_refused(api, http, db,
                                                                    make_user) -> None:
    admin = _stored(db, make_user("admin").username)
    now = datetime.now(UTC)
    secret = app_signing_secret(api.app, db)
    for claims in ({"sub": admin.username, "role": "admin"},
                   {"sub": admin.username, "uid": str(admin.id), "ver": admin.token_version},
                   {"sub": admin.username, "uid": admin.id, "ver": None}):
        token = jwt.encode({**claims, "iat": now, "exp": now + timedelta(hours=1)}, secret,
                           algorithm="HS256")
        assert _me(http, token) == 401, claims


@pytest.mark.parametrize("mode", ["development", "production"])
def test_settings_refuse_the_old_public_constant_and_short_secrets(mode: Any) -> None:
    with pytest.raises(ValidationError, match="public development placeholder"):
        Settings(mode=mode, secret_key=DEV_SECRET, gateway_client_id="gw-" + "a" * 32)
    with pytest.raises(ValidationError, match="shorter than 32"):
        Settings(mode=mode, secret_key="short-but-not-empty", gateway_client_id="gw-" + "a" * 32)
    assert Settings(mode=mode, secret_key="s" * 48,
                    gateway_client_id="gw-" + "a" * 32).secret_key == "s" * 48
    assert Settings(mode=mode, gateway_client_id="gw-" + "a" * 32).secret_key is None


def test_a_token_survives_an_api_restart(api, http, make_user, site, token_for) -> None:
    token = token_for(make_user("staff", site))
    api.restart()
    assert _me(http, token) == 200  # the secret is the installation's, not the process's


# --- disable, enable ---------------------------------------------------------------------


def test_a_disabled_users_token_dies_at_once_on_rest_and_on_an_open_stream(
        api, http, db, make_user, site, token_for, headers_for) -> None:
    nurse, admin = make_user("staff", site), make_user("admin")
    token = token_for(nurse)
    assert http.get("/api/v1/alerts", headers=bearer(token)).status_code == 200
    with open_stream(api.ws_url, token) as board:
        _live(board)
        response = http.post(f"/api/v1/users/{nurse.username}/disable",
                             headers=headers_for(admin))
        assert response.status_code == 200, response.text
        assert http.get("/api/v1/alerts", headers=bearer(token)).status_code == 401
        code, seconds = _closed_within(board, 10)
    assert code == 4401
    assert seconds < 3.0, f"the disabled user's board stayed open {seconds:.1f} s"
    assert _login(http, nurse.username, nurse.password).status_code == 401
    actor = db.execute("SELECT actor FROM audit_log WHERE action = 'user.disable' "
                       "AND target = %s", (nurse.username,)).fetchone()
    assert actor == (admin.username,)


def test_enabling_again_lets_the_user_log_in_but_old_tokens_stay_dead(
        api, http, make_user, site, token_for, headers_for) -> None:
    nurse, admin = make_user("staff", site), make_user("admin")
    old = token_for(nurse)
    for verb in ("disable", "enable"):
        assert http.post(f"/api/v1/users/{nurse.username}/{verb}",
                         headers=headers_for(admin)).status_code == 200
    assert _me(http, old) == 401
    assert _me(http, token_for(nurse)) == 200


def test_other_users_streams_stay_open_when_one_user_is_disabled(
        api, http, make_user, site, token_for, headers_for) -> None:
    nurse, colleague, admin = (make_user("staff", site), make_user("staff", site),
                               make_user("admin"))
    with open_stream(api.ws_url, token_for(colleague)) as board:
        _live(board)
        assert http.post(f"/api/v1/users/{nurse.username}/disable",
                         headers=headers_for(admin)).status_code == 200
        time.sleep(2.5)  # more than two reads of the versions
        board.ping().wait(5)  # still open: a closed stream raises here


def test_an_admin_cannot_disable_or_delete_their_own_account(http, make_user,
                                                            headers_for) -> None:
    admin = make_user("admin")
    headers = headers_for(admin)
    disabled = http.post(f"/api/v1/users/{admin.username}/disable", headers=headers)
    deleted = http.delete(f"/api/v1/users/{admin.username}", headers=headers)
    assert disabled.status_code == deleted.status_code == 422
    assert "nattero user disable" in disabled.json()["detail"]
    # In a browser it is Danish first, without the terminal command.
    danish = http.post(f"/api/v1/users/{admin.username}/disable",
                       headers={**headers, "Accept-Language": "da"}).json()["detail"]
    assert "din egen konto" in danish and "nattero" not in danish
    assert http.get("/api/v1/auth/me", headers=headers).status_code == 200


def test_account_changes_need_an_admin_and_an_existing_user(http, make_user, site,
                                                           headers_for) -> None:
    nurse, admin = make_user("staff", site), make_user("admin")
    other = make_user("staff", site)
    assert http.post(f"/api/v1/users/{other.username}/disable",
                     headers=headers_for(nurse)).status_code == 403
    missing = http.post("/api/v1/users/no-such-person/disable", headers=headers_for(admin))
    assert missing.status_code == 404
    assert "nattero user list" in missing.json()["detail"]
    short = http.post(f"/api/v1/users/{other.username}/password", json={"password": "kort"},
                      headers=headers_for(admin))
    assert short.status_code == 422


# --- password ------------------------------------------------------------------------------


def test_a_password_change_over_the_api_kills_old_tokens_and_open_streams(
        api, http, db, make_user, site, token_for, headers_for) -> None:
    nurse, admin = make_user("staff", site), make_user("admin")
    token = token_for(nurse)
    with open_stream(api.ws_url, token) as board:
        _live(board)
        response = http.post(f"/api/v1/users/{nurse.username}/password",
                             json={"password": NEW_PASSWORD}, headers=headers_for(admin))
        assert response.status_code == 200, response.text
        assert _me(http, token) == 401
        code, seconds = _closed_within(board, 10)
    assert code == 4401 and seconds < 3.0
    assert _login(http, nurse.username, PASSWORD).status_code == 401
    assert _me(http, token_for(Account(nurse.username, NEW_PASSWORD, "staff"))) == 200


def test_nattero_user_passwd_kills_old_tokens(http, make_user, site, token_for) -> None:
    nurse = make_user("staff", site)
    token = token_for(nurse)
    result = nattero_cli("user", "passwd", nurse.username.upper(), "--password-stdin",
                         input_text=NEW_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert _me(http, token) == 401
    assert _me(http, token_for(Account(nurse.username, NEW_PASSWORD, "staff"))) == 200


def test_wrong_passwords_do_not_end_a_valid_token(http, make_user, site, token_for) -> None:
    nurse = make_user("staff", site)
    token = token_for(nurse)
    assert _login(http, nurse.username, "wrong-password-1").status_code == 401
    assert _me(http, token) == 200


# --- role change and delete -----------------------------------------------------------------


def test_a_role_change_by_any_path_kills_old_tokens(http, db, make_user, site,
                                                     token_for) -> None:
    nurse = make_user("staff", site)
    token = token_for(nurse)
    # Even an UPDATE by hand (psql): the version is raised by the database itself.
    db.execute("UPDATE users SET role = 'admin' WHERE username = %s", (nurse.username,))
    assert _me(http, token) == 401


def test_a_deleted_and_re_added_username_with_another_role_cannot_use_the_old_token(
        http, db, make_user, site, token_for) -> None:
    nurse = make_user("staff", site)
    token = token_for(nurse)
    result = nattero_cli("user", "delete", nurse.username, "--yes")
    assert result.returncode == 0, result.stderr
    create_user(db, nurse.username, PASSWORD, "admin", [])
    # Same name, same password, and the new account is an admin: the old token is nothing.
    assert _me(http, token) == 401
    assert http.get("/api/v1/users", headers=bearer(token)).status_code == 401
    fresh = token_for(Account(nurse.username, PASSWORD, "admin"))
    assert http.get("/api/v1/users", headers=bearer(fresh)).status_code == 200


# --- the CLI verbs ---------------------------------------------------------------------------


def test_cli_disable_enable_and_delete(http, db, make_user, site, token_for) -> None:
    nurse = make_user("staff", site)
    token = token_for(nurse)
    disabled = nattero_cli("user", "disable", nurse.username)
    assert disabled.returncode == 0 and "disabled" in disabled.stdout, disabled.stderr
    assert _me(http, token) == 401
    assert _login(http, nurse.username, PASSWORD).status_code == 401
    listed = json.loads(nattero_cli("user", "list", "--json").stdout)
    assert [u["disabled"] for u in listed if u["username"] == nurse.username] == [True]
    assert nattero_cli("user", "enable", nurse.username).returncode == 0
    assert _me(http, token) == 401
    assert _login(http, nurse.username, PASSWORD).status_code == 200
    assert nattero_cli("user", "delete", nurse.username, "--yes").returncode == 0
    assert get_user(db, nurse.username) is None
    actions = [row[0] for row in db.execute(
        "SELECT action FROM audit_log WHERE target = %s AND actor = 'cli' ORDER BY id",
        (nurse.username,)).fetchall()]
    assert actions == ["user.disable", "user.enable", "user.delete"]


@pytest.mark.parametrize("verb", [["disable"], ["enable"], ["delete", "--yes"]])
def test_cli_verbs_on_an_unknown_user_print_one_clear_line(migrated: object,
                                                          verb: list[str]) -> None:
    result = nattero_cli("user", verb[0], "no-such-person", *verb[1:])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0], result.stderr


def test_cli_passwd_refuses_a_short_password(make_user, site) -> None:
    nurse = make_user("staff", site)
    result = nattero_cli("user", "passwd", nurse.username, "--password-stdin",
                         input_text="kort\n")
    assert result.returncode == 1 and "too short" in result.stderr


