"""HAProxy in front of several API processes, for development and tests (issue 18 §2).

``deploy/haproxy/nattero.cfg`` is the configuration, for production too; ``render`` fills
in its addresses and ``Balancer`` runs Debian's ``haproxy`` with it in the foreground, as a
child process, with a stats socket to ask which API processes it sees up.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from string import Template

from core.errors import NatteroError

__all__ = ["Balancer", "BalancerError", "render"]

TEMPLATE = Path(__file__).resolve().parent / "haproxy" / "nattero.cfg"


class BalancerError(NatteroError):
    """HAProxy is missing or did not start."""


def render(backends: Sequence[tuple[str, int]], bind: str, stats_socket: Path) -> str:
    """The configuration with ``backends`` (host, port) as servers ``api1``, ``api2``, ..."""
    servers = "\n".join(f"    server api{n} {host}:{port} check"
                        for n, (host, port) in enumerate(backends, start=1))
    return Template(TEMPLATE.read_text()).substitute(
        bind=bind, stats_socket=str(stats_socket), servers=servers)


class Balancer:
    """``haproxy -f <config>`` as a child process; ``up()`` asks its stats socket."""

    def __init__(self, workdir: Path, backends: Sequence[tuple[str, int]], port: int) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise BalancerError("haproxy is not installed; run `make install` (Debian package "
                                "haproxy)")
        self._binary = binary
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self._socket = workdir / "haproxy.sock"
        self._config = workdir / "haproxy.cfg"
        self._log = workdir / "haproxy.log"
        self._config.write_text(render(backends, f"127.0.0.1:{port}", self._socket))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        check = subprocess.run([self._binary, "-c", "-q", "-f", str(self._config)],
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise BalancerError(f"haproxy refused its configuration: {check.stderr.strip()}")
        with self._log.open("ab") as out:
            self._process = subprocess.Popen([self._binary, "-db", "-f", str(self._config)],
                                             stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._socket.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise BalancerError(f"haproxy did not start; read {self._log}")
            time.sleep(0.05)

    def up(self) -> set[str]:
        """The servers HAProxy's health checks see up (``api1``, ``api2``, ...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(self._socket))
            conn.sendall(b"show stat\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        up: set[str] = set()
        for line in data.decode().splitlines():
            fields = line.split(",")
            if (len(fields) > 17 and fields[0] == "api" and fields[1].startswith("api")
                    and fields[17].startswith("UP")):
                up.add(fields[1])
        return up

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
