"""Scale: N keys applied 32 at a time until every one is Ready, against the raw Secret-write rate.

    .venv/bin/python bench/scale.py --keys 10,100,1000 [--profile] [--write-readme]

For each size N the script starts a fresh test bed (etcd, kube-apiserver, kube-controller-manager and
the emulator in its own process, through ``openai_devstack.stack.Stack``), installs ``crds/``, gives
the emulator's Admin API a uniform 50-150 ms latency (``--latency-ms``), and then measures, in one run:

- **raw**: a plain async client (httpx on the apiserver's REST API, the same ``--concurrency``)
  creating N Secrets of the size the operator writes: the rate the apiserver allows on this machine;
- **converge**: the operator (``openai-operator run --standalone`` as a subprocess) running, one
  OpenAIProject Ready, N OpenAIKeys (each to a Secret) created ``--concurrency`` at a time; the clock
  stops when every key is ``Ready=True`` and every Secret holds a key (the operator verifies every key
  before it delivers it). keys/s = N / converge time; ratio = keys/s / raw Secret writes/s;
- **Admin API calls per key**, from the emulator's own counters (``GET /_emulator/calls``): the Admin
  API calls while converging, and the data-plane verification calls beside them;
- **memory**: the operator's RSS sampled every half second (``VmRSS`` of ``/proc/<pid>/status``), its
  peak (``VmHWM``), and the RSS at rest ``--rest`` seconds after convergence.

With ``--profile`` the convergence runs under ``py-spy record`` (installed from PyPI with
``pip install py-spy``); its collapsed stacks are kept in ``bench/results/<tag>-<N>.profile.txt``
(``flamegraph.pl`` or speedscope draw them) and the functions with the most self time go into the
JSON.

Results: a table on stdout, ``bench/results/<tag>.json`` (``--tag``, default ``scale``; with the
timelines) and, when matplotlib is installed, ``bench/results/<tag>-*.png`` plots; ``--write-readme``
writes that tag's section of ``bench/README.md`` between its markers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openai_devstack.binaries import cache_root
from openai_devstack.processes import free_port
from openai_devstack.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
OPERATOR_SOURCE = ROOT / "operator"
GROUP = "openai.operator.dev"
VERSION = "v1alpha1"


@dataclass
class Run:
    keys: int
    shards: int = 1
    raw_seconds: float = 0.0
    raw_per_second: float = 0.0
    converge_seconds: float = 0.0
    keys_per_second: float = 0.0
    ratio: float = 0.0
    admin_calls: int = 0
    admin_calls_by_route: dict[str, int] = field(default_factory=dict)
    verify_calls: int = 0
    rotate_seconds: float = 0.0
    """--rotate: from annotating every key until every key serves its new credential."""
    revoke_seconds: float = 0.0
    """--rotate: until every superseded credential is revoked too (after the keys' grace period)."""
    rotate_admin_peak_per_second: int = 0
    admin_refused: int = 0
    """--rotate with --admin-limit: Admin API requests the emulator refused with 429."""
    workload_calls: int = 0
    workload_failures: int = 0
    restart_idle_seconds: float = 0.0
    """--restart: from the start after a SIGKILL until every key has had its first pass."""
    restart_admin_calls: int = 0
    restart_secret_writes: int = 0
    restart_rotations: int = 0
    apiserver_calls_by_kind: dict[str, int] = field(default_factory=dict)
    """apiserver requests while converging by verb and resource, from every client (the bench's own
    creates and polls included), from the apiserver's ``apiserver_request_total``."""
    rss_peak_mb: float = 0.0
    rss_rest_mb: float = 0.0
    profile_top: list[tuple[str, float]] = field(default_factory=list)
    """With ``--profile``: the functions holding the most samples (self time), as a share of all samples."""
    timeline: list[tuple[float, int, float]] = field(default_factory=list)
    """(seconds since the first create, keys Ready, RSS MB)."""

    @property
    def admin_per_key(self) -> float:
        return self.admin_calls / self.keys

    @property
    def verify_per_key(self) -> float:
        return self.verify_calls / self.keys


class Kube:
    """The apiserver's REST API with the test bed's admin token (no client library in the way)."""

    def __init__(self, kubeconfig: Path, concurrency: int) -> None:
        config = json.loads(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.http = httpx.AsyncClient(
            base_url=cluster["server"], verify=context, timeout=60,
            headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    async def create(self, path: str, body: dict[str, Any]) -> None:
        response = await self.http.post(path, json=body)
        if response.status_code not in (200, 201, 409):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")

    async def items(self, path: str) -> list[dict[str, Any]]:
        response = await self.http.get(path)
        response.raise_for_status()
        return list(response.json()["items"])


async def in_batches(count: int, concurrency: int, make: Any) -> None:
    """``make(i)`` for every i, at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await make(i)

    await asyncio.gather(*(one(i) for i in range(count)))


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def admin_calls(emulator: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{emulator}/_emulator/calls", timeout=30).json()["calls"])


def apiserver_requests(kubeconfig: Path) -> dict[str, int]:
    """``apiserver_request_total`` summed by (verb, resource, subresource): what every client asked."""
    kube = Kube(kubeconfig, 1)

    async def read() -> str:
        try:
            response = await kube.http.get("/metrics")
            response.raise_for_status()
            return response.text
        finally:
            await kube.http.aclose()

    counts: dict[str, int] = {}
    for line in asyncio.run(read()).splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels.get("resource") in ("", None) or labels.get("verb") in ("WATCH", "CONNECT"):
            continue
        sub = f"/{labels['subresource']}" if labels.get("subresource") else ""
        name = f"{labels['verb']} {labels['resource']}{sub}"
        counts[name] = counts.get(name, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def create_all(kubeconfig: Path, concurrency: int, n: int, path: str, body: Any) -> float:
    """Create ``body(i)`` at ``path`` for i < n, ``concurrency`` at a time; return the seconds it took."""
    kube = Kube(kubeconfig, concurrency)
    started = time.perf_counter()
    try:
        await in_batches(n, concurrency, lambda i: kube.create(path, body(i)))
    finally:
        await kube.http.aclose()
    return time.perf_counter() - started


def tenant_namespaces(args: argparse.Namespace) -> list[str]:
    """Where the keys go: ``bench``, or ``bench-0`` … one per shard with ``--shards``."""
    return ["bench"] if args.shards == 1 else [f"bench-{i}" for i in range(args.shards)]


def poll_interval(n: int) -> float:
    """How often the keys are listed while waiting: every half second, slower with many keys, so the
    measuring (a list of every key, 5 KB each) does not become the apiserver's main load."""
    return max(0.5, n / 1000)


async def converge(kubeconfig: Path, args: argparse.Namespace, run: Run, operators: list[subprocess.Popen[bytes]],
                   log: str) -> None:
    """Create the keys (round robin over the tenant namespaces) and poll until every one is Ready,
    sampling the operators' RSS (summed over the shards)."""
    n = run.keys
    kube = Kube(kubeconfig, args.concurrency)
    namespaces = tenant_namespaces(args)
    all_keys = f"/apis/{GROUP}/{VERSION}/openaikeys"
    started = time.perf_counter()

    def keys_path(i: int) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespaces[i % len(namespaces)]}/openaikeys"

    creating = asyncio.ensure_future(in_batches(n, args.concurrency, lambda i: kube.create(keys_path(i), {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "OpenAIKey", "metadata": {"name": f"k{i:05d}"},
        "spec": {"projectRef": {"name": "bench"}, "secret": {},
                 **({"rotation": {"every": "720h", "gracePeriod": args.grace}} if args.rotate else {})}})))
    deadline = time.monotonic() + args.timeout
    try:
        while True:
            await asyncio.sleep(poll_interval(n))
            keys = await kube.items(all_keys)
            count = sum(1 for k in keys if ready(k))
            rss = sum(rss_mb(operator.pid) for operator in operators)
            run.timeline.append((round(time.perf_counter() - started, 2), count, round(rss, 1)))
            if count == n and creating.done():
                break
            if time.monotonic() > deadline or any(operator.poll() is not None for operator in operators):
                raise RuntimeError(f"{count}/{n} keys Ready after {args.timeout}s; see {log}")
        run.converge_seconds = time.perf_counter() - started
        await creating
        holding = [s for namespace in namespaces for s in await kube.items(f"/api/v1/namespaces/{namespace}/secrets")
                   if (s.get("data") or {}).get("OPENAI_API_KEY")]
        if len(holding) < n:
            raise RuntimeError(f"only {len(holding)}/{n} Secrets hold a key although every key is Ready")
    finally:
        await kube.http.aclose()


def wait_project_ready(kubectl: str, kube_env: dict[str, str], operator: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run([kubectl, "get", "openaiproject", "bench", "-o", "json"], env=kube_env,
                             capture_output=True, text=True, check=False).stdout
        if out and ready(json.loads(out)):
            return
        if time.monotonic() > deadline or operator.poll() is not None:
            raise RuntimeError("the project never became Ready; see " + log)
        time.sleep(0.2)


def measure(n: int, args: argparse.Namespace, state_dir: Path) -> Run:
    run = Run(keys=n, shards=args.shards)
    stack = Stack(state_dir, with_vault=False, with_emulator=True)
    env = stack.start()
    operator: subprocess.Popen[bytes] | None = None
    others: list[subprocess.Popen[bytes]] = []
    profiler: subprocess.Popen[bytes] | None = None
    if env.openai_base_url is None or env.openai_admin_key is None:
        raise RuntimeError("the stack has no emulator")
    emulator = env.openai_base_url.removesuffix("/v1")
    kube_env = {**os.environ, **env.exports()}
    kubectl = str(env.bin_dir / "kubectl")
    try:
        crds = str(ROOT / "crds")
        subprocess.run([kubectl, "apply", "--server-side", "-f", crds], env=kube_env, check=True, capture_output=True)
        subprocess.run([kubectl, "wait", "--for=condition=Established", "--timeout=60s", "-f", crds],
                       env=kube_env, check=True, capture_output=True)
        for namespace in ("bench-raw", *tenant_namespaces(args)):
            subprocess.run([kubectl, "create", "namespace", namespace], env=kube_env, check=True, capture_output=True)

        # raw: the apiserver's own rate for Secrets of the delivered size
        payload = {"OPENAI_API_KEY": base64.b64encode(b"x" * 167).decode(),
                   "OPENAI_BASE_URL": base64.b64encode(env.openai_base_url.encode()).decode()}
        run.raw_seconds = asyncio.run(create_all(env.kubeconfig, args.concurrency, n,
                                                 "/api/v1/namespaces/bench-raw/secrets",
                                                 lambda i: {"metadata": {"name": f"raw-{i}"}, "data": payload}))
        run.raw_per_second = n / run.raw_seconds

        low, high = (float(v) for v in args.latency_ms.split("-"))
        httpx.post(f"{emulator}/_emulator/faults", timeout=10, json={
            "route": "/v1/organization/*", "latency": {"distribution": "uniform", "min_ms": low, "max_ms": high},
            "seed": 1}).raise_for_status()

        log = state_dir / f"operator-{n}.log"
        fingerprint_key = secrets.token_urlsafe(48)
        metrics_port = free_port()

        def start_operator(shard: int = 0) -> subprocess.Popen[bytes]:
            traced = [str(ROOT / "bench" / "traced_operator.py")]
            program = traced if args.tracemalloc else ["-m", "openai_operator"]
            operator_env = {**kube_env, "PYTHONPATH": str(OPERATOR_SOURCE),
                            "OPENAI_OPERATOR_FINGERPRINT_KEY": fingerprint_key,
                            "OPENAI_OPERATOR_LOG_LEVEL": "WARNING",
                            "OPENAI_OPERATOR_TRACEMALLOC_OUT": str(RESULTS / f"{args.tag}-{n}.tracemalloc.json")}
            if args.admin_api_rate:
                operator_env["OPENAI_OPERATOR_ADMIN_API_RATE"] = str(args.admin_api_rate)
                operator_env["OPENAI_OPERATOR_ADMIN_API_BURST"] = str(args.admin_api_burst)
            with log.open("ab") as sink:
                sharding = [] if args.shards == 1 else [
                    f"--shard=s{shard}", f"--namespace={tenant_namespaces(args)[shard]}",
                    *([] if shard == 0 else ["--no-manage-projects"])]
                return subprocess.Popen(
                    [operator_python, *program, "run", "--standalone", "--log-format=json",
                     f"--metrics-port={metrics_port if shard == 0 else free_port()}", f"--health-port={free_port()}",
                     *sharding],
                    env=operator_env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                )

        operator_python = image_python() if args.image_python else sys.executable
        operator = start_operator()
        others = [start_operator(shard) for shard in range(1, args.shards)]
        project = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "OpenAIProject", "metadata": {"name": "bench"},
                   "spec": {"keyPolicy": {"allowedNamespaces": {"names": tenant_namespaces(args)}}}}
        subprocess.run([kubectl, "apply", "-f", "-"], input=json.dumps(project), env=kube_env, check=True,
                       capture_output=True, text=True)
        wait_project_ready(kubectl, kube_env, operator, str(log))
        httpx.delete(f"{emulator}/_emulator/calls", timeout=10).raise_for_status()
        if args.profile:
            profiler = subprocess.Popen([_py_spy(), "record", "--pid", str(operator.pid), "--rate", "50",
                                         "--nonblocking", "--format", "raw",
                                         "-o", str(RESULTS / f"{args.tag}-{n}.profile.txt")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = apiserver_requests(env.kubeconfig)
        asyncio.run(converge(env.kubeconfig, args, run, [operator, *others], str(log)))
        after = apiserver_requests(env.kubeconfig)
        run.apiserver_calls_by_kind = {k: v - before.get(k, 0) for k, v in sorted(after.items())
                                       if v - before.get(k, 0) > 0}
        run.keys_per_second = n / run.converge_seconds
        run.ratio = run.keys_per_second / run.raw_per_second
        for call in admin_calls(emulator):
            if call["kind"] == "admin":
                run.admin_calls += call["count"]
                route = f"{call['method']} {call['route']}"
                run.admin_calls_by_route[route] = run.admin_calls_by_route.get(route, 0) + call["count"]
            elif call["kind"] == "data" and call["route"].startswith("/v1/models"):
                run.verify_calls += call["count"]
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait(timeout=60)
            profiler = None
            run.profile_top = top_of_profile(RESULTS / f"{args.tag}-{n}.profile.txt")
        time.sleep(args.rest)  # the RSS at rest is read after a quiet spell, by definition
        run.rss_rest_mb = sum(rss_mb(p.pid) for p in (operator, *others))
        run.rss_peak_mb = sum(rss_mb(p.pid, "VmHWM") for p in (operator, *others))
        if args.rotate:
            if args.admin_limit:
                httpx.post(f"{emulator}/_emulator/config", json={"admin_requests_per_second": args.admin_limit},
                           timeout=10).raise_for_status()
            asyncio.run(mass_rotation(env.kubeconfig, emulator, args, run, str(log)))
            run.admin_refused = int(httpx.get(f"{emulator}/_emulator/config", timeout=10).json()
                                    ["admin_requests_refused"])
        if args.restart:
            os.killpg(operator.pid, 9)
            operator.wait()
            httpx.delete(f"{emulator}/_emulator/calls", timeout=10).raise_for_status()
            before = apiserver_requests(env.kubeconfig)
            revisions = asyncio.run(key_revisions(env.kubeconfig, args.concurrency))
            started = time.perf_counter()
            operator = start_operator()
            run.restart_idle_seconds = wait_every_key_passed(metrics_port, n, operator, args.timeout) - started
            time.sleep(args.rest)  # what the restart cost is counted after a quiet spell
            after = apiserver_requests(env.kubeconfig)
            run.restart_admin_calls = sum(c["count"] for c in admin_calls(emulator) if c["kind"] == "admin")
            run.restart_secret_writes = sum(v - before.get(k, 0) for k, v in after.items()
                                            if k in ("POST secrets", "PUT secrets", "PATCH secrets"))
            run.restart_rotations = sum(1 for key, revision in asyncio.run(
                key_revisions(env.kubeconfig, args.concurrency)).items() if revision != revisions.get(key))
        if args.tracemalloc:
            traced = RESULTS / f"{args.tag}-{n}.tracemalloc.json"
            traced.unlink(missing_ok=True)
            operator.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 120
            while not traced.exists() and time.monotonic() < deadline:
                time.sleep(0.5)  # the snapshot of a large heap takes a while; its file is the signal
            time.sleep(1)
        return run
    finally:
        if profiler is not None:
            profiler.kill()
        for running in (operator, *others):
            if running is not None:
                os.killpg(running.pid, 9)
                running.wait()
        stack.stop()


async def key_revisions(kubeconfig: Path, concurrency: int) -> dict[str, int]:
    kube = Kube(kubeconfig, concurrency)
    try:
        keys = await kube.items(f"/apis/{GROUP}/{VERSION}/namespaces/bench/openaikeys")
    finally:
        await kube.http.aclose()
    return {k["metadata"]["name"]: int((k.get("status") or {}).get("revision") or 0) for k in keys}


def reconcile_passes(metrics_port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    found = re.findall(r'^openai_operator_reconcile_duration_seconds_count\{kind="OpenAIKey",result="ok"\} (\S+)$',
                       text, re.MULTILINE)
    return int(float(found[0])) if found else 0


def wait_every_key_passed(metrics_port: int, n: int, operator: subprocess.Popen[bytes], timeout: float) -> float:
    """When (perf_counter) the restarted operator had completed a pass of every key."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if reconcile_passes(metrics_port) >= n:
                return time.perf_counter()
        except httpx.HTTPError:
            pass  # not listening yet
        if time.monotonic() > deadline or operator.poll() is not None:
            raise RuntimeError("the restarted operator never passed over every key")
        time.sleep(0.2)


async def mass_rotation(kubeconfig: Path, emulator: str, args: argparse.Namespace, run: Run, log: str) -> None:
    """Annotate every key to rotate while a workload simulator uses a sample of them.

    The simulator (``--workload-sample`` keys, one task each) reads its key's Secret from the apiserver
    and calls ``GET /v1/models`` with the key it found, over and over: a 401 is a failed workload call
    (the Secret held a revoked key). The keys rotate with a short grace (``--grace``), so revocations
    happen inside the run.
    """
    n = run.keys
    kube = Kube(kubeconfig, args.concurrency)
    data = httpx.AsyncClient(base_url=emulator, timeout=30)
    keys_path = f"/apis/{GROUP}/{VERSION}/namespaces/bench/openaikeys"
    before = {k["metadata"]["name"]: int(k["status"]["revision"]) for k in await kube.items(keys_path)}
    names = sorted(before)
    stop = asyncio.Event()

    async def workload(name: str) -> None:
        while not stop.is_set():
            secret = (await kube.http.get(f"/api/v1/namespaces/bench/secrets/{name}")).json()
            value = base64.b64decode(secret["data"]["OPENAI_API_KEY"]).decode()
            status = (await data.get("/v1/models", headers={"Authorization": f"Bearer {value}"})).status_code
            run.workload_calls += 1
            if status == 401:
                run.workload_failures += 1
            await asyncio.sleep(0.05)

    async def admin_rate() -> None:
        last = None
        while not stop.is_set():
            total = sum(c["count"] for c in (await data.get("/_emulator/calls")).json()["calls"]
                        if c["kind"] == "admin")
            if last is not None:
                run.rotate_admin_peak_per_second = max(run.rotate_admin_peak_per_second, total - last)
            last = total
            await asyncio.sleep(1.0)

    async def annotate(i: int) -> None:
        patch = {"metadata": {"annotations": {"openai.operator.dev/rotate": "bench-" + secrets.token_hex(4)}}}
        response = await kube.http.patch(f"{keys_path}/{names[i]}", json=patch,
                                         headers={"Content-Type": "application/merge-patch+json"})
        response.raise_for_status()

    sample = names[:: max(1, n // args.workload_sample)][: args.workload_sample]
    background = [asyncio.ensure_future(workload(name)) for name in sample]
    background.append(asyncio.ensure_future(admin_rate()))
    started = time.perf_counter()
    await in_batches(n, args.concurrency, annotate)
    deadline = time.monotonic() + args.timeout
    try:
        while True:
            await asyncio.sleep(poll_interval(n))
            keys = await kube.items(keys_path)
            rotated = [k for k in keys if ready(k)
                       and int((k.get("status") or {}).get("revision") or 0) > before[k["metadata"]["name"]]]
            if not run.rotate_seconds and len(rotated) == n:
                run.rotate_seconds = time.perf_counter() - started
            if run.rotate_seconds and all(not (k.get("status") or {}).get("previous") for k in keys):
                run.revoke_seconds = time.perf_counter() - started
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(rotated)}/{n} keys rotated after {args.timeout}s; see {log}")
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        await data.aclose()
        await kube.http.aclose()


def image_python(lock: Path = ROOT / "requirements.lock") -> str:
    """A Python with exactly the libraries the operator's image installs (``requirements.lock``).

    The test environment holds more (``rich`` and ``pygments``, which httpx imports when they are
    installed; pytest; the emulator), which would count in the operator's RSS but not in a pod's. Built
    once per lock file in the test bed's cache (``$OPENAI_OPERATOR_CACHE``), from PyPI; the operator itself runs from
    this checkout (:data:`OPERATOR_SOURCE` on ``PYTHONPATH``).
    """
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    venv = cache_root() / f"bench-image-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--no-deps"]
        subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
        (venv / ".complete").touch()
    return str(python)


def _py_spy() -> str:
    """py-spy from PATH, else beside this interpreter (the venv's bin is not on PATH unless activated)."""
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def top_of_profile(path: Path, count: int = 25) -> list[tuple[str, float]]:
    """Self time per function from py-spy's raw (collapsed-stack) output: ``frame;frame;... samples``."""
    own: dict[str, int] = {}
    total = 0
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        own[leaf] = own.get(leaf, 0) + int(samples)
        total += int(samples)
    ranked = sorted(own.items(), key=lambda item: -item[1])[:count]
    return [(name, round(100 * samples / total, 1)) for name, samples in ranked]


def table(runs: list[Run]) -> str:
    rows = ["| keys | converge | keys/s | raw Secret writes/s | ratio | Admin calls per key | verify per key "
            "| RSS peak | RSS at rest |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        label = f"{r.keys:,}" + (f" ({r.shards} shards)" if r.shards > 1 else "")
        rows.append(f"| {label} | {r.converge_seconds:.1f} s | {r.keys_per_second:.1f} | {r.raw_per_second:.0f} "
                    f"| {r.ratio:.2f} | {r.admin_per_key:.2f} | {r.verify_per_key:.2f} | {r.rss_peak_mb:.0f} MB "
                    f"| {r.rss_rest_mb:.0f} MB |")
    return "\n".join(rows)


def rotation_table(runs: list[Run]) -> str:
    rows = ["| keys | all rotated | all old revoked | peak Admin API req/s | 429s | workload calls | failed |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        if r.rotate_seconds:
            rows.append(f"| {r.keys:,} | {r.rotate_seconds:.1f} s | {r.revoke_seconds:.1f} s "
                        f"| {r.rotate_admin_peak_per_second} | {r.admin_refused} | {r.workload_calls:,} "
                        f"| {r.workload_failures} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def restart_table(runs: list[Run]) -> str:
    rows = ["| keys | every key passed | Admin API calls | Secret writes | rotations |", "|---:|---:|---:|---:|---:|"]
    for r in runs:
        if r.restart_idle_seconds:
            rows.append(f"| {r.keys:,} | {r.restart_idle_seconds:.1f} s | {r.restart_admin_calls} "
                        f"| {r.restart_secret_writes} | {r.restart_rotations} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def plot(runs: list[Run], tag: str) -> list[Path]:
    """keys Ready over time, RSS over keys Ready, calls per key: one PNG each, named after ``tag``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)")
        return []
    out = []

    def figure(name: str, xlabel: str, ylabel: str, draw: Any) -> None:
        fig, ax = plt.subplots(figsize=(7, 4))
        draw(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend()
        fig.tight_layout()
        out.append(RESULTS / f"{tag}-{name}.png")
        fig.savefig(out[-1])
        plt.close(fig)

    def label(r: Run) -> str:
        return f"{r.keys:,} keys" + (f", {r.shards} shards" if r.shards > 1 else "")

    def ready_over_time(ax: Any) -> None:
        for r in runs:
            ax.plot([p[0] for p in r.timeline], [p[1] for p in r.timeline], label=label(r))

    def rss_over_keys(ax: Any) -> None:
        for r in runs:
            ax.plot([p[1] for p in r.timeline], [p[2] for p in r.timeline], label=label(r))

    def calls_per_key(ax: Any) -> None:
        names = [label(r) for r in runs]
        ax.bar(names, [r.admin_per_key for r in runs], label="Admin API")
        ax.bar(names, [r.verify_per_key for r in runs], bottom=[r.admin_per_key for r in runs], label="verification")

    figure("ready", "seconds since the first create", "keys Ready", ready_over_time)
    figure("rss", "keys Ready", "operator RSS (MB)", rss_over_keys)
    figure("calls", "run", "calls per key", calls_per_key)
    return out


def write_readme(text: str, tag: str, title: str) -> None:
    """Replace the README section between ``<!-- <tag>-bench:start/end -->`` (appended if missing)."""
    start, end = f"<!-- {tag}-bench:start -->", f"<!-- {tag}-bench:end -->"
    readme = README.read_text()
    if start in readme:
        before, rest = readme.split(start, 1)
        after = rest.split(end, 1)[1]
        readme = before + start + "\n" + text + "\n" + end + after
    else:
        readme += f"\n## {title}\n\n{start}\n{text}\n{end}\n"
    README.write_text(readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keys", default="10,100,1000", help="comma-separated sizes")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", default="50-150", help="uniform Admin API latency, min-max ms")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--rest", type=float, default=15, help="seconds after convergence before RSS at rest")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graph of each convergence")
    parser.add_argument("--no-image-python", dest="image_python", action="store_false",
                        help="run the operator with this interpreter (the test environment) instead of one "
                             "holding only requirements.lock")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="run the operator under tracemalloc (bench/traced_operator.py) and keep where its "
                             "memory is at rest in bench/results/scale-<N>.tracemalloc.json (RSS is then inflated)")
    parser.add_argument("--rotate", action="store_true",
                        help="after converging, rotate every key (annotation) under a workload simulator")
    parser.add_argument("--grace", default="20s", help="the keys' grace period (with --rotate)")
    parser.add_argument("--workload-sample", type=int, default=20, help="keys the workload simulator uses")
    parser.add_argument("--admin-api-rate", type=float, default=0.0, help="the operator's Admin API budget (req/s)")
    parser.add_argument("--admin-api-burst", type=int, default=10)
    parser.add_argument("--admin-limit", type=int, default=0,
                        help="the emulator's Admin API limit (req/s) during --rotate (0: none)")
    parser.add_argument("--restart", action="store_true",
                        help="at the end, SIGKILL the operator and measure what its restart costs")
    parser.add_argument("--shards", default="1",
                        help="comma-separated shard counts (e.g. 1,2): each size runs with each count, one "
                             "namespace per shard (keys spread round robin), the first shard managing the "
                             "project; RSS is their sum")
    parser.add_argument("--tag", default="scale",
                        help="names the results (bench/results/<tag>.json, <tag>-*.png) and the README section")
    parser.add_argument("--title", default="Scale: keys to Ready, Admin API calls, memory",
                        help="the README section's heading, when it is new")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    shard_counts = [int(v) for v in str(args.shards).split(",")]
    if max(shard_counts) > 1 and (args.rotate or args.restart or args.profile or args.tracemalloc):
        parser.error("--shards measures convergence only (no --rotate, --restart, --profile, --tracemalloc)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in (int(v) for v in args.keys.split(",")):
        for shards in shard_counts:
            state = Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
            try:
                run = measure(n, argparse.Namespace(**{**vars(args), "shards": shards}), state)
            finally:
                shutil.rmtree(state, ignore_errors=True)
            runs.append(run)
            print(table([run]).splitlines()[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": commit.strip(), "machine": f"{os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}", "latency_ms": args.latency_ms, "concurrency": args.concurrency}
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(
        {**meta, "runs": [{**asdict(r), "admin_per_key": r.admin_per_key, "verify_per_key": r.verify_per_key}
                          for r in runs]}, indent=1))
    plots = plot(runs, args.tag)
    tables = "\n\n".join(t for t in (table(runs), rotation_table(runs), restart_table(runs)) if t)
    print(tables)
    if args.write_readme:
        command = shlex.join(["bench/scale.py", *sys.argv[1:]])
        text = (f"Measured {meta['date']} on `{meta['commit']}` ({meta['machine']}) with "
                f"`.venv/bin/python {command}`: Admin API latency uniform "
                f"{args.latency_ms} ms, keys created {args.concurrency} at a time, raw rate measured in the same "
                f"run.\n\n{tables}\n\n" + "".join(f"![{p.stem}](results/{p.name})\n" for p in plots))
        write_readme(text, args.tag, args.title)


if __name__ == "__main__":
    main()
