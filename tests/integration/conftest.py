"""Fixtures for tests that run the operator for real: the emulator as a subprocess, and the operator
(``openai-operator run``) as a subprocess that tests can stop, SIGKILL and start again.

Every operator log file of the session is kept in one folder, so the key-material scan can read
all of them at the end.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import SESSION_FINGERPRINT_KEY, Emulator, OperatorProcess, running_emulator
from scenario import apply, project_manifest
from testbed import KubeCluster, Kubectl


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def operator_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder that keeps every operator log of the session (scanned for key material)."""
    return tmp_path_factory.mktemp("operator-logs")


@pytest.fixture(scope="session")
def fingerprint_key() -> str:
    """The session's fingerprint HMAC key (random per session, see ``harness.SESSION_FINGERPRINT_KEY``)."""
    return SESSION_FINGERPRINT_KEY


@pytest.fixture
def operator_factory(
    kube: KubeCluster, crds: list[str], emulator: Emulator, operator_logs: Path, fingerprint_key: str
) -> Iterator[OperatorProcess]:
    """An operator that is not started yet (tests start, kill and restart it)."""
    env = {
        **kube.env,
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_ADMIN_KEY": emulator.admin_key,
        "OPENAI_OPERATOR_FINGERPRINT_KEY": fingerprint_key,
        # The test bed rotates keys every few seconds; the production floor (5m) would forbid that.
        "OPENAI_OPERATOR_MIN_ROTATION_INTERVAL": "0s",
        "OPENAI_OPERATOR_KEY_RESYNC_INTERVAL": "2s",
        "OPENAI_OPERATOR_PROJECT_RESYNC_INTERVAL": "5s",
        "OPENAI_OPERATOR_INVENTORY_INTERVAL": "3s",
    }
    log_dir = operator_logs / f"run-{len(list(operator_logs.iterdir()))}"
    log_dir.mkdir()
    operator = OperatorProcess(env=env, log_dir=log_dir)
    try:
        yield operator
    finally:
        operator.stop()


@pytest.fixture
def operator(operator_factory: OperatorProcess) -> OperatorProcess:
    """A running operator."""
    operator_factory.start()
    return operator_factory


@pytest.fixture
def project(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """An OpenAIProject that allows the test's namespace (deleted after the test)."""
    name = f"p-{secrets.token_hex(3)}"
    apply(kubectl, project_manifest(name, keyPolicy={"allowedNamespaces": {"names": [namespace]}}))
    yield name
    kubectl("delete", "openaiproject", name, "--wait=false", check=False)
