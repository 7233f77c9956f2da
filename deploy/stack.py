"""The project's private local stack: PostgreSQL 15 + TimescaleDB and Mosquitto 2.

Everything lives under ``settings.state_dir`` (made absolute)::

    state_dir/stack.json                 StackInfo, mode 0600 (passwords: generated once)
    state_dir/pg/{data,socket}/          the cluster and its unix socket
    state_dir/pg/postgres.log
    state_dir/mosquitto/{mosquitto.conf,dynamic-security.json,data/,mosquitto.log,mosquitto.pid}
    state_dir/pgbackrest/, state_dir/broker-backups/   backups (``deploy.backup``)

Both services listen on 127.0.0.1 only, on ``settings.pg_port`` / ``settings.mqtt_port``.
This module never touches the system's own PostgreSQL or Mosquitto services, and never
deletes data: ``down`` and the outage helpers stop processes, nothing more.

When run as root, PostgreSQL runs as the ``postgres`` OS user and Mosquitto drops to the
``mosquitto`` OS user; their directories are chowned to them.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.errors import NatteroError
from core.settings import BrokerAccount, Settings, StackInfo
from deploy import backup
from ingest import cluster
from ingest.bootstrap import bootstrap_scripts
from ingest.health import ping
from provisioning.broker_accounts import BrokerAccountError, BrokerAccounts
from provisioning.certs import CertificateAuthority

__all__ = [
    "GATEWAY_TOPICS",
    "StackError",
    "down",
    "ensure_gateway_account",
    "kill_broker",
    "start_broker",
    "start_database",
    "status",
    "stop_broker",
    "stop_database",
    "up",
    "wait_promoted",
]

log = logging.getLogger(__name__)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_CTRL = "mosquitto_ctrl"
DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")

ADMIN_USERNAME = "nattero-admin"
GATEWAY_USERNAME = "nattero-gateway"
#: What the gateway account may subscribe to and receive (it may publish nothing).
GATEWAY_TOPICS = ("nattero/v1/#", "zigbee2mqtt/#", "application/#")

DB_NAME = "nattero"
DB_ROLE = "nattero"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class StackError(NatteroError, RuntimeError):
    """The local stack could not be started, found or stopped; the message says what to do."""


@dataclass(frozen=True, slots=True)
class _Paths:
    root: Path

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def pg(self) -> Path:
        return self.root / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg / "data"

    @property
    def pg_socket(self) -> Path:
        return self.pg / "socket"

    @property
    def pg_log(self) -> Path:
        return self.pg / "postgres.log"

    @property
    def pg_bootstrapped(self) -> Path:
        return self.pg / "bootstrapped"

    @property
    def mq(self) -> Path:
        return self.root / "mosquitto"

    @property
    def mq_conf(self) -> Path:
        return self.mq / "mosquitto.conf"

    @property
    def mq_dynsec(self) -> Path:
        return self.mq / "dynamic-security.json"

    @property
    def mq_data(self) -> Path:
        return self.mq / "data"

    @property
    def mq_log(self) -> Path:
        return self.mq / "mosquitto.log"

    @property
    def mq_pid(self) -> Path:
        return self.mq / "mosquitto.pid"

    @property
    def ca(self) -> Path:
        """The stack's certificate authority (``nattero up --tls``); readable by root only."""
        return self.root / "ca"

    @property
    def mq_tls(self) -> Path:
        """The broker's copy of its certificate, key and the CA certificate."""
        return self.mq / "tls"


def _paths(settings: Settings) -> _Paths:
    return _Paths(settings.state_dir.expanduser().resolve())


def _is_root() -> bool:
    return os.geteuid() == 0


# ---------------------------------------------------------------------------- public API


def up(settings: Settings, *, tls: bool = False, ha: bool = False) -> StackInfo:
    """Start, or find already running, the private PostgreSQL and Mosquitto.

    ``tls``: the broker also listens with TLS on 127.0.0.1:``settings.mqtt_tls_port``
    (default: the MQTT port + 1), with a certificate for ``localhost`` and ``127.0.0.1``
    issued by the stack's own CA (``state_dir/ca/ca.pem``; clients set
    ``NATTERO_MQTT_TLS_CA_FILE`` to it). Once on, it stays on for this state dir.

    ``ha``: instead of one PostgreSQL, a replicated pair with automatic failover and its
    monitor (``deploy.ha``); the database URL names both nodes. Once on, it stays on.

    Returns the same ``StackInfo`` on every call for the same state dir and ports (passwords
    are generated on the first call and kept in ``stack.json``). Returns only once the
    database accepts the ``nattero`` role's password and the broker accepts the gateway
    account. Cheap when both are already running. Raises ``StackError``.
    """
    _check_installed()
    paths = _paths(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)  # the postgres and mosquitto users must traverse it
    info = _load_or_create_info(settings, paths, tls, ha)

    if info.ha:
        from deploy import ha as replicated

        replicated.up(settings, _password_from_url(info.database_url))
    else:
        _ensure_database(settings, paths, info)
    if backup.archiving_enabled() and not info.ha:
        try:
            backup.ensure_stanza(settings)
        except backup.BackupError as exc:
            # The stack still serves; WAL waits in pg_wal until the stanza exists.
            log.warning("WAL archiving is not ready (%s); `nattero backup` will retry", exc)
    ensure_brokers(settings, info)
    return info


def ensure_brokers(settings: Settings, info: StackInfo) -> None:
    """Start (or find running) the stack's broker and, after `up --ha`, the second central
    broker and the site hub (``deploy.brokers``), with their accounts. ``info`` must be the
    stack file of ``settings.state_dir``."""
    paths = _paths(settings)
    _ensure_broker(settings, paths, info)
    if info.more_broker_ports or info.hub_port is not None:
        from deploy import brokers

        brokers.ensure(paths.root, info)


def down(settings: Settings) -> None:
    """Stop both services cleanly if they run. Idempotent; keeps all data."""
    info = _read_info(_paths(settings))
    if info is not None:
        from deploy import brokers

        brokers.stop(_paths(settings).root, info)  # the hub first: it forwards to the others
    stop_broker(settings)
    stop_database(settings)
    if info is not None and info.ha:
        from deploy import ha as replicated

        replicated.down(settings)


def stop_database(settings: Settings) -> None:
    """Stop PostgreSQL (``pg_ctl stop -m fast``) and wait. No-op if it is not running."""
    paths = _paths(settings)
    if not _pg_running(paths):
        return
    result = _run_pg(["pg_ctl", "-D", str(paths.pg_data), "-m", "fast", "-w",
                      "-t", str(int(STOP_TIMEOUT_S)), "stop"], check=False)
    if result.returncode != 0 and _pg_running(paths):
        raise StackError(
            f"PostgreSQL did not stop: {result.stderr.strip()}; read {paths.pg_log}")


def start_database(settings: Settings) -> None:
    """Start an already initialised PostgreSQL and wait until it accepts connections.

    No-op (apart from the wait) if it is running. Raises ``StackError`` if ``up`` was never
    run for this state dir.
    """
    paths = _paths(settings)
    info = _require_info(paths)
    if not paths.pg_bootstrapped.exists():
        raise StackError(f"no database cluster in {paths.pg_data}; run `nattero up` first")
    _write_pg_conf(settings, paths)
    _pg_start(paths)
    _wait_database(paths, info)


def stop_broker(settings: Settings) -> None:
    """Stop Mosquitto with SIGTERM (it saves its persistence file) and wait. Idempotent."""
    _signal_broker(_paths(settings), signal.SIGTERM)


def kill_broker(settings: Settings) -> None:
    """SIGKILL Mosquitto, as a crash would, and wait until it is gone. Idempotent.

    Mosquitto's persistence is a snapshot written every ``autosave_interval`` (2 s) and on
    a clean stop: what changed in the last 2 s before a SIGKILL is lost.
    """
    _signal_broker(_paths(settings), signal.SIGKILL)


def start_broker(settings: Settings) -> None:
    """Start an already initialised Mosquitto and wait until the gateway can connect."""
    paths = _paths(settings)
    info = _require_info(paths)
    if not paths.mq_dynsec.exists():
        raise StackError(f"no broker state in {paths.mq}; run `nattero up` first")
    _write_mosquitto_conf(settings, paths, info)
    _mosquitto_start(paths)
    _wait_broker(paths, info)


def status(settings: Settings) -> dict[str, object]:
    """What is running: ``{"state_dir", "database": {...}, "broker": {...}}``.

    Each service dict has ``running`` (bool), ``pid`` (int | None), ``port`` and ``log``.
    """
    paths = _paths(settings)
    info = _read_info(paths)
    return {
        "state_dir": str(paths.root),
        "initialised": info is not None,
        "database": {
            "running": _pg_running(paths),
            "pid": _pg_pid(paths),
            "port": settings.pg_port,
            "log": str(paths.pg_log),
        },
        **({"database_nodes": _ha_nodes(settings)} if info is not None and info.ha else {}),
        "broker": {
            "running": _mosquitto_pid(paths) is not None,
            "pid": _mosquitto_pid(paths),
            "port": settings.mqtt_port,
            "log": str(paths.mq_log),
        },
        **({"more_brokers": _more_brokers(paths, info)}
           if info is not None and (info.more_broker_ports or info.hub_port) else {}),
    }


def _more_brokers(paths: _Paths, info: StackInfo) -> dict[str, dict[str, object]]:
    from deploy import brokers

    return brokers.status(paths.root, info)


# ---------------------------------------------------------------------------- stack file


def _check_installed() -> None:
    for binary in (PG_BIN / "initdb", PG_BIN / "pg_ctl", MOSQUITTO, DYNSEC_PLUGIN):
        if not binary.exists():
            raise StackError(
                f"{binary} is missing: run `bash deploy/install.sh` (or `make install`)")
    if shutil.which(MOSQUITTO_CTRL) is None:
        raise StackError("mosquitto_ctrl is missing: run `bash deploy/install.sh`")
    sharedir = subprocess.run([str(PG_BIN / "pg_config"), "--sharedir"], capture_output=True,
                              text=True, check=True).stdout.strip()
    if not (Path(sharedir) / "extension" / "timescaledb.control").exists():
        raise StackError("TimescaleDB is not installed for PostgreSQL 15: "
                         "run `bash deploy/install.sh` (or `make install`)")


def _read_info(paths: _Paths) -> StackInfo | None:
    try:
        return StackInfo.model_validate_json(paths.stack_file.read_text())
    except FileNotFoundError:
        return None


def _require_info(paths: _Paths) -> StackInfo:
    info = _read_info(paths)
    if info is None:
        raise StackError(f"no local stack in {paths.root}; run `nattero up` first")
    return info


def _load_or_create_info(settings: Settings, paths: _Paths, tls: bool = False,
                         ha: bool = False) -> StackInfo:
    old = _read_info(paths)
    if old is None:
        # Passwords are kept only in stack.json: without it, existing state is unusable.
        for leftover in (paths.pg_data, paths.mq_dynsec):
            if leftover.exists():
                raise StackError(
                    f"{leftover} exists but {paths.stack_file} with its passwords is missing; "
                    f"stop the stack (`nattero down`) and remove {paths.root} to start afresh")
        db_password = secrets.token_urlsafe(24)
        admin = BrokerAccount(username=ADMIN_USERNAME, password=secrets.token_urlsafe(24))
        gateway = BrokerAccount(username=GATEWAY_USERNAME, password=secrets.token_urlsafe(24))
    else:
        if ha and not old.ha:
            raise StackError(
                f"the stack in {paths.root} has a single database; a replicated one starts "
                "empty: give `nattero up --ha` a new NATTERO_STATE_DIR (and ports)")
        old_pg_port = (_ha_port_base(old) if old.ha else
                       psycopg.conninfo.conninfo_to_dict(old.database_url).get("port"))
        moved = (str(old_pg_port) != str(settings.pg_port) and _pg_running(paths)) or (
            old.mqtt_port != settings.mqtt_port and _mosquitto_pid(paths) is not None)
        if moved:
            raise StackError(
                f"the stack in {paths.root} runs on ports {old_pg_port}/{old.mqtt_port}, not "
                f"{settings.pg_port}/{settings.mqtt_port}; stop it first with `nattero down` "
                "using the old NATTERO_PG_PORT/NATTERO_MQTT_PORT")
        db_password = _password_from_url(old.database_url)
        admin, gateway = old.broker_admin, old.gateway
    # Random, never the guessable default of old: a stack file without one gets it here.
    gateway_client_id = (old.gateway_client_id if old is not None and old.gateway_client_id
                         else f"nattero-gateway-{secrets.token_hex(16)}")
    tls_port = old.mqtt_tls_port if old is not None else None
    if settings.mqtt_tls_port is not None and (tls or tls_port is not None):
        tls_port = settings.mqtt_tls_port
    elif tls and tls_port is None:
        tls_port = settings.mqtt_port + 1
    if tls_port is not None and tls_port in (settings.mqtt_port, settings.pg_port):
        raise StackError(f"the broker's TLS port {tls_port} is taken by the stack's other "
                         "services; set NATTERO_MQTT_TLS_PORT to a free port")
    ha = ha or (old is not None and old.ha)
    more_broker_ports: list[int] = []
    hub_port: int | None = None
    hub_account: BrokerAccount | None = None
    if ha:
        from deploy import brokers
        from deploy import ha as replicated

        database_url = replicated.database_url(settings, db_password)
        # A second central broker and a site hub bridged to both (``deploy.brokers``).
        more_broker_ports = [settings.mqtt_port + brokers.CENTRAL_PORT_OFFSET]
        hub_port = settings.mqtt_port + brokers.HUB_PORT_OFFSET
        hub_account = (old.hub_account if old is not None and old.hub_account is not None
                       else BrokerAccount(username=f"hub-{secrets.token_hex(4)}",
                                          password=secrets.token_urlsafe(24)))
    else:
        database_url = f"postgresql://{DB_ROLE}:{db_password}@127.0.0.1:{settings.pg_port}/{DB_NAME}"
    info = StackInfo(
        database_url=database_url,
        mqtt_host="127.0.0.1",
        mqtt_port=settings.mqtt_port,
        broker_admin=admin,
        gateway=gateway,
        gateway_client_id=gateway_client_id,
        mqtt_tls_port=tls_port,
        tls_ca_file=str(paths.ca / "ca.pem") if tls_port is not None else None,
        ha=ha,
        more_broker_ports=more_broker_ports,
        hub_port=hub_port,
        hub_account=hub_account,
    )
    if info != old:
        _write_private(paths.stack_file, info.model_dump_json(indent=2) + "\n")
    return info


def _ha_nodes(settings: Settings) -> dict[str, str]:
    """Each node's state as the monitor reports it (``primary``, ``secondary``, ...)."""
    from deploy import ha as replicated

    return {name: state[0] for name, state in sorted(replicated.node_state(settings).items())}


def _ha_port_base(info: StackInfo) -> int:
    """The stack port an HA stack's URL was made for (its first node's port less its offset)."""
    from deploy import ha as replicated

    first = str(psycopg.conninfo.conninfo_to_dict(info.database_url).get("port")).split(",")[0]
    return int(first) - replicated.MONITOR_PORT_OFFSET - 1


def _password_from_url(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url).get("password") or "")


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _chown_tree(path: Path, user: str) -> None:
    if not _is_root():
        return
    entry = pwd.getpwnam(user)
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid)


def _run(cmd: Sequence[str], *, check: bool = True,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, input=stdin,
                            timeout=120, check=False)
    if check and result.returncode != 0:
        raise StackError(f"`{' '.join(cmd)}` failed ({result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()}")
    return result


# ---------------------------------------------------------------------------- PostgreSQL


def _run_pg(args: Sequence[str], *, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, as the ``postgres`` OS user when we are root (initdb insists)."""
    cmd = [str(PG_BIN / args[0]), *args[1:]]
    if _is_root():
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return _run(cmd, check=check, stdin=stdin)


def _pg_pid(paths: _Paths) -> int | None:
    try:
        pid = int((paths.pg_data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid, "postgres", str(paths.pg_data)) else None


def _pg_running(paths: _Paths) -> bool:
    return _pg_pid(paths) is not None


def _ensure_database(settings: Settings, paths: _Paths, info: StackInfo) -> None:
    if len(str(paths.pg_socket / f".s.PGSQL.{settings.pg_port}")) > 100:
        raise StackError(f"state dir {paths.root} is too long for a unix socket path; "
                         "set NATTERO_STATE_DIR to a shorter path")
    if not (paths.pg_data / "PG_VERSION").exists():
        _initdb(paths)
    _write_pg_conf(settings, paths)
    if not _pg_running(paths):
        _pg_start(paths)
    if not paths.pg_bootstrapped.exists():
        _bootstrap_database(paths, settings, info)
    _wait_database(paths, info)


def _initdb(paths: _Paths) -> None:
    paths.pg_data.mkdir(parents=True, exist_ok=True)
    paths.pg_socket.mkdir(parents=True, exist_ok=True)
    paths.pg_data.chmod(0o700)
    _chown_tree(paths.pg, "postgres")
    _run_pg(["initdb", "-D", str(paths.pg_data), "-U", "postgres", "--encoding=UTF8",
             "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256"])
    with (paths.pg_data / "postgresql.conf").open("a") as conf:
        conf.write("\n# Nattero's settings (rewritten by deploy/stack.py on every `up`)\n"
                   "include 'nattero.conf'\n")
    # Only the OS superuser may use peer auth on the socket; everyone else gives a password.
    (paths.pg_data / "pg_hba.conf").write_text(
        "# TYPE  DATABASE  USER      ADDRESS        METHOD\n"
        "local   all       postgres                 peer map=nattero\n"
        "local   all       all                      scram-sha-256\n"
        "host    all       all       127.0.0.1/32   scram-sha-256\n")
    # Without root, initdb and psql run as whoever runs `nattero up`: map them to postgres.
    (paths.pg_data / "pg_ident.conf").write_text(
        "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n"
        "nattero    postgres         postgres\n"
        f"nattero    {pwd.getpwuid(os.geteuid()).pw_name}  postgres\n")
    _chown_tree(paths.pg, "postgres")


def _write_pg_conf(settings: Settings, paths: _Paths) -> None:
    text = (
        f"listen_addresses = '127.0.0.1'\n"
        f"port = {settings.pg_port}\n"
        f"unix_socket_directories = '{paths.pg_socket}'\n"
        "shared_preload_libraries = 'timescaledb'\n"
        "timescaledb.telemetry_level = off\n"
        "password_encryption = 'scram-sha-256'\n"
        # A leased worker holds three connections per site it owns (its writer, its
        # rules, its device registry), each API process a pool: 400 ran out at about 130
        # leased sites, and bench/scale.py's 200 sites on three workers need ~620.
        "max_connections = 1000\n"
        "shared_buffers = 256MB\n"
        "fsync = on\n"
        "logging_collector = off\n"
        "log_timezone = 'UTC'\n"
        "timezone = 'UTC'\n"
        + _archive_conf(settings)
    )
    conf = paths.pg_data / "nattero.conf"
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
        if _is_root():
            entry = pwd.getpwnam("postgres")
            os.chown(conf, entry.pw_uid, entry.pw_gid)


def _archive_conf(settings: Settings) -> str:
    """WAL archiving into the pgBackRest repository (``deploy.backup``), when installed."""
    if not backup.archiving_enabled():
        return ""
    # archive_mode needs a restart; archive_timeout bounds what a lost disk takes with it.
    return ("wal_level = replica\n"
            "archive_mode = on\n"
            f"archive_command = '{backup.archive_command(settings)}'\n"
            "archive_timeout = 60\n")


def wait_promoted(settings: Settings) -> None:
    """Wait until a restored cluster has replayed to its target and accepts writes."""
    paths = _paths(settings)
    info = _require_info(paths)
    deadline = time.monotonic() + READY_TIMEOUT_S * 5
    while True:
        with psycopg.connect(info.database_url, connect_timeout=5) as conn:
            recovering = cluster.in_recovery(conn)
        if not recovering:
            return
        if time.monotonic() > deadline:
            raise StackError(f"PostgreSQL is still recovering; read {paths.pg_log}")
        time.sleep(0.2)


def _pg_start(paths: _Paths) -> None:
    if _pg_running(paths):
        return
    paths.pg_socket.mkdir(parents=True, exist_ok=True)
    _chown_tree(paths.pg_socket, "postgres")
    result = _run_pg(["pg_ctl", "-D", str(paths.pg_data), "-l", str(paths.pg_log), "-w",
                      "-t", str(int(READY_TIMEOUT_S)), "start"], check=False)
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start ({result.stdout.strip()}); "
                         f"read {paths.pg_log}")


def _bootstrap_database(paths: _Paths, settings: Settings, info: StackInfo) -> None:
    scripts = bootstrap_scripts(DB_ROLE, DB_NAME, _password_from_url(info.database_url))
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(paths.pg_socket),
            "-p", str(settings.pg_port), "-U", "postgres"]
    _run_pg([*psql, "-d", "postgres"], stdin=scripts.cluster)
    _run_pg([*psql, "-d", DB_NAME], stdin=scripts.database)
    paths.pg_bootstrapped.write_text("role, database and timescaledb extension created\n")


def _wait_database(paths: _Paths, info: StackInfo) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(info.database_url, connect_timeout=5) as conn:
                ping(conn)
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise StackError(f"PostgreSQL on {info.database_url.rsplit('@', 1)[-1]} does "
                                 f"not accept connections ({exc}); read {paths.pg_log}") from exc
            time.sleep(0.2)


# ---------------------------------------------------------------------------- Mosquitto


def _mosquitto_user() -> str | None:
    return "mosquitto" if _is_root() else None


def _write_mosquitto_conf(settings: Settings, paths: _Paths, info: StackInfo) -> bool:
    """Write the broker's configuration; True if it changed (a running broker must restart:
    limits such as ``max_packet_size`` are read only at start)."""
    text = mosquitto_conf(
        settings.mqtt_port, dynsec=paths.mq_dynsec, data=paths.mq_data, log=paths.mq_log,
        pid=paths.mq_pid, user=_mosquitto_user(),
        extra=_tls_listener(paths, info.mqtt_tls_port) if info.mqtt_tls_port is not None else "")
    if not paths.mq_conf.exists() or paths.mq_conf.read_text() != text:
        paths.mq_conf.write_text(text)
        return True
    return False


def mosquitto_conf(port: int, *, dynsec: Path, data: Path, log: Path, pid: Path,
                   user: str | None, save_every_change: bool = False, extra: str = "") -> str:
    """A Nattero broker's configuration: one loopback listener, accounts from the
    dynamic-security plugin, persistence. ``save_every_change``: write the persistence file
    after every change instead of every 2 s (a site hub, whose acknowledged messages must
    survive a crash while it forwards them; it carries one site's few messages a second)."""
    return (
        "# Written by deploy/stack.py on every `nattero up`; edits are overwritten.\n"
        "per_listener_settings false\n"
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"plugin {DYNSEC_PLUGIN}\n"
        f"plugin_opt_config_file {dynsec}\n"
        "persistence true\n"
        f"persistence_location {data}\n"
        + ("autosave_on_changes true\nautosave_interval 1\n" if save_every_change else
           # A snapshot every 2 s: a broker crash loses at most the last 2 s of queue changes.
           "autosave_interval 2\n")
        + "max_queued_messages 2000000\n"
        "max_queued_bytes 0\n"
        # Unacknowledged messages sent to one client at a time (MQTT 3.1.1 clients such as
        # the gateway; MQTT 5 clients lower it with their Receive Maximum). It bounds what a
        # gateway holds in memory while the database is away; the rest waits in the queue.
        "max_inflight_messages 2000\n"
        # Sessions of gateways that never come back are dropped after two weeks.
        "persistent_client_expiration 14d\n"
        # One limit for every client (Mosquitto sets it globally, not per listener): a native
        # event is at most 4 KiB (the gateway dead-letters more), but bridges publish more
        # (ChirpStack uplinks heard by many gateways, Zigbee2MQTT's retained bridge/devices).
        # A bigger packet disconnects its client and is neither stored nor retained.
        "max_packet_size 1048576\n"
        "set_tcp_nodelay true\n"
        f"log_dest file {log}\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
        f"pid_file {pid}\n"
        + (f"user {user}\n" if user else "")
        + extra
    )


def _tls_listener(paths: _Paths, port: int) -> str:
    """A second listener, TLS 1.2 or later with the stack CA's certificate for the broker.
    The same accounts apply (``per_listener_settings false``); client certificates are not
    asked for here (a broker that requires them: ``docs/operations.md``, *TLS*)."""
    return (
        f"listener {port} 127.0.0.1\n"
        f"cafile {paths.mq_tls / 'ca.pem'}\n"
        f"certfile {paths.mq_tls / 'broker.pem'}\n"
        f"keyfile {paths.mq_tls / 'broker.key'}\n"
        "tls_version tlsv1.2\n"
    )


def _issue_broker_certificate(paths: _Paths) -> None:
    """The stack's CA (made once) and the broker's certificate, copied where the broker
    (perhaps another OS user) reads them; the CA's key stays in ``paths.ca``."""
    ca = CertificateAuthority.open_or_create(paths.ca, "Nattero local stack")
    paths.ca.chmod(0o700)
    if not (paths.ca / "broker.pem").exists():
        ca.issue_server("broker", ["localhost", "127.0.0.1"])
    paths.mq_tls.mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "broker.pem", "broker.key"):
        target = paths.mq_tls / name
        data = (paths.ca / name).read_bytes()
        if not target.exists() or target.read_bytes() != data:
            _write_private(target, data.decode())


def _mosquitto_pid(paths: _Paths) -> int | None:
    try:
        pid = int(paths.mq_pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid, "mosquitto", str(paths.mq_conf)) else None


def _alive(pid: int, *needles: str) -> bool:
    """True if ``pid`` runs and its command line holds every needle (guards pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie has exited
        return False
    return all(n in cmdline for n in needles)


def _ensure_broker(settings: Settings, paths: _Paths, info: StackInfo) -> None:
    paths.mq_data.mkdir(parents=True, exist_ok=True)
    paths.mq.chmod(0o700)
    fresh = not paths.mq_dynsec.exists()
    if fresh:
        _run([MOSQUITTO_CTRL, "dynsec", "init", str(paths.mq_dynsec),
              info.broker_admin.username, info.broker_admin.password])
        paths.mq_dynsec.chmod(0o600)
    if info.mqtt_tls_port is not None:
        _issue_broker_certificate(paths)
    if _write_mosquitto_conf(settings, paths, info) and _mosquitto_pid(paths) is not None:
        # A broker started with an older configuration keeps its old limits until it
        # restarts; SIGTERM saves its persistence, so queued sessions survive the restart.
        _signal_broker(paths, signal.SIGTERM)
    user = _mosquitto_user()
    if user:
        _chown_tree(paths.mq, user)
    _mosquitto_start(paths)
    _ensure_gateway_account(paths, info)
    _wait_broker(paths, info)


def _mosquitto_start(paths: _Paths) -> None:
    if _mosquitto_pid(paths) is not None:
        return
    user = _mosquitto_user()
    if user:
        _chown_tree(paths.mq, user)
    result = _run([str(MOSQUITTO), "-c", str(paths.mq_conf), "-d"], check=False)
    if result.returncode != 0:
        raise StackError(f"Mosquitto did not start ({(result.stderr or result.stdout).strip()}); "
                         f"read {paths.mq_log}")
    deadline = time.monotonic() + 10
    while _mosquitto_pid(paths) is None:
        if time.monotonic() > deadline:
            raise StackError(f"Mosquitto did not start; read {paths.mq_log}")
        time.sleep(0.05)


def _ensure_gateway_account(paths: _Paths, info: StackInfo) -> None:
    try:
        ensure_gateway_account(info.mqtt_host, info.mqtt_port, info.broker_admin, info.gateway)
    except BrokerAccountError as exc:
        raise StackError(f"cannot provision the gateway account on Mosquitto "
                         f"({exc}); read {paths.mq_log}") from exc


def ensure_gateway_account(host: str, port: int, admin: BrokerAccount, gateway: BrokerAccount,
                           *, tls: ssl.SSLContext | None = None,
                           timeout: float = READY_TIMEOUT_S) -> bool:
    """Create the gateway's broker account (subscribe/receive ``GATEWAY_TOPICS``, publish
    nothing) through the dynamic-security plugin unless it exists; True if it was created.
    Retries while the broker starts; raises ``BrokerAccountError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with BrokerAccounts(host, port, admin, tls=tls) as accounts:
                if accounts.account_exists(gateway.username):
                    return False
                accounts.create_gateway_account(gateway.username, gateway.password,
                                                list(GATEWAY_TOPICS))
                return True
        except BrokerAccountError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _wait_broker(paths: _Paths, info: StackInfo) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        code = _try_mqtt_connect(info.mqtt_host, info.mqtt_port, info.gateway)
        if code == 0:
            return
        last = f"CONNACK reason code {code}" if code is not None else "no CONNACK"
        time.sleep(0.2)
    raise StackError(f"Mosquitto on {info.mqtt_host}:{info.mqtt_port} does not accept the "
                     f"gateway account ({last}); read {paths.mq_log}")


def _try_mqtt_connect(host: str, port: int, account: BrokerAccount) -> int | None:
    """The CONNACK reason code for ``account`` (0 = accepted), or None if nothing answered."""
    # Own client id and a clean start: never touch the real gateway's persistent session.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"nattero-up-{uuid.uuid4().hex}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(account.username, account.password)
    codes: list[int] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                   _p: Properties | None) -> None:
        codes.append(reason.value)

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10, clean_start=True)
    except OSError:
        return None
    deadline = time.monotonic() + 5
    while not codes and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.disconnect()
    return codes[0] if codes else None


def _signal_broker(paths: _Paths, sig: signal.Signals) -> None:
    pid = _mosquitto_pid(paths)
    if pid is None:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid, "mosquitto"):
        if time.monotonic() > deadline:
            raise StackError(f"Mosquitto (pid {pid}) did not exit after {sig.name}; "
                             f"read {paths.mq_log}")
        time.sleep(0.05)
    if sig == signal.SIGKILL:
        paths.mq_pid.unlink(missing_ok=True)
