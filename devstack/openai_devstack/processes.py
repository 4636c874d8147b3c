"""Background processes of the test bed: start with a log file, wait for readiness, stop for sure.

Processes run in their own session (process group) so that stopping one also stops anything it
spawned. When the stack belongs to a test session (not ``devstack up``), each child also gets
``PR_SET_PDEATHSIG``: if the test runner dies, even by SIGKILL, the kernel stops its servers, so no
stray process outlives a failed run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A part of the stack did not become ready; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass
class ManagedProcess:
    """One server of the stack."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    die_with_parent: bool = True
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``probe`` until it returns True; fail early, with the log, if the process exits."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            code = self.exited()
            if code is not None:
                raise StartupError(f"{self.name} exited with {code} before {what}:\n{log_tail(self.log_path)}")
            with contextlib.suppress(Exception):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise StartupError(f"{self.name}: no {what} within {timeout:.0f}s:\n{log_tail(self.log_path)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        stop_process_group(self.popen.pid, timeout=timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (reaping the leader first if it is our child)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(pid: int, *, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL whatever is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not group_alive(pid):
                return
            time.sleep(0.05)
