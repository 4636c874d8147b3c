"""Handles on the processes the operator tests drive: the emulator and ``openai-operator run``."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openai_devstack.processes import ManagedProcess, free_port

SESSION_FINGERPRINT_KEY = secrets.token_urlsafe(48)
"""The fingerprint HMAC key of every operator this test process starts: random per session, like the
chart's per-install Secret, and the same across restarts (another key would make every destination
look drifted). An ``OperatorProcess`` env that sets ``OPENAI_OPERATOR_FINGERPRINT_KEY`` wins."""


@contextmanager
def running_emulator(folder: Path) -> Iterator[Emulator]:
    """The emulator as a subprocess with its state in ``folder``, stopped on exit."""
    from openai_devstack.stack import Stack

    stack = Stack(folder, with_vault=False, with_emulator=True)
    try:
        stack.state_dir = stack.state_dir.resolve()
        base_url, admin_key = stack.start_emulator()
        yield Emulator(base_url, admin_key)
    finally:
        stack.stop()


@dataclass
class Emulator:
    base_url: str
    admin_key: str = field(repr=False)

    @property
    def control(self) -> str:
        return self.base_url.removesuffix("/v1") + "/_emulator"

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.control}/state", timeout=10).json()  # type: ignore[no-any-return]

    def project(self, project_id: str) -> dict[str, Any]:
        for project in self.state()["projects"]:
            if project["id"] == project_id:
                return project  # type: ignore[no-any-return]
        raise AssertionError(f"emulator has no project {project_id}")

    def admin_calls(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.control}/calls", params={"kind": "admin"}, timeout=10).json()["calls"]

    def reset_calls(self) -> None:
        httpx.delete(f"{self.control}/calls", timeout=10).raise_for_status()

    def add_fault(self, rule: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{self.control}/faults", json=rule, timeout=10)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def faults(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.control}/faults", timeout=10).json()["faults"]  # type: ignore[no-any-return]

    def clear_faults(self) -> None:
        httpx.delete(f"{self.control}/faults", timeout=10).raise_for_status()

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call to the Admin API (``/organization<path>``), as someone working in the dashboard makes it."""
        response = httpx.request(method, f"{self.base_url}/organization{path}", timeout=10,
                                 headers={"Authorization": f"Bearer {self.admin_key}"}, **kwargs)
        response.raise_for_status()
        return response.json()

    def models_status(self, api_key: str) -> int:
        """What the data plane answers to ``GET /v1/models`` with ``api_key``."""
        return httpx.get(f"{self.base_url}/models", headers={"Authorization": f"Bearer {api_key}"},
                         timeout=10).status_code


@dataclass
class OperatorProcess:
    """``openai-operator run`` against the test cluster and the emulator."""

    env: dict[str, str]
    log_dir: Path
    runs: int = 0
    process: ManagedProcess | None = None
    extra_args: list[str] = field(default_factory=list)
    standalone: bool = True
    metrics_port: int = 0
    health_port: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.runs}.log"

    def start(self) -> None:
        assert self.process is None or self.process.exited() is not None, "already running"
        self.runs += 1
        self.metrics_port, self.health_port = free_port(), free_port()
        self.process = ManagedProcess(
            name=f"operator-{self.runs}",
            argv=[sys.executable, "-m", "openai_operator", "run", *(["--standalone"] if self.standalone else []),
                  "--log-format=json",
                  f"--metrics-port={self.metrics_port}", f"--health-port={self.health_port}", *self.extra_args],
            log_path=self.log_path,
            env={"OPENAI_OPERATOR_FINGERPRINT_KEY": SESSION_FINGERPRINT_KEY, **self.env},
        )
        self.process.start()

    def wait_live(self, timeout: float = 60) -> None:
        """Until the operator answers its liveness probe (it has started and is watching)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process is not None
            assert self.process.exited() is None, f"the operator exited:\n{self.log_path.read_text()[-2000:]}"
            time.sleep(0.1)
        raise AssertionError(f"the operator was not live within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finalizer work, exactly like a node failure."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.popen.wait(timeout=10)  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for path in sorted(self.log_dir.glob("operator-*.log")):
            for raw in path.read_text(errors="replace").splitlines():
                try:
                    lines.append(json.loads(raw))
                except json.JSONDecodeError:
                    lines.append({"raw": raw})
        return lines
