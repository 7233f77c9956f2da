"""A TCP forwarder between a client under test and a real server, that a test can cut
(every open connection reset, new ones refused) and restore: a network outage, or a
database away during a failover, for exactly as long as the test wants."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from tests.support.api import free_port


class CuttableProxy:
    """Listens on 127.0.0.1:``port`` and forwards each connection to ``target``."""

    @classmethod
    def to_database(cls, database_url: str) -> CuttableProxy:
        """A proxy in front of the server of ``database_url``."""
        parts = urlsplit(database_url)
        return cls((parts.hostname or "127.0.0.1", parts.port or 5432))

    def url(self, database_url: str) -> str:
        """``database_url`` with its server replaced by this proxy."""
        parts = urlsplit(database_url)
        user, _, _ = parts.netloc.rpartition("@")
        here = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{user}@{here}" if user else here))

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        """Accept connections again."""
        listener = socket.create_server(("127.0.0.1", self.port))
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until ``restore``."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would leave the
            # socket listening until then.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                live = self._listener is listener  # not cut since this one was accepted
                if live:
                    self._open |= {client, server}
            if not live:
                client.close()
                server.close()
                return
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            self._open -= {source, sink}
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
