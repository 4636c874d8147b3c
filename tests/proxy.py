"""A TCP proxy on loopback that a test can cut and restore, to make a server unreachable on demand.

The proxy runs its own asyncio loop in a daemon thread. While it is cut it still accepts
connections but closes each one at once without a byte (a reset, as a dead load balancer gives),
counting them: ``refused`` is the positive signal that the client really tried while the server was
unreachable. Established connections are aborted when the cut starts, so a kept-alive client does not
slip through.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream`` (``host:port`` or a URL) until :meth:`cut`."""

    upstream: str
    port: int = 0
    refused: int = 0
    forwarded: int = 0
    _cut: bool = False
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _target(self) -> tuple[str, int]:
        parts = urlsplit(self.upstream if "://" in self.upstream else f"tcp://{self.upstream}")
        assert parts.hostname is not None, f"no host in {self.upstream!r}"
        assert parts.port is not None, f"no port in {self.upstream!r}"
        return parts.hostname, parts.port

    def start(self) -> TcpProxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            self.port = listener.getsockname()[1]
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, sock=listener))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="tcp-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise AssertionError("the TCP proxy did not start")
        return self

    def cut(self) -> None:
        """From now on every connection is reset; open ones are aborted."""
        with self._lock:
            self._cut = True
        self._call(self._abort_all)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._abort_all)
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None

    def _call(self, fn: object) -> None:
        assert self._loop is not None
        done = threading.Event()

        def wrapped() -> None:
            try:
                fn()  # type: ignore[operator]
            finally:
                done.set()

        self._loop.call_soon_threadsafe(wrapped)
        done.wait(10)

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            if transport is not None:
                transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            cut = self._cut
            if cut:
                self.refused += 1
            else:
                self.forwarded += 1
        if cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target())
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if self._cut:
                    dst.transport.abort()
                else:
                    dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers.discard(writer)
            self._writers.discard(up_writer)
