"""Running the emulator: the blocking ``serve`` behind ``openai-emulator``, an async
context manager for in-process tests, and a threaded variant for synchronous tests.

With a state file, the whole organisation (including key values, so minted keys keep working)
is loaded at start and saved shortly after each change and at shutdown, atomically and with mode
0600, so a demo survives a restart. Key values are never logged or printed; the generated admin key
is printed redacted only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .app import build_app
from .clock import Clock
from .context import EmulatorContext
from .keys import new_admin_key, redact
from .state import EmulatorState

log = logging.getLogger("openai_emulator")
SAVE_DELAY = 0.2


def load_state(path: Path, clock: Clock, admin_key: str | None) -> EmulatorState:
    """The saved organisation, or a fresh one; an explicit ``admin_key`` wins over the saved one."""
    if path.exists():
        data = json.loads(path.read_text())
        return EmulatorState.from_json(data, clock, admin_key or data.get("admin_key") or new_admin_key())
    return EmulatorState(clock, admin_key or new_admin_key())


def save_state(path: Path, state: EmulatorState) -> None:
    data = state.to_json() | {"admin_key": state.admin_key}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


class EmulatorServer:
    """``async with EmulatorServer(admin_key=...) as emu:`` → ``emu.base_url`` is ``http://HOST:PORT/v1``.

    ``emu.state`` is the live domain model; read it from the same event loop only.
    """

    def __init__(
        self,
        *,
        admin_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.state_file = state_file
        self.clock = Clock()
        state = (
            load_state(state_file, self.clock, admin_key)
            if state_file is not None
            else EmulatorState(self.clock, admin_key or new_admin_key())
        )
        self.ctx = EmulatorContext(state=state, clock=self.clock)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._saver: asyncio.Task[None] | None = None

    @property
    def state(self) -> EmulatorState:
        return self.ctx.state

    @property
    def admin_key(self) -> str:
        return self.ctx.state.admin_key

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def call_count(self, method: str, route: str, status: int | None = None, kind: str = "admin") -> int:
        """How many calls hit ``route`` (a template, e.g. ``/v1/organization/projects/{project_id}``)."""
        return sum(
            n
            for (k, m, r, s), n in self.ctx.calls.items()
            if k == kind and m == method.upper() and r == route and (status is None or s == status)
        )

    async def start(self) -> None:
        if self.state_file is not None:
            dirty = asyncio.Event()
            self.ctx.on_change = dirty.set
            self._saver = asyncio.create_task(self._save_loop(dirty))
        self._runner = web.AppRunner(build_app(self.ctx), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        if self.state_file is not None:
            save_state(self.state_file, self.state)

    async def _save_loop(self, dirty: asyncio.Event) -> None:
        """Coalesce bursts of changes into one write every ``SAVE_DELAY`` seconds at most."""
        assert self.state_file is not None
        while True:
            await dirty.wait()
            await asyncio.sleep(SAVE_DELAY)
            dirty.clear()
            try:
                save_state(self.state_file, self.state)
            except OSError as exc:
                log.error("could not save emulator state to %s: %s", self.state_file, exc)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class ThreadedEmulator:
    """The emulator on its own event loop in a daemon thread, for synchronous tests.

    ``with ThreadedEmulator(admin_key=...) as emu:`` — use ``emu.base_url`` and the control API
    over HTTP; do not touch ``emu.server.state`` from the test thread while requests are in flight.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-emulator", daemon=True)
        self.server: EmulatorServer | None = None

    def start(self) -> None:
        self._thread.start()

        async def make() -> EmulatorServer:
            server = EmulatorServer(**self._kwargs)
            await server.start()
            return server

        self.server = asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=30)
            self.server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def _server(self) -> EmulatorServer:
        assert self.server is not None, "start() first"
        return self.server

    @property
    def base_url(self) -> str:
        return self._server().base_url

    @property
    def root_url(self) -> str:
        return self._server().root_url

    @property
    def admin_key(self) -> str:
        return self._server().admin_key

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(host: str, port: int, state_file: Path | None, admin_key: str | None) -> None:
    """Run until SIGINT/SIGTERM. Prints ``emulator listening on http://HOST:PORT`` once bound."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def main() -> None:
        server = EmulatorServer(admin_key=admin_key, host=host, port=port, state_file=state_file)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if admin_key is None:
            print(f"admin key: {redact(server.admin_key)}", file=sys.stderr, flush=True)  # noqa: T201
        print(f"emulator listening on http://{host}:{server.port}", flush=True)  # noqa: T201
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())
