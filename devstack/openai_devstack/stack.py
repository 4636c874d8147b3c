"""Start and stop the whole local stack, and describe it as shell ``export`` lines.

Order matters: etcd, then kube-apiserver (serving TLS with a throwaway CA, static-token and
ServiceAccount-token authentication, RBAC authorization and the admission plugins of a normal
cluster), then kube-controller-manager (garbage collection, namespace deletion, ServiceAccounts and
the workload controllers), then OpenBao in dev mode and the OpenAI emulator. ``up`` leaves it all
running in the background and records the process groups in ``STATE_DIR/processes.json``; ``down``
stops them. Tests use the same :class:`Stack` as a context manager.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shlex
import shutil
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from openai_devstack.binaries import Toolset, ensure_toolset
from openai_devstack.pki import Pki, ensure_pki
from openai_devstack.processes import ManagedProcess, StartupError, free_port, stop_process_group

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMISSION_PLUGINS = (
    "NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,"
    "MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota,"
    "PodSecurity,Priority,RuntimeClass,StorageObjectInUseProtection,CertificateApproval,"
    "CertificateSigning,CertificateSubjectRestriction"
)
CONTROLLERS = (
    "garbage-collector-controller,namespace-controller,serviceaccount-controller,"
    "serviceaccount-token-controller,deployment-controller,replicaset-controller,"
    "statefulset-controller,daemonset-controller,job-controller,root-ca-certificate-publisher-controller,"
    "clusterrole-aggregation-controller"
)
STARTUP_TIMEOUT = 120.0


@dataclass
class StackEnv:
    """What a client needs to reach the stack; written as ``STATE_DIR/env``."""

    kubeconfig: Path
    bin_dir: Path
    vault_addr: str | None = None
    vault_token: str | None = None
    openai_base_url: str | None = None
    openai_admin_key: str | None = None

    def exports(self) -> dict[str, str]:
        values = {
            "KUBECONFIG": str(self.kubeconfig),
            "VAULT_ADDR": self.vault_addr,
            "VAULT_TOKEN": self.vault_token,
            "OPENAI_BASE_URL": self.openai_base_url,
            "OPENAI_ADMIN_KEY": self.openai_admin_key,
        }
        return {k: v for k, v in values.items() if v is not None}

    def shell(self) -> str:
        lines = [f"export {k}={shlex.quote(v)}" for k, v in self.exports().items()]
        lines.append(f'export PATH={shlex.quote(str(self.bin_dir))}:"$PATH"')
        return "\n".join(lines) + "\n"


@dataclass
class Stack:
    """The local stack. ``detach=True`` lets the servers outlive this Python process (``devstack up``)."""

    state_dir: Path
    with_vault: bool = True
    with_emulator: bool = True
    detach: bool = False
    processes: list[ManagedProcess] = field(default_factory=list)
    etcd_dir: Path | None = None
    env: StackEnv | None = None
    #: The ServiceAccount keys kube-apiserver runs with now (see :meth:`restart_apiserver`).
    service_account_signing_key: Path | None = None
    service_account_verification_keys: tuple[Path, ...] = ()
    _apiserver: ManagedProcess | None = field(default=None, repr=False)
    _apiserver_argv: list[str] = field(default_factory=list, repr=False)
    _apiserver_ready: Callable[[], bool] | None = field(default=None, repr=False)

    def __enter__(self) -> StackEnv:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> StackEnv:
        """Start every part this stack is configured with; on any failure stop what started."""
        tools = self.prepare()
        bin_dir = self._link_tools(tools)
        try:
            env = StackEnv(kubeconfig=self.start_kubernetes(tools), bin_dir=bin_dir)
            if self.with_vault:
                env.vault_addr, env.vault_token = self.start_openbao(tools)
            if self.with_emulator:
                env.openai_base_url, env.openai_admin_key = self.start_emulator()
        except BaseException:
            self.stop()
            raise
        self.env = env
        self._record()
        (self.state_dir / "env").write_text(env.shell())
        (self.state_dir / "env").chmod(0o600)
        return env

    def prepare(self) -> Toolset:
        """Create the state folder and find (or build) the programs."""
        self.state_dir = self.state_dir.resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return ensure_toolset()

    def _link_tools(self, tools: Toolset) -> Path:
        """One folder with every tool, so ``source STATE_DIR/env`` puts them all on PATH."""
        bin_dir = self.state_dir / "bin"
        bin_dir.mkdir(exist_ok=True)
        for name, path in tools.all().items():
            link = bin_dir / name
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(path)
        return bin_dir

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        process = ManagedProcess(
            name=name,
            argv=argv,
            log_path=self.state_dir / "logs" / f"{name}.log",
            env=env or {},
            die_with_parent=not self.detach,
        )
        process.start()
        self.processes.append(process)
        return process

    def start_kubernetes(self, tools: Toolset) -> Path:
        """etcd, kube-apiserver and kube-controller-manager; returns the admin kubeconfig."""
        pki = ensure_pki(self.state_dir / "pki")
        admin_token = self._admin_token()
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        shm = Path("/dev/shm")  # noqa: S108 - tmpfs for a throwaway etcd; the folder name is random
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else self.state_dir
        self.etcd_dir = base / f"openai-operator-etcd-{secrets.token_hex(4)}"
        etcd = self._spawn(
            "etcd",
            [
                str(tools.etcd), "--name=devstack", f"--data-dir={self.etcd_dir}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=devstack=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync", "--log-level=warn",
            ],
        )
        etcd.wait_ready(
            lambda: httpx.get(f"http://127.0.0.1:{etcd_port}/health", timeout=1).status_code == 200,
            timeout=STARTUP_TIMEOUT, what="healthy etcd",
        )
        tokens = self.state_dir / "pki" / "tokens.csv"
        tokens.write_text(f'{admin_token},devstack-admin,devstack-admin,"system:masters"\n')
        tokens.chmod(0o600)
        self._apiserver_argv = [
            str(tools.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            f"--cert-dir={self.state_dir / 'pki'}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--enable-admission-plugins={ADMISSION_PLUGINS}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]  # fmt: skip
        server = f"https://127.0.0.1:{api_port}"
        kubeconfig = self._write_kubeconfig(server, pki, admin_token)

        tls = ssl.create_default_context(cafile=str(pki.ca_cert))

        def get(path: str) -> httpx.Response:
            return httpx.get(
                server + path, verify=tls, timeout=2,
                headers={"Authorization": f"Bearer {admin_token}"},
            )

        self._apiserver_ready = lambda: get("/readyz").status_code == 200
        self._start_apiserver(pki.service_account_key, [pki.service_account_key])
        controller_manager = self._spawn(
            "kube-controller-manager",
            [
                str(tools.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
                f"--cert-dir={self.state_dir / 'pki' / 'kcm'}",
                f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca_cert}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                "--v=1",
            ],
        )
        controller_manager.wait_ready(
            lambda: get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200,
            timeout=STARTUP_TIMEOUT, what="the `default` ServiceAccount (controllers running)",
        )
        return kubeconfig

    def _start_apiserver(self, signing_key: Path, verification_keys: Sequence[Path]) -> None:
        """kube-apiserver with these ServiceAccount keys; the signing key always verifies too."""
        keys = tuple(dict.fromkeys([signing_key, *verification_keys]))  # ordered, no duplicates
        argv = [
            *self._apiserver_argv,
            *(f"--service-account-key-file={k}" for k in keys),
            f"--service-account-signing-key-file={signing_key}",
        ]
        self._apiserver = self._spawn("kube-apiserver", argv)
        assert self._apiserver_ready is not None
        self._apiserver.wait_ready(self._apiserver_ready, timeout=STARTUP_TIMEOUT,
                                   what="ready kube-apiserver (/readyz)")  # fmt: skip
        self.service_account_signing_key = signing_key
        self.service_account_verification_keys = keys

    def restart_apiserver(self, *, signing_key: Path, verification_keys: Sequence[Path] = ()) -> None:
        """Restart kube-apiserver with other ServiceAccount keys; etcd (and so every object) stays.

        ``signing_key`` becomes ``--service-account-signing-key-file`` (new tokens carry its
        ``kid``); it and every file in ``verification_keys`` are passed as repeated
        ``--service-account-key-file``, so ``/openid/v1/jwks`` lists exactly those public keys and
        tokens signed by any of them keep authenticating. A key left out is removed: tokens it
        signed are refused from then on. The apiserver comes back on the same address, with the
        same serving certificate and admin token, so kubeconfigs and clients keep working; the
        call returns once ``/readyz`` answers. Make keys with
        :func:`openai_devstack.pki.new_service_account_key`.
        """
        if self._apiserver is None:
            raise RuntimeError("the stack's kube-apiserver is not running: start_kubernetes() first")
        for path in (signing_key, *verification_keys):
            if not path.is_file():
                raise FileNotFoundError(f"no ServiceAccount key file at {path}")
        old = self._apiserver
        # It stops serving within a second of SIGTERM but then lingers in shutdown for ~10 s; the
        # state is all in etcd, so a SIGKILL after a short grace loses nothing and halves a restart.
        old.stop(timeout=3.0)
        self.processes.remove(old)
        self._apiserver = None
        self._start_apiserver(signing_key, verification_keys)
        if (self.state_dir / "processes.json").exists():
            self._record()

    def _admin_token(self) -> str:
        path = self.state_dir / "pki" / "admin-token"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _write_kubeconfig(self, server: str, pki: Pki, token: str) -> Path:
        ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "devstack", "cluster": {"server": server, "certificate-authority-data": ca}}],
            "users": [{"name": "devstack-admin", "user": {"token": token}}],
            "contexts": [{"name": "devstack", "context": {"cluster": "devstack", "user": "devstack-admin"}}],
            "current-context": "devstack",
        }
        path = self.state_dir / "kubeconfig"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def start_openbao(self, tools: Toolset) -> tuple[str, str]:
        """OpenBao in dev mode (in-memory, unsealed, KV v2 at ``secret/``); returns address and root token."""
        port = free_port()
        token = secrets.token_urlsafe(24)
        address = f"http://127.0.0.1:{port}"
        bao = self._spawn(
            "openbao",
            [str(tools.bao), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
             "-dev-no-store-token", "-log-level=warn"],
            env={"BAO_DEV_ROOT_TOKEN_ID": token, "VAULT_DEV_ROOT_TOKEN_ID": token},
        )
        bao.wait_ready(
            lambda: httpx.get(f"{address}/v1/sys/health", timeout=1).status_code == 200,
            timeout=STARTUP_TIMEOUT, what="healthy OpenBao (/v1/sys/health)",
        )
        return address, token

    def start_emulator(self) -> tuple[str, str]:
        """The OpenAI emulator as a subprocess; returns its ``/v1`` base URL and admin key."""
        port = free_port()
        admin_key = "sk-admin-" + secrets.token_urlsafe(48)
        base_url = f"http://127.0.0.1:{port}/v1"
        emulator = self._spawn(
            "emulator",
            [sys.executable, "-m", "openai_emulator", "--port", str(port),
             "--state", str(self.state_dir / "emulator-state.json")],
            env={"OPENAI_ADMIN_KEY": admin_key},
        )
        emulator.wait_ready(
            lambda: httpx.get(
                f"{base_url}/organization/projects", timeout=1,
                headers={"Authorization": f"Bearer {admin_key}"},
            ).status_code == 200,
            timeout=STARTUP_TIMEOUT, what="an answering emulator",
        )
        return base_url, admin_key

    # -- record and stop -----------------------------------------------------------------------

    def _record(self) -> None:
        record = {
            "processes": [{"name": p.name, "pgid": p.pid} for p in self.processes],
            "etcd_dir": str(self.etcd_dir) if self.etcd_dir else None,
        }
        (self.state_dir / "processes.json").write_text(json.dumps(record, indent=2))

    def stop(self) -> None:
        """Stop in reverse order of start and remove etcd's data."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.etcd_dir is not None:
            shutil.rmtree(self.etcd_dir, ignore_errors=True)
            self.etcd_dir = None
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "processes.json").unlink()


def up(state_dir: Path, *, with_vault: bool = True, with_emulator: bool = True) -> Path:
    """Start the stack in the background, return the path of its env file."""
    if (state_dir / "processes.json").exists():
        raise StartupError(f"a stack already runs from {state_dir}: `openai-devstack down` first")
    started = time.monotonic()
    Stack(state_dir, with_vault=with_vault, with_emulator=with_emulator, detach=True).start()
    print(f"devstack: ready in {time.monotonic() - started:.1f}s", file=sys.stderr)  # noqa: T201
    return (state_dir / "env").resolve()


def down(state_dir: Path) -> None:
    """Stop every process ``up`` recorded in ``state_dir`` and remove etcd's data."""
    record_path = state_dir / "processes.json"
    if not record_path.exists():
        return
    record = json.loads(record_path.read_text())
    for entry in reversed(record["processes"]):
        stop_process_group(int(entry["pgid"]))
    if record.get("etcd_dir"):
        shutil.rmtree(record["etcd_dir"], ignore_errors=True)
    record_path.unlink()
    with contextlib.suppress(FileNotFoundError):
        (state_dir / "env").unlink()
