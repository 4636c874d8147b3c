"""Types of the test bed's fixtures (defined in ``tests/conftest.py``), importable by test modules.

Test modules import these from here, never from a ``conftest`` module: with several conftest files,
the name ``conftest`` is ambiguous.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import pytest

from openai_devstack.pki import new_service_account_key
from openai_devstack.stack import Stack


@dataclass(frozen=True)
class KubeCluster:
    """How to reach the test cluster, and (for the test bed's own control plane) how to re-key it.

    Rotating the cluster's ServiceAccount signing keys, as a scenario test does::

        new = kube.new_service_account_key()                      # RSA; algorithm="EC" for ES256
        old = kube.signing_key
        kube.restart_apiserver(signing_key=old, verification_keys=[old, new])  # JWKS: old + new
        kube.restart_apiserver(signing_key=new, verification_keys=[old, new])  # new tokens: new kid
        kube.restart_apiserver(signing_key=new)                                # old key removed

    Each restart keeps etcd and every object, the address, the serving certificate and the admin
    token, and returns when ``/readyz`` answers. The signing key always verifies too; the JWKS at
    ``/openid/v1/jwks`` lists exactly the verification keys. Use the ``service_account_keys``
    fixture (``tests/conftest.py``) to get the original keys back after the test. Against an
    existing cluster (``OPENAI_OPERATOR_TEST_EXISTING_CLUSTER``) these methods skip the test.
    """

    kubeconfig: Path
    bin_dir: Path | None
    #: The test bed's stack when this session started the control plane, else ``None``.
    stack: Stack | None = None

    def _own_stack(self) -> Stack:
        if self.stack is None:
            pytest.skip("re-keying the apiserver needs the test bed's own control plane, not an existing cluster")
        return self.stack

    @property
    def signing_key(self) -> Path:
        """The private key file kube-apiserver signs ServiceAccount tokens with now."""
        key = self._own_stack().service_account_signing_key
        assert key is not None
        return key

    @property
    def verification_keys(self) -> tuple[Path, ...]:
        """The key files kube-apiserver verifies ServiceAccount tokens with (and publishes) now."""
        return self._own_stack().service_account_verification_keys

    def new_service_account_key(self, algorithm: Literal["RSA", "EC"] = "RSA") -> Path:
        """A fresh private key file in the test bed's PKI folder (not in use until a restart names it)."""
        folder = self._own_stack().state_dir / "pki"
        return new_service_account_key(folder / f"sa-{secrets.token_hex(4)}.key", algorithm=algorithm)

    def restart_apiserver(self, *, signing_key: Path, verification_keys: Sequence[Path] = ()) -> None:
        """Restart kube-apiserver with these ServiceAccount keys (see the class docstring)."""
        self._own_stack().restart_apiserver(signing_key=signing_key, verification_keys=verification_keys)

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
