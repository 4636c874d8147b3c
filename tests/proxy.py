"""A TCP proxy on loopback that tests can cut and restore, to make a dependency (OpenBao) unreachable
from the operator without stopping the dependency itself.

``TcpProxy(upstream_host, upstream_port)`` listens on a free loopback port and forwards every
connection. ``cut("reset")`` closes every open connection and answers new ones with a reset (the
port stays bound, so restoring never races another process for it); ``cut("blackhole")`` accepts new
connections and never answers (the client's own timeout is what ends them); ``restore()`` forwards
again. ``connections`` and ``refused`` count what the proxy saw, so a test can show the cut was felt.

``TcpProxy.to(url)`` builds one for the host and port of a URL such as ``VAULT_ADDR``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

Mode = Literal["up", "reset", "blackhole"]


@dataclass
class TcpProxy:
    upstream_host: str
    upstream_port: int
    mode: Mode = "up"
    connections: int = 0
    refused: int = 0
    _listener: socket.socket | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _open: set[socket.socket] = field(default_factory=set, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    @classmethod
    def to(cls, url: str) -> TcpProxy:
        """A proxy for the host and port of ``url`` (``http://127.0.0.1:8200`` or ``host:port``)."""
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        assert parts.hostname is not None, f"no host in {url!r}"
        assert parts.port is not None, f"no port in {url!r}"
        return cls(parts.hostname, parts.port)

    @property
    def port(self) -> int:
        assert self._listener is not None, "not started"
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def cut(self, mode: Literal["reset", "blackhole"] = "reset") -> None:
        """Make the upstream unreachable: every open connection is reset, new ones fail as ``mode`` says."""
        with self._lock:
            self.mode = mode
            victims = list(self._open)
            self._open.clear()
        for sock in victims:
            _reset(sock)

    def restore(self) -> None:
        with self._lock:
            self.mode = "up"
            held = list(self._open)  # blackholed connections: the client gave up on them or will
            self._open.clear()
        for sock in held:
            _reset(sock)

    def stop(self) -> None:
        self._stop.set()
        self.cut("reset")
        if self._listener is not None:
            self._listener.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                mode = self.mode
                if mode == "blackhole":
                    self.refused += 1
                    self._open.add(client)
                    continue
            if mode == "reset":
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection((self.upstream_host, self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self.mode != "up":  # cut while connecting
                    self.refused += 1
                    _reset(client)
                    _reset(upstream)
                    continue
                self.connections += 1
                self._open.update((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream), name="tcp-proxy-pump", daemon=True)
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                with self._lock:
                    if client not in self._open:
                        return
                readable, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dead host's firewall or a crashed peer would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
