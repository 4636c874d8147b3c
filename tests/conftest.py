"""Session fixtures for the real test bed, started lazily: a test that needs only OpenBao never
pays for the control plane, and unit tests start nothing.

- ``kube``: a real kube-apiserver + etcd + kube-controller-manager (built from the Go module proxy
  on first use, cached by version). Set ``OPENAI_OPERATOR_TEST_EXISTING_CLUSTER=1`` to run against
  the cluster ``KUBECONFIG`` names instead.
- ``vault``: a real OpenBao dev server, or the one ``VAULT_ADDR``/``VAULT_TOKEN`` name when
  ``OPENAI_OPERATOR_TEST_EXISTING_VAULT=1``.
- ``kubectl``, ``crds``, ``namespace``: helpers on top of ``kube``.
- ``service_account_keys``: ``kube`` for a test that restarts the apiserver with other
  ServiceAccount keys (``KubeCluster.restart_apiserver``), restoring the original keys afterwards.

Tests are marked by folder: ``tests/unit`` → ``unit``, ``tests/integration`` → ``integration``,
``tests/conformance`` → ``conformance``, ``tests/chaos`` → ``chaos``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_devstack.stack import Stack
from testbed import KubeCluster, Kubectl, VaultServer

REPO_ROOT = Path(__file__).resolve().parents[1]
CRDS_DIR = REPO_ROOT / "crds"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in ("unit", "integration", "conformance", "chaos"):
            item.add_marker(getattr(pytest.mark, parts[1]))


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """The Kubernetes control plane for the whole session."""
    if _truthy("OPENAI_OPERATOR_TEST_EXISTING_CLUSTER"):
        existing = os.environ.get("KUBECONFIG")
        if not existing:
            pytest.fail("OPENAI_OPERATOR_TEST_EXISTING_CLUSTER is set but KUBECONFIG is not")
        yield KubeCluster(kubeconfig=Path(existing), bin_dir=None)
        return
    stack = Stack(tmp_path_factory.mktemp("kube"), with_vault=False, with_emulator=False)
    try:
        tools = stack.prepare()
        kubeconfig = stack.start_kubernetes(tools)
        yield KubeCluster(kubeconfig=kubeconfig, bin_dir=tools.kubectl.parent, stack=stack)
    finally:
        stack.stop()


@pytest.fixture
def service_account_keys(kube: KubeCluster) -> Iterator[KubeCluster]:
    """``kube`` for a test that re-keys the apiserver (``kube.restart_apiserver``); afterwards the
    apiserver is restarted with the keys it had before, if the test changed them."""
    signing, verification = kube.signing_key, kube.verification_keys
    yield kube
    if (kube.signing_key, kube.verification_keys) != (signing, verification):
        kube.restart_apiserver(signing_key=signing, verification_keys=verification)


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    """A real OpenBao server (dev mode: in memory, unsealed, KV v2 mounted at ``secret/``)."""
    if _truthy("OPENAI_OPERATOR_TEST_EXISTING_VAULT"):
        yield VaultServer(address=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
        return
    stack = Stack(tmp_path_factory.mktemp("vault"), with_vault=True, with_emulator=False)
    try:
        tools = stack.prepare()
        address, token = stack.start_openbao(tools)
        yield VaultServer(address=address, token=token)
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def kubectl(kube: KubeCluster) -> Kubectl:
    """Run kubectl against the test cluster; with ``check`` a failure fails the test with stderr."""
    env = kube.env

    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args], input=input, env=env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> list[str]:
    """Apply every CRD in ``crds/`` and wait until the apiserver serves them."""
    kubectl("apply", "--server-side", "-f", str(CRDS_DIR))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS_DIR))
    return sorted(p.name for p in CRDS_DIR.glob("*.yaml"))


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"t-{secrets.token_hex(4)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)

