"""Types of the test bed's fixtures (defined in ``tests/conftest.py``), importable by test modules.

Test modules import these from here, never from a ``conftest`` module: with several conftest files,
the name ``conftest`` is ambiguous.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class KubeCluster:
    """How to reach the test cluster."""

    kubeconfig: Path
    bin_dir: Path | None

    @property
    def env(self) -> dict[str, str]:
        path = os.environ.get("PATH", "")
        if self.bin_dir is not None:
            path = f"{self.bin_dir}:{path}"
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": path}


@dataclass(frozen=True)
class VaultServer:
    address: str
    token: str


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...
