"""Backups that restore: a full backup, more writes, a moment T, more writes, the cluster
destroyed, a point-in-time restore to T with pgBackRest: every event and alert committed
before T is back, none committed after it; the broker's accounts come back too.

Runs its own stack (own state dir, free ports): destroying the session's cluster would take
every other test's database with it.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.settings import Settings, StackInfo, get_settings
from deploy import backup, stack
from provisioning.broker_accounts import BrokerAccounts
from tests.support.cli import nattero_cli

pytestmark = pytest.mark.skipif(not backup.available(),
                                reason="pgbackrest is not installed (bash deploy/install.sh)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, StackInfo]]:
    from ingest.migrate import upgrade

    monkeypatch.setenv("NATTERO_WAL_ARCHIVE", "on")  # off for the session's stack

    # Beside the session's stack (pytest's tmp dirs are closed to the postgres OS user).
    root = get_settings().state_dir.resolve() / "backup-tests" / uuid.uuid4().hex[:8]
    root.mkdir(parents=True)
    root.parent.chmod(0o755)
    settings = Settings(state_dir=root, pg_port=_free_port(), mqtt_port=_free_port())
    try:
        info = stack.up(settings)
        upgrade(settings.sqlalchemy_url())
        yield settings, info
    finally:
        stack.down(settings)
        shutil.rmtree(root, ignore_errors=True)


def _cli(settings: Settings, *args: str) -> dict[str, object]:
    done = nattero_cli(*args, "--json", env={
        "NATTERO_STATE_DIR": str(settings.state_dir), "NATTERO_PG_PORT": str(settings.pg_port),
        "NATTERO_MQTT_PORT": str(settings.mqtt_port), "NATTERO_WAL_ARCHIVE": "on"})
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _write_night(conn: psycopg.Connection, site: str, batch: str, events: int) -> None:
    """``events`` door events in flat f1 and one alert, in one committed transaction."""
    base = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (site, device, event_id, ts, room, kind, received_at) "
                "VALUES (%s, 'door-1', %s, %s, 'f1', 'door.open', now())",
                [(site, f"{batch}-{i}", base + timedelta(seconds=i)) for i in range(events)])
        conn.execute(
            "INSERT INTO alerts (site, room, device, rule, severity, episode_key, first_ts, "
            "last_ts, detail) VALUES (%s, 'f1', 'door-1', 'left_flat', 'normal', %s, %s, %s, "
            "'')", (site, f"{site}:{batch}", base, base))


def _counts(conn: psycopg.Connection, site: str) -> dict[str, dict[str, int]]:
    events: dict[str, int] = dict(conn.execute(
        "SELECT split_part(event_id, '-', 1), count(*)::int FROM events WHERE site = %s "
        "GROUP BY 1", (site,)).fetchall())
    alerts: dict[str, int] = dict(conn.execute(
        "SELECT split_part(episode_key, ':', 2), count(*)::int FROM alerts WHERE site = %s "
        "GROUP BY 1", (site,)).fetchall())
    return {"events": events, "alerts": alerts}


def test_point_in_time_restore_brings_back_what_was_committed_before_the_moment_and_nothing_after(
        own_stack: tuple[Settings, StackInfo]) -> None:
    settings, info = own_stack
    site = "bk-site"
    with psycopg.connect(info.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES (%s, 'Backuphjemmet')", (site,))
        conn.execute("INSERT INTO rooms (site, id, kind, label) VALUES (%s, 'f1', 'flat', 'L1')",
                     (site,))
        _write_night(conn, site, "before", 500)
    with BrokerAccounts(info.mqtt_host, info.mqtt_port, info.broker_admin) as accounts:
        accounts.create_device_account("bk-device", "x" * 24, f"nattero/v1/{site}/bk-device",
                                       client_id="bk-device")

    made = _cli(settings, "backup", "--type", "full")
    assert made["type"] == "full" and made["broker_accounts"]
    # pgBackRest records a backup's stop time in whole seconds: T comes clearly after it.
    time.sleep(2)

    with psycopg.connect(info.database_url, autocommit=True) as conn:
        _write_night(conn, site, "between", 300)
        moment = conn.execute("SELECT clock_timestamp()").fetchone()
        assert moment is not None
        target: datetime = moment[0]
        time.sleep(0.5)
        _write_night(conn, site, "after", 200)
        assert _counts(conn, site) == {"events": {"before": 500, "between": 300, "after": 200},
                                       "alerts": {"before": 1, "between": 1, "after": 1}}
    backup.force_archive(settings)  # the WAL holding "after" is in the repository too

    # The disaster: the cluster and the broker's accounts are gone.
    stack.down(settings)
    data = settings.state_dir / "pg" / "data"
    shutil.rmtree(data)
    (settings.state_dir / "mosquitto" / "dynamic-security.json").unlink()

    restored = _cli(settings, "restore", "--to", target.isoformat())  # and starts the stack
    assert restored["target"] == target.isoformat() and restored["broker_accounts"]

    with psycopg.connect(info.database_url, autocommit=True) as conn:
        assert _counts(conn, site) == {"events": {"before": 500, "between": 300},
                                       "alerts": {"before": 1, "between": 1}}
        # The restored cluster takes writes again.
        _write_night(conn, site, "later", 10)
    with BrokerAccounts(info.mqtt_host, info.mqtt_port, info.broker_admin) as accounts:
        assert accounts.account_exists("bk-device")


def test_restore_refuses_while_the_database_runs_and_before_the_first_backup(
        own_stack: tuple[Settings, StackInfo]) -> None:
    settings, _info = own_stack
    with pytest.raises(backup.BackupError, match="nattero down"):
        backup.restore(settings, datetime.now(UTC))
    backup.backup(settings, "full")
    stack.down(settings)
    with pytest.raises(backup.BackupError, match="no backup ended before"):
        backup.restore(settings, datetime(2020, 1, 1, tzinfo=UTC))
    assert (settings.state_dir / "pg" / "data" / "PG_VERSION").exists()  # nothing touched


def test_backup_says_how_to_turn_archiving_on_where_it_is_off(stack: StackInfo) -> None:
    # The session's stack runs with NATTERO_WAL_ARCHIVE=off (tests/conftest.py).
    done = nattero_cli("backup", "--type", "full")
    assert done.returncode == 1
    assert "nattero down" in done.stderr and "nattero up" in done.stderr


@pytest.mark.parametrize("args", [["backup"], ["backup", "--list"],
                                  ["restore", "--to", "2026-11-23T02:10:00+01:00"]],
                         ids=["backup", "list", "restore"])
def test_backup_without_a_local_stack_says_where_debian_clusters_are_backed_up(
        args: list[str], tmp_path: Path) -> None:
    # The systemd installation runs Debian's own cluster: no stack.json, no pgBackRest
    # configuration of Nattero's; the operator gets the way out, not a traceback.
    done = nattero_cli(*args, env={"NATTERO_STATE_DIR": str(tmp_path)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no local stack in "), done.stderr
    assert "docs/backup.md" in lines[0]
