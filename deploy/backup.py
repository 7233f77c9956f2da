"""Backups of the local stack that restore: pgBackRest for PostgreSQL, copies of the broker's
dynamic-security file for Mosquitto.

Everything lives under ``settings.state_dir``::

    state_dir/pgbackrest/pgbackrest.conf   written on every `nattero up` (stanza ``nattero``)
    state_dir/pgbackrest/repo/             the pgBackRest repository (full, incr, archived WAL)
    state_dir/pgbackrest/{log,lock,spool}/
    state_dir/broker-backups/dynamic-security-<UTC stamp>.json   one per `nattero backup`

PostgreSQL archives every WAL segment into the repository (``archive_command`` written by
``deploy.stack``; ``archive_timeout`` closes a segment at least every minute), so a restore
can stop at any moment after the oldest full backup kept (``repo1-retention-full``).
On a real installation the repository belongs on another disk or host (``repo1-path``, or an
S3/SFTP repository): a copy on the same disk is no backup when the disk dies.

This module never deletes a cluster on its own: ``restore`` refuses while PostgreSQL runs,
and restores into the existing data directory with ``--delta`` (only what differs is
rewritten).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from core.errors import NatteroError
from core.settings import Settings

__all__ = [
    "BackupError",
    "BackupKind",
    "RestoreResult",
    "archive_command",
    "archiving_enabled",
    "available",
    "backup",
    "backups",
    "configure",
    "ensure_stanza",
    "force_archive",
    "restore",
]

PGBACKREST = "pgbackrest"
STANZA = "nattero"
#: Full backups kept; incremental backups and WAL older than the oldest kept full go with it.
RETENTION_FULL = 2
BackupKind = Literal["full", "incr", "diff"]


class BackupError(NatteroError, RuntimeError):
    """A backup or restore could not run; the message says what to do."""


@dataclass(frozen=True, slots=True)
class _Paths:
    root: Path

    @property
    def base(self) -> Path:
        return self.root / "pgbackrest"

    @property
    def conf(self) -> Path:
        return self.base / "pgbackrest.conf"

    @property
    def repo(self) -> Path:
        return self.base / "repo"

    @property
    def stanza_marker(self) -> Path:
        return self.base / "stanza-created"

    @property
    def broker_backups(self) -> Path:
        return self.root / "broker-backups"

    @property
    def pg_data(self) -> Path:
        return self.root / "pg" / "data"

    @property
    def pg_socket(self) -> Path:
        return self.root / "pg" / "socket"

    @property
    def dynsec(self) -> Path:
        return self.root / "mosquitto" / "dynamic-security.json"


def _paths(settings: Settings) -> _Paths:
    return _Paths(settings.state_dir.expanduser().resolve())


def available() -> bool:
    """True if the ``pgbackrest`` binary is installed (``deploy/install.sh`` installs it)."""
    return shutil.which(PGBACKREST) is not None


def archiving_enabled() -> bool:
    """WAL archiving on (the default) unless ``NATTERO_WAL_ARCHIVE=off``, and pgBackRest there.

    Off is for throw-away stacks (the test suite's): archived WAL is expired only by later
    backups, so a stack that archives but is never backed up grows its repository forever.
    """
    return available() and os.environ.get("NATTERO_WAL_ARCHIVE", "on").lower() != "off"


def archive_command(settings: Settings) -> str:
    """The ``archive_command`` PostgreSQL runs for each finished WAL segment."""
    return f"{PGBACKREST} --config={_paths(settings).conf} --stanza={STANZA} archive-push %p"


def configure(settings: Settings) -> Path:
    """Write ``pgbackrest.conf`` for this state dir and ports; returns its path."""
    paths = _paths(settings)
    for directory in (paths.base, paths.repo, paths.base / "log", paths.base / "lock",
                      paths.base / "spool"):
        directory.mkdir(parents=True, exist_ok=True)
    text = (
        "# Written by deploy/backup.py on every `nattero up`; edits are overwritten.\n"
        "[global]\n"
        f"repo1-path={paths.repo}\n"
        f"repo1-retention-full={RETENTION_FULL}\n"
        f"log-path={paths.base / 'log'}\n"
        f"lock-path={paths.base / 'lock'}\n"
        f"spool-path={paths.base / 'spool'}\n"
        "log-level-console=warn\n"
        "log-level-file=info\n"
        "compress-type=lz4\n"
        # A checkpoint at once, not at the next scheduled one: a backup starts now.
        "start-fast=y\n"
        "\n"
        f"[{STANZA}]\n"
        f"pg1-path={paths.pg_data}\n"
        f"pg1-port={settings.pg_port}\n"
        f"pg1-socket-path={paths.pg_socket}\n"
        "pg1-user=postgres\n"
    )
    if not paths.conf.exists() or paths.conf.read_text() != text:
        paths.conf.write_text(text)
    _chown_tree(paths.base)
    return paths.conf


def ensure_stanza(settings: Settings) -> None:
    """Create the stanza once PostgreSQL runs (idempotent): archiving fails until it exists."""
    paths = _paths(settings)
    configure(settings)
    if paths.stanza_marker.exists():
        return
    _pgbackrest(settings, "stanza-create")
    paths.stanza_marker.write_text("stanza created\n")


def force_archive(settings: Settings) -> None:
    """Close the current WAL segment and wait until it is in the repository (``check``)."""
    _pgbackrest(settings, "check")


def backup(settings: Settings, kind: BackupKind = "incr") -> dict[str, object]:
    """A pgBackRest backup (an ``incr`` with no full before it becomes a full) and a copy of
    the broker's accounts. Returns what was made."""
    import psycopg

    from core.settings import StackInfo

    paths = _paths(settings)
    _require_local_stack(paths)
    info = StackInfo.model_validate_json((paths.root / "stack.json").read_text())
    with psycopg.connect(info.database_url, connect_timeout=5) as conn:
        row = conn.execute("SHOW archive_mode").fetchone()
    if not row or row[0] != "on":
        raise BackupError("PostgreSQL was started before WAL archiving was configured; "
                          "restart the stack (`nattero down` then `nattero up`) and run "
                          "`nattero backup` again")
    if not archiving_enabled():
        raise BackupError("WAL archiving is off (NATTERO_WAL_ARCHIVE=off); unset it, restart "
                          "the stack (`nattero down` then `nattero up`) and back up again")
    ensure_stanza(settings)
    _pgbackrest(settings, "backup", f"--type={kind}")
    broker_copy = _copy_broker_accounts(paths)
    latest = backups(settings)[-1]
    return {"backup": latest["label"], "type": latest["type"],
            "stop": latest["stop"], "broker_accounts": str(broker_copy) if broker_copy else None}


def backups(settings: Settings) -> list[dict[str, object]]:
    """The backups in the repository, oldest first: ``label``, ``type``, ``start``, ``stop``."""
    import json

    _require_local_stack(_paths(settings))
    result = _pgbackrest(settings, "info", "--output=json")
    stanzas = json.loads(result.stdout or "[]")
    rows: list[dict[str, object]] = []
    for stanza in stanzas:
        for item in stanza.get("backup", []):
            rows.append({
                "label": item["label"], "type": item["type"],
                "start": datetime.fromtimestamp(item["timestamp"]["start"], UTC),
                "stop": datetime.fromtimestamp(item["timestamp"]["stop"], UTC),
            })
    return rows


@dataclass(frozen=True, slots=True)
class RestoreResult:
    target: datetime | None
    broker_accounts: str | None

    def as_dict(self) -> dict[str, object]:
        return {"target": self.target.isoformat() if self.target else None,
                "broker_accounts": self.broker_accounts}


def restore(settings: Settings, to: datetime | None = None, *,
            broker: bool = False) -> RestoreResult:
    """Restore the cluster to the moment ``to`` (UTC-aware), or to the end of the archived WAL.

    PostgreSQL must be stopped (``nattero down``). The broker's accounts are put back from the
    newest copy taken at or before ``to`` when ``broker`` is set or the broker's file is gone.
    Start the stack afterwards with ``nattero up``: PostgreSQL replays WAL to ``to`` and
    promotes (a new timeline; later backups continue from there).
    """
    from deploy import stack

    paths = _paths(settings)
    _require_local_stack(paths)
    running = stack.status(settings)
    if running["database"]["running"]:  # type: ignore[index]
        raise BackupError("PostgreSQL is running; stop the stack with `nattero down` before "
                          "a restore")
    if broker and running["broker"]["running"]:  # type: ignore[index]
        # A running Mosquitto would write its own accounts back over the restored file.
        raise BackupError("Mosquitto is running; stop the stack with `nattero down` before "
                          "restoring the broker's accounts")
    if to is not None and to.tzinfo is None:
        raise BackupError(f"{to.isoformat()} has no time zone; give one like "
                          "2026-11-23T02:10:00+01:00")
    configure(settings)
    paths.pg_data.mkdir(parents=True, exist_ok=True)
    paths.pg_data.chmod(0o700)
    _chown_tree(paths.pg_data)
    # Over an existing cluster only what differs is rewritten; into an empty one, everything.
    args = ["restore", "--delta"] if (paths.pg_data / "PG_VERSION").exists() else ["restore"]
    if to is not None:
        stamp = to.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        # --set is chosen by pgBackRest: the newest backup that ended before the target.
        args += ["--type=time", f"--target={stamp}", "--target-action=promote"]
    try:
        _pgbackrest(settings, *args)
    except BackupError as exc:
        if "unable to find backup set" in str(exc) and to is not None:
            raise BackupError(f"no backup ended before {to.isoformat()}; choose a later "
                              "moment (see `nattero backup --list`)") from exc
        raise
    restored_broker = None
    if broker or not paths.dynsec.exists():
        restored_broker = _restore_broker_accounts(paths, to)
    return RestoreResult(to, str(restored_broker) if restored_broker else None)


# ---------------------------------------------------------------------------- broker


def _copy_broker_accounts(paths: _Paths) -> Path | None:
    if not paths.dynsec.exists():
        return None
    paths.broker_backups.mkdir(parents=True, exist_ok=True)
    paths.broker_backups.chmod(0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = paths.broker_backups / f"dynamic-security-{stamp}.json"
    shutil.copy2(paths.dynsec, target)
    target.chmod(0o600)
    return target


def _broker_copy_time(path: Path) -> datetime:
    stamp = path.stem.removeprefix("dynamic-security-")
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def _restore_broker_accounts(paths: _Paths, to: datetime | None) -> Path | None:
    copies = sorted(paths.broker_backups.glob("dynamic-security-*.json"),
                    key=_broker_copy_time) if paths.broker_backups.exists() else []
    if to is not None:
        copies = [c for c in copies if _broker_copy_time(c) <= to]
    if not copies:
        return None
    paths.dynsec.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(copies[-1], paths.dynsec)
    paths.dynsec.chmod(0o600)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("mosquitto")
        os.chown(paths.dynsec, entry.pw_uid, entry.pw_gid)
    return copies[-1]


# ---------------------------------------------------------------------------- pgBackRest


def _require_local_stack(paths: _Paths) -> None:
    # `nattero backup` knows only the stack `nattero up` made; a Debian cluster run by systemd
    # is backed up with pgBackRest's own commands (docs/backup.md).
    if not (paths.root / "stack.json").exists():
        raise BackupError(
            f"no local stack in {paths.root} (no stack.json): `nattero backup` backs up the "
            "stack `nattero up` made there; set NATTERO_STATE_DIR to its folder, or back up "
            "a PostgreSQL cluster of the system (the systemd installation) with pgbackrest "
            "itself, as docs/backup.md, *On a Debian installation*, shows")


def _chown_tree(path: Path) -> None:
    """pgBackRest runs as ``postgres`` (the owner of the data directory) when we are root."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam("postgres")
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid)


def _pgbackrest(settings: Settings, command: str,
                *args: str) -> subprocess.CompletedProcess[str]:
    if not available():
        raise BackupError("pgbackrest is not installed: run `bash deploy/install.sh` "
                          "(Debian package pgbackrest)")
    cmd = [PGBACKREST, f"--config={_paths(settings).conf}", f"--stanza={STANZA}", *args,
           command]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        log = _paths(settings).base / "log"
        raise BackupError(f"pgbackrest {command} failed ({result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()}; read the logs in {log}")
    return result
