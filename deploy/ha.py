"""A replicated database with automatic failover, on one machine: ``nattero up --ha``.

pg_auto_failover (Debian's ``postgresql-15-auto-failover``) runs a monitor and two
PostgreSQL+TimescaleDB nodes, each watched by its own ``pg_autoctl`` keeper; the monitor
promotes the secondary when the primary stops answering. Replication is synchronous
(pg_auto_failover sets ``synchronous_standby_names`` while the secondary is healthy), so a
commit the writer saw is on both nodes, and a failover loses no event the gateway has
acknowledged to the broker. When the secondary is down, the primary goes on alone
(``wait_primary``): the night is not stopped by a missing standby.

Nattero connects with a libpq multi-host URL and ``target_session_attrs=read-write``
(``database_url``), so a new connection finds whichever node is primary; the writer
retries a batch whose transaction it lost (``ingest.writer``), with the alerts its rules
gave.

Layout under ``<state dir>/ha``: ``monitor/``, ``node1/``, ``node2/`` (data directories,
each with its ``.log``), ``xdg/`` (pg_autoctl's configuration and state, kept here rather
than in the postgres user's home). Ports: the monitor on ``pg_port + 10``, the nodes on
``pg_port + 11`` and ``+ 12``, listening on 127.0.0.1 only.

For development and tests the monitor is tuned to fail over in seconds (health checks
every second, a node unhealthy after 5 s, a dead primary's demotion waited for 5 s).
pg_auto_failover's defaults (20 s and 30 s) are the safer choice for production, where a
network blip must not cause a failover: ``docs/operations.md`` shows the three-host
set-up. Authentication: the application role logs in with its password (scram); the
keepers' own roles (``pgautofailover_monitor``, ``pgautofailover_replicator``) are trusted
from 127.0.0.1, which is only acceptable on a development machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from core.settings import Settings
from deploy.stack import DB_NAME, DB_ROLE, PG_BIN, StackError
from ingest import cluster
from ingest.bootstrap import bootstrap_scripts
from ingest.health import ping

log = logging.getLogger(__name__)

__all__ = ["NODES", "HaPaths", "database_url", "down", "kill_node", "node_state", "primary",
           "start_node", "up"]

NODES = ("node1", "node2")
MONITOR_PORT_OFFSET = 10
READY_TIMEOUT_S = 120.0
MONITOR_DB = "pg_auto_failover"
# Seconds, not pg_auto_failover's tens of seconds: see the module's docstring.
_FAST_FAILOVER = (
    "pgautofailover.health_check_period = 1000\n"
    "pgautofailover.health_check_timeout = 2000\n"
    "pgautofailover.health_check_max_retries = 2\n"
    "pgautofailover.health_check_retry_delay = 1000\n"
    "pgautofailover.node_considered_unhealthy_timeout = 5000\n"
    "pgautofailover.primary_demote_timeout = 5000\n"
)
# TimescaleDB on every node. Included last, so it wins over the keeper's own file, whose
# tuning is computed for a machine of its own (a quarter of the RAM as shared buffers,
# 8 GB of WAL kept): three servers share this one.
_NODE_CONF = (
    "shared_preload_libraries = 'timescaledb'\n"
    "timescaledb.telemetry_level = off\n"
    "password_encryption = 'scram-sha-256'\n"
    "shared_buffers = 256MB\n"
    "effective_cache_size = 1GB\n"
    "maintenance_work_mem = 64MB\n"
    "wal_keep_size = 512MB\n"
    "log_timezone = 'UTC'\n"
    "timezone = 'UTC'\n"
)
# The application gives its password; pg_auto_failover appends its own roles' lines for
# replication and health checks, but not the one pg_rewind needs (a rejoining old primary
# would fall back to a full base backup).
_NODE_HBA = (
    "# TYPE  DATABASE  USER      ADDRESS        METHOD\n"
    "local   all       postgres                 peer map=nattero\n"
    f"host    all       {DB_ROLE}   127.0.0.1/32   scram-sha-256\n"
    "host    postgres  pgautofailover_replicator  127.0.0.1/32  trust\n"
)


@dataclass(frozen=True)
class HaPaths:
    root: Path

    @property
    def monitor(self) -> Path:
        return self.root / "monitor"

    def node(self, name: str) -> Path:
        return self.root / name

    @property
    def socket(self) -> Path:
        return self.root / "run"

    @property
    def xdg(self) -> Path:
        return self.root / "xdg"

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def pid(self, pgdata: Path) -> Path:
        """The keeper's own pid file (pg_autoctl keeps it under XDG_RUNTIME_DIR)."""
        return self.xdg / "run" / "pg_autoctl" / str(pgdata).lstrip("/") / "pg_autoctl.pid"

    def data(self, name: str) -> Path:
        return self.monitor if name == "monitor" else self.node(name)


def paths(settings: Settings) -> HaPaths:
    return HaPaths(settings.state_dir.expanduser().resolve() / "ha")


def ports(settings: Settings) -> dict[str, int]:
    base = settings.pg_port + MONITOR_PORT_OFFSET
    return {"monitor": base, **{name: base + 1 + n for n, name in enumerate(NODES)}}


def database_url(settings: Settings, password: str) -> str:
    """The application's multi-host URL: whichever node is primary takes the writes."""
    hosts = ",".join(f"127.0.0.1:{ports(settings)[name]}" for name in NODES)
    return (f"postgresql://{DB_ROLE}:{password}@{hosts}/{DB_NAME}"
            "?target_session_attrs=read-write")


def up(settings: Settings, password: str) -> str:
    """Create (first time) and start the monitor and both nodes; returns once a primary
    with a synchronous secondary serves the application role. Idempotent."""
    _check_installed()
    where = paths(settings)
    where.root.mkdir(parents=True, exist_ok=True)
    (where.xdg / "run").mkdir(parents=True, exist_ok=True)
    where.socket.mkdir(exist_ok=True)
    _own(where.root)
    port = ports(settings)
    if not (where.monitor / "PG_VERSION").exists():
        _autoctl(where, ["create", "monitor", "--pgdata", str(where.monitor),
                         "--pgport", str(port["monitor"]), "--hostname", "127.0.0.1",
                         "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl"])
        _write(where.monitor / "nattero-ha.conf", _FAST_FAILOVER)
        _include(where.monitor, "nattero-ha.conf")
    _start_keeper(where, "monitor", where.monitor)
    _wait(lambda: _monitor_answers(settings), "the pg_auto_failover monitor", where, "monitor")
    first = not (where.node(NODES[0]) / "PG_VERSION").exists()
    if first:
        _initdb(where, NODES[0])
    for name in NODES:
        if not (where.node(name) / "pg_autoctl.cfg").exists() and not _registered(where, name):
            # The second node's data directory is a base backup of the primary's.
            log.info("creating %s", name)
            _autoctl(where, ["create", "postgres", "--pgdata", str(where.node(name)),
                             "--pgport", str(port[name]), "--hostname", "127.0.0.1",
                             "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl",
                             "--pghost", str(where.socket), "--dbname", DB_NAME, "--name", name,
                             "--monitor", _monitor_uri(settings)])
        log.info("starting %s", name)
        _start_keeper(where, name, where.node(name))
        if name == NODES[0]:
            _wait(lambda: primary(settings) is not None, "a primary", where, name)
            _bootstrap(settings, where, password)  # idempotent: sets the password again
    _wait(lambda: _synchronous(settings), "a synchronous secondary", where, NODES[1])
    return database_url(settings, password)


def down(settings: Settings) -> None:
    """Stop the keepers (each stops its PostgreSQL). Data stays."""
    where = paths(settings)
    for name in (*NODES, "monitor"):
        pid = _keeper_pid(where, name)
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 60
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)


def kill_node(settings: Settings, name: str) -> None:
    """``kill -9`` a node's keeper and its PostgreSQL, as a machine that dies would."""
    where = paths(settings)
    pid = _keeper_pid(where, name)
    postmaster = _postmaster_pid(where.node(name))
    for target in (pid, postmaster):
        if target is None:
            continue
        try:
            os.killpg(target, signal.SIGKILL)  # the keeper's children and the server's
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)


def start_node(settings: Settings, name: str) -> None:
    """Start a stopped node's keeper again (a killed old primary rejoins as secondary)."""
    where = paths(settings)
    _start_keeper(where, name, where.node(name))


def primary(settings: Settings) -> str | None:
    """The node the monitor has made primary and that reports so, or None."""
    states = node_state(settings)
    for name, (reported, assigned) in states.items():
        if reported in ("primary", "wait_primary", "single") and reported == assigned:
            return name
    return None


def node_state(settings: Settings) -> dict[str, tuple[str, str]]:
    """Each node's (reported, assigned) state, as the monitor has it ({} if unreachable)."""
    try:
        with psycopg.connect(_monitor_uri(settings), connect_timeout=2,
                             autocommit=True) as conn:
            return cluster.failover_nodes(conn)
    except psycopg.Error:
        return {}


# ---------------------------------------------------------------------------- inside


def _check_installed() -> None:
    if not Path("/usr/bin/pg_autoctl").exists():
        raise StackError("pg_autoctl is not installed; run `make install` (Debian package "
                         "postgresql-15-auto-failover)")


def _is_root() -> bool:
    return os.geteuid() == 0


def _env(where: HaPaths) -> dict[str, str]:
    # A PATH of system directories: the postgres user cannot read a developer's own.
    return {"PATH": f"{PG_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(where.root),
            "XDG_CONFIG_HOME": str(where.xdg / "config"),
            "XDG_DATA_HOME": str(where.xdg / "data"),
            "XDG_RUNTIME_DIR": str(where.xdg / "run")}


def _as_postgres() -> dict[str, object]:
    """Popen arguments that run a command as the postgres OS user when we are root
    (PostgreSQL and pg_autoctl refuse to run as root); nothing otherwise."""
    if not _is_root():
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _autoctl(where: HaPaths, args: Sequence[str]) -> None:
    result = subprocess.run(["pg_autoctl", *args], env=_env(where), capture_output=True,
                            text=True, timeout=300, check=False, cwd=where.root,
                            **_as_postgres())  # type: ignore[call-overload]
    if result.returncode != 0:
        raise StackError(f"`pg_autoctl {' '.join(args[:2])}` failed: "
                         f"{(result.stderr or result.stdout).strip()[-2000:]}")


def _run_pg(where: HaPaths, args: Sequence[str], stdin: str | None = None) -> None:
    result = subprocess.run([str(PG_BIN / args[0]), *args[1:]], env=_env(where), input=stdin,
                            capture_output=True, text=True, timeout=120, check=False,
                            cwd=where.root, **_as_postgres())  # type: ignore[call-overload]
    if result.returncode != 0:
        raise StackError(f"`{args[0]}` failed: {(result.stderr or result.stdout).strip()}")


def _start_keeper(where: HaPaths, name: str, pgdata: Path) -> None:
    if _keeper_pid(where, name) is not None:
        return
    with where.log(name).open("ab") as out:
        # setsid --fork: a daemon of its own session and process group (``kill_node``
        # kills the group whole), not a child of whoever ran `nattero up`.
        subprocess.run(
            ["setsid", "--fork", "pg_autoctl", "run", "--pgdata", str(pgdata)],
            env=_env(where), cwd=where.root, stdin=subprocess.DEVNULL, stdout=out,
            stderr=out, check=True, timeout=30,
            **_as_postgres())  # type: ignore[call-overload]
    deadline = time.monotonic() + 30
    while _keeper_pid(where, name) is None:
        if time.monotonic() > deadline:
            raise StackError(f"pg_autoctl did not start for {name}; read {where.log(name)}")
        time.sleep(0.1)


def _keeper_pid(where: HaPaths, name: str) -> int | None:
    try:
        pid = int(where.pid(where.data(name)).read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) and b"pg_autoctl" in _cmdline(pid) else None


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child, not reaped yet) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _own(path: Path) -> None:
    if _is_root():
        entry = pwd.getpwnam("postgres")
        for item in (path, *path.rglob("*")):
            os.chown(item, entry.pw_uid, entry.pw_gid)


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    _own(path)


def _include(pgdata: Path, name: str) -> None:
    conf = pgdata / "postgresql.conf"
    line = f"include '{name}'\n"
    if line not in conf.read_text():
        with conf.open("a") as out:
            out.write(f"\n# Nattero (deploy/ha.py)\n{line}")


def _initdb(where: HaPaths, name: str) -> None:
    pgdata = where.node(name)
    _run_pg(where, ["initdb", "-D", str(pgdata), "-U", "postgres", "--auth-local=peer",
                    "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
    _write(pgdata / "nattero.conf",
           _NODE_CONF + f"unix_socket_directories = '{where.socket}'\n")
    _include(pgdata, "nattero.conf")
    _write(pgdata / "pg_hba.conf", _NODE_HBA)
    # Without root, everything runs as whoever runs `nattero up`: map them to postgres.
    _write(pgdata / "pg_ident.conf",
           "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n"
           "nattero    postgres         postgres\n"
           f"nattero    {pwd.getpwuid(os.geteuid()).pw_name}  postgres\n")


def _monitor_uri(settings: Settings) -> str:
    return (f"postgres://autoctl_node@127.0.0.1:{ports(settings)['monitor']}/{MONITOR_DB}"
            "?sslmode=disable")


def _monitor_answers(settings: Settings) -> bool:
    try:
        with psycopg.connect(_monitor_uri(settings), connect_timeout=2) as conn:
            ping(conn)
        return True
    except psycopg.Error:
        return False


def _registered(where: HaPaths, name: str) -> bool:
    return (where.node(name) / "PG_VERSION").exists() and (where.node(name) /
                                                          "postgresql-auto-failover.conf").exists()


def _synchronous(settings: Settings) -> bool:
    states = node_state(settings)
    return sorted(states.values()) == [("primary", "primary"), ("secondary", "secondary")]


def _bootstrap(settings: Settings, where: HaPaths, password: str) -> None:
    """The application role, its database's owner and TimescaleDB, on the primary (the
    secondary gets them by replication)."""
    name = primary(settings)
    assert name is not None
    port = ports(settings)[name]
    # The keeper may still be (re)starting the server it reported on.
    _wait(lambda: subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(where.socket),
                                  "-p", str(port)], check=False).returncode == 0,
          f"PostgreSQL of {name}", where, name)
    scripts = bootstrap_scripts(DB_ROLE, DB_NAME, password)
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(where.socket),
            "-p", str(port), "-U", "postgres"]
    _run_pg(where, [*psql, "-d", "postgres"], stdin=scripts.cluster)
    _run_pg(where, [*psql, "-d", DB_NAME], stdin=scripts.database)
    # The secondary's base backup starts with a spread checkpoint (tens of seconds of
    # pacing); one done now leaves it nothing to write.
    _run_pg(where, [*psql, "-d", "postgres", "-c", "CHECKPOINT"])


def _wait(ready: Callable[[], bool], what: str, where: HaPaths, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if time.monotonic() > deadline:
            raise StackError(f"{what} is not ready after {READY_TIMEOUT_S:.0f} s; read "
                             f"{where.log(name)}")
        time.sleep(0.3)
