"""The chaos run: many keys over several projects and namespaces, driven by one seeded schedule of
creations, rotations, leaks, edits and deletions, under Admin API and verification faults, an OpenBao
outage and SIGKILLs of the operator; then a settle phase and checks from the emulator's and OpenBao's
own state.

``CHAOS_SEED`` picks the seed (otherwise a random one, printed); the same seed gives the same schedule
of actions and the same fault sequences, so a failure can be replayed (the timing of the operator
itself is not under the seed). The size comes from ``CHAOS_*`` variables (see :class:`Size`), which
``bench/chaos.py`` sets for the full run.

Every check adds to ``problems`` instead of stopping at the first, so one run reports all it found.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import hvac
import hvac.exceptions

from chaos.naming import belongs_to, operator_named
from harness import Emulator, OperatorProcess
from kube_rest import KubeRest, KubeStatusError, resource_path, secret_path, secrets_path
from proxy import TcpProxy
from scenario import DELIVERED, KEY_SHAPE, apply, project_manifest
from testbed import Kubectl, VaultServer

GROUP, VERSION = "openai.operator.dev", "v1alpha1"
ROTATE = "openai.operator.dev/rotate"
REVOKE = "openai.operator.dev/revoke"
ADMIN_ROUTE, VERIFY_ROUTE = "/v1/organization/*", "/v1/models"
SCOPE_CHOICES: tuple[list[str], ...] = ([], ["api.model.read"], ["api.model.read", "api.responses.write"])


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Size:
    """How big a run is. Defaults are the CI size (≤ 4 minutes on two loaded cores)."""

    keys: int = 24
    projects: int = 3
    namespaces: int = 3
    kills: int = 5
    seconds: float = 70.0
    """Length of the chaos phase (the schedule); settling and checks come after."""
    rotate_every: str = "30s"
    grace: str = "3s"
    resync: str = "2s"
    settle_timeout: float = 150.0

    @classmethod
    def from_env(cls) -> Size:
        d = cls()
        return cls(
            keys=_env_int("CHAOS_KEYS", d.keys),
            projects=_env_int("CHAOS_PROJECTS", d.projects),
            namespaces=_env_int("CHAOS_NAMESPACES", d.namespaces),
            kills=_env_int("CHAOS_KILLS", d.kills),
            seconds=_env_float("CHAOS_SECONDS", d.seconds),
            rotate_every=os.environ.get("CHAOS_ROTATE_EVERY", d.rotate_every),
            grace=os.environ.get("CHAOS_GRACE", d.grace),
            resync=os.environ.get("CHAOS_RESYNC", d.resync),
            settle_timeout=_env_float("CHAOS_SETTLE_TIMEOUT", d.settle_timeout),
        )


def _keys_path(namespace: str, name: str | None = None) -> str:
    return resource_path(GROUP, VERSION, "openaikeys", namespace=namespace, name=name)


def seed_from_env() -> int:
    raw = os.environ.get("CHAOS_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1, 2**31)


@dataclass
class Key:
    namespace: str
    name: str
    project: str
    secret: bool
    vault: bool
    rotation: dict[str, Any]
    scopes: list[str]
    deleted: bool = False
    leaks: int = 0
    rotations: int = 0

    @property
    def vault_path(self) -> str:
        return f"openai/{self.namespace}/{self.name}"

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"projectRef": {"name": self.project}, "scopes": list(self.scopes),
                                "rotation": dict(self.rotation)}
        if self.secret:
            spec["secret"] = {}
        if self.vault:
            spec["vault"] = {"path": self.vault_path}
        return spec

    def manifest(self) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "OpenAIKey",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self.spec()}


@dataclass
class Action:
    at: float
    kind: str
    arg: Any = None


@dataclass(repr=False)
class ChaosRun:
    seed: int
    size: Size
    kubeconfig: Path
    kubectl: Kubectl
    emulator: Emulator
    operator: OperatorProcess
    vault: VaultServer
    proxy: TcpProxy
    rng: random.Random = field(init=False)
    """The schedule and every choice an action makes: the same seed, the same sequence."""
    fault_rng: random.Random = field(init=False)
    """Fault seeds and re-armed bursts, whose timing follows the operator's traffic (kept apart so it
    cannot shift the schedule)."""
    tag: str = field(init=False)
    namespaces: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    project_ids: dict[str, str] = field(default_factory=dict)
    keys: dict[tuple[str, str], Key] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    sampled: set[str] = field(default_factory=set, repr=False)
    """Every key value read from a destination during the run (leaks included)."""
    leaked: set[str] = field(default_factory=set, repr=False)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Findings outside the issue's list of checks: reported, not failed on."""
    phases: dict[str, float] = field(default_factory=dict)
    fault_summary: dict[str, int] = field(default_factory=dict)
    _burst_rules: dict[str, str] = field(default_factory=dict)
    _watch_stop: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None
    _dead_seen: set[tuple[str, str, str]] = field(default_factory=set, repr=False)
    suspects: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """Keys named by a problem, with what was seen about them at the time (for the report)."""
    _created: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.fault_rng = random.Random(self.seed ^ 0x5EED_FA17)
        self.tag = f"{self.seed % 46656:03x}"[-3:]
        self.kube = KubeRest(self.kubeconfig)  # the run's own calls; the watcher thread has its own client
        self.bao = hvac.Client(url=self.vault.address, token=self.vault.token)

    # --- set-up ---------------------------------------------------------------------------------

    def set_up(self) -> None:
        for i in range(self.size.namespaces):
            name = f"chaos-{self.tag}-n{i}"
            self.kube.create(resource_path("", "v1", "namespaces"),
                             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            self.namespaces.append(name)
        for i in range(self.size.projects):
            name = f"chaos-{self.tag}-p{i}"
            apply(self.kubectl, project_manifest(name, keyPolicy={"allowedNamespaces": {"names": self.namespaces}}))
            self.projects.append(name)
        deadline = time.monotonic() + 90
        while len(self.project_ids) < len(self.projects):
            for name in self.projects:
                obj = self._get_project(name)
                if obj and _condition(obj, "Ready").get("status") == "True":
                    self.project_ids[name] = obj["status"]["projectId"]
            if time.monotonic() > deadline:
                missing = sorted(set(self.projects) - set(self.project_ids))
                raise AssertionError(f"projects not Ready within 90s: {missing}")
            time.sleep(0.5)

    def start_faults(self) -> None:
        """20 % 5xx (500 and 503), 3 % dropped connections and a latency tail on the Admin API and on
        verification; the 5 % of 429s are one-request bursts that :meth:`_refresh_bursts` re-arms."""
        for target, route, method in (("admin", ADMIN_ROUTE, "*"), ("verify", VERIFY_ROUTE, "GET")):
            self.emulator.add_fault({"route": route, "method": method, "error_rate": 0.10, "error_status": 500,
                                     "drop_rate": 0.03, "seed": self.fault_rng.randrange(2**31),
                                     "latency": {"distribution": "exponential", "mean_ms": 25}})
            self.emulator.add_fault({"route": route, "method": method, "error_rate": 0.11, "error_status": 503,
                                     "seed": self.fault_rng.randrange(2**31)})
            self._burst_rules[target] = ""
        self._refresh_bursts()

    def _refresh_bursts(self) -> None:
        """One 429 (Retry-After 1 or 2 s) in every 16 matching requests: a rule of ``times`` 16 with a
        burst of one, replaced as soon as it expires."""
        rules = {r["id"]: r for r in self.emulator.faults()}
        for target, route, method in (("admin", ADMIN_ROUTE, "*"), ("verify", VERIFY_ROUTE, "GET")):
            current = rules.get(self._burst_rules.get(target, ""))
            if current is None or current["expired"]:
                rule = self.emulator.add_fault({"route": route, "method": method, "rate_limit_burst": 1,
                                                "retry_after": self.fault_rng.choice((1, 2)), "times": 16})
                self._burst_rules[target] = rule["id"]

    # --- the schedule -----------------------------------------------------------------------------

    def schedule(self) -> list[Action]:
        """Every action of the chaos phase, decided up front from the seed."""
        rng, size, span = self.rng, self.size, self.size.seconds
        actions: list[Action] = []
        initial = max(1, int(size.keys * 0.6))
        actions += [Action(0.0, "create") for _ in range(initial)]
        actions += [Action(rng.uniform(2, span * 0.75), "create") for _ in range(size.keys - initial)]
        actions += [Action(rng.uniform(span * 0.15, span * 0.9), "delete") for _ in range(max(1, size.keys // 5))]
        actions += [Action(rng.uniform(3, span), "rotate") for _ in range(max(2, size.keys // 2))]
        actions += [Action(rng.uniform(3, span), "leak") for _ in range(max(2, size.keys // 6))]
        actions += [Action(rng.uniform(3, span), "edit") for _ in range(max(2, size.keys // 3))]
        actions += [Action(rng.uniform(2, span), "sample") for _ in range(max(4, size.keys // 3))]
        actions += [Action(rng.uniform(2, span), "spike", (rng.choice(("admin", "verify")), rng.randint(3, 10),
                                                            rng.randrange(2**31)))
                    for _ in range(max(3, int(span // 15)))]
        actions += [Action(t, "tick") for t in range(2, int(span), 2)]
        # Kills spread over the phase (one per slot), half of them just after a rotate annotation so
        # they land inside a rotation.
        slot = (span - 6) / max(1, size.kills)
        for i in range(size.kills):
            actions.append(Action(4 + slot * i + rng.uniform(0, slot * 0.8), "kill", rng.random() < 0.5))
        cut = rng.uniform(span * 0.2, span * 0.5)
        actions.append(Action(cut, "vault-cut", rng.choice(("reset", "reset", "blackhole"))))
        actions.append(Action(cut + max(10.0, span * 0.2), "vault-restore"))
        actions.sort(key=lambda a: a.at)
        return actions

    def run_schedule(self) -> None:
        started = time.monotonic()
        for action in self.schedule():
            delay = started + action.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.counts[f"action.{action.kind}"] += 1
            getattr(self, "_do_" + action.kind.replace("-", "_"))(action.arg)

    def _live_keys(self) -> list[Key]:
        return [k for k in self.keys.values() if not k.deleted]

    def _pick(self) -> Key | None:
        live = self._live_keys()
        return self.rng.choice(live) if live else None

    def _do_create(self, _: Any) -> None:
        rng = self.rng
        i = self._created
        self._created += 1
        destinations = rng.choices(("secret", "both", "vault"), weights=(5, 3, 2))[0]
        grace = self.size.grace
        rotation: dict[str, Any] = ({"every": self.size.rotate_every, "gracePeriod": grace}
                                    if rng.random() < 0.7 else {"schedule": "* * * * *", "gracePeriod": grace})
        key = Key(namespace=rng.choice(self.namespaces), name=f"k{i:03d}", project=rng.choice(self.projects),
                  secret=destinations != "vault", vault=destinations != "secret", rotation=rotation,
                  scopes=list(rng.choice(SCOPE_CHOICES)))
        self.keys[(key.namespace, key.name)] = key
        self._call("create", lambda: self.kube.create(_keys_path(key.namespace), key.manifest()))

    def _do_delete(self, _: Any) -> None:
        key = self._pick()
        if key is None:
            return
        key.deleted = True
        self._sample(key)
        self._call("delete", lambda: self.kube.delete(
            _keys_path(key.namespace, key.name),
            {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}))

    def _annotate(self, key: Key, annotation: str, token: str) -> None:
        body = {"metadata": {"annotations": {annotation: token}}}
        self._call("annotate", lambda: self.kube.patch(_keys_path(key.namespace, key.name), body))

    def _do_rotate(self, _: Any) -> None:
        key = self._pick()
        if key is not None:
            key.rotations += 1
            self._annotate(key, ROTATE, f"r{key.rotations}-{secrets.token_hex(2)}")

    def _do_leak(self, _: Any) -> None:
        key = self._pick()
        if key is None:
            return
        values = self._sample(key)
        self.leaked |= values
        key.leaks += 1
        self._annotate(key, REVOKE, f"leak{key.leaks}-{secrets.token_hex(2)}")

    def _do_edit(self, _: Any) -> None:
        key = self._pick()
        if key is None:
            return
        what = self.rng.choices(("scopes", "rotation", "add-vault"), weights=(6, 2, 2))[0]
        if what == "add-vault" and key.vault:
            what = "scopes"
        if what == "scopes":
            key.scopes = list(self.rng.choice([s for s in SCOPE_CHOICES if s != key.scopes]))
            patch: dict[str, Any] = {"scopes": key.scopes}
        elif what == "rotation":
            if "every" in key.rotation:
                key.rotation = {"schedule": "* * * * *", "gracePeriod": self.size.grace}
                patch = {"rotation": {"every": None, **key.rotation}}
            else:
                key.rotation = {"every": self.size.rotate_every, "gracePeriod": self.size.grace}
                patch = {"rotation": {"schedule": None, **key.rotation}}
        else:
            key.vault = True
            patch = {"vault": {"path": key.vault_path}}
        self.counts[f"edit.{what}"] += 1
        self._call("edit", lambda: self.kube.patch(_keys_path(key.namespace, key.name), {"spec": patch}))

    def _do_sample(self, _: Any) -> None:
        key = self._pick()
        if key is not None:
            self._sample(key)

    def _do_spike(self, arg: tuple[str, int, int]) -> None:
        target, times, seed = arg
        route, method = (ADMIN_ROUTE, "*") if target == "admin" else (VERIFY_ROUTE, "GET")
        self.emulator.add_fault({"route": route, "method": method, "times": times, "seed": seed,
                                 "latency": {"distribution": "uniform", "min_ms": 1500, "max_ms": 5000}})

    def _do_tick(self, _: Any) -> None:
        self._refresh_bursts()

    def _do_kill(self, inside_rotation: bool) -> None:
        if inside_rotation and (key := self._pick()) is not None:
            key.rotations += 1
            self._annotate(key, ROTATE, f"r{key.rotations}-{secrets.token_hex(2)}")
            time.sleep(self.rng.uniform(0.3, 3.0))
        pause = self.rng.uniform(0.0, 1.5)
        self._ensure_running(live_timeout=60)
        self.operator.kill()
        self.counts["kills"] += 1
        time.sleep(pause)
        self.operator.start()

    def _do_vault_cut(self, mode: str) -> None:
        self.counts[f"vault.cut.{mode}"] += 1
        self.proxy.cut(mode)  # type: ignore[arg-type]
        self.phases["vault cut at"] = time.monotonic()

    def _do_vault_restore(self, _: Any) -> None:
        self.proxy.restore()
        self.phases["vault down (s)"] = time.monotonic() - self.phases.pop("vault cut at")

    def _call(self, what: str, fn: Any) -> None:
        try:
            fn()
        except KubeStatusError as error:
            self.counts[f"refused.{what}.{error.status}"] += 1

    def _ensure_running(self, live_timeout: float) -> None:
        process = self.operator.process
        if process is None or process.exited() is not None:
            self.problems.append(f"the operator had exited on its own (run {self.operator.runs}); restarted")
            self.operator.start()
        try:
            self.operator.wait_live(timeout=live_timeout)
        except AssertionError as error:
            self.problems.append(f"operator run {self.operator.runs} not live: {str(error)[:300]}")

    # --- reading destinations ---------------------------------------------------------------------

    def _secret_value(self, key: Key, kube: KubeRest | None = None) -> str | None:
        secret = (kube or self.kube).read(secret_path(key.namespace, key.name))
        if secret is None:
            return None
        raw = (secret.get("data") or {}).get("OPENAI_API_KEY")
        return None if raw is None else base64.b64decode(raw).decode()

    def _vault_value(self, key: Key) -> str | None:
        try:
            stored = self.bao.secrets.kv.v2.read_secret_version(path=key.vault_path, mount_point="secret",
                                                                raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        value = stored["data"]["data"].get("api_key")
        return value if isinstance(value, str) else None

    def _sample(self, key: Key) -> set[str]:
        values = {v for v in (self._secret_value(key) if key.secret else None,
                              self._vault_value(key) if key.vault else None) if v}
        self.sampled |= values
        DELIVERED.update(values)
        return values

    # --- the workload's view, all along ---------------------------------------------------------

    def start_watching(self) -> None:
        """A thread that keeps reading destinations, round robin, as workloads would, and tries each key
        on a data-plane route that no fault rule covers (``GET /v1/models/<id>``: 401 means revoked).
        A dead key that is still in its destination when read again is a problem: a workload that
        re-reads its Secret (or Vault) would hold a revoked key."""
        self._watcher = threading.Thread(target=self._watch, name="chaos-watcher", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        self._watch_stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)

    def _watch(self) -> None:
        started = time.monotonic()
        with httpx.Client(timeout=10) as client, KubeRest(self.kubeconfig) as kube:
            turn = 0
            while not self._watch_stop.wait(0.25):
                live = [k for k in list(self.keys.values()) if not k.deleted]
                if not live:
                    continue
                key = live[turn % len(live)]
                turn += 1
                for kind in ("secret", "vault"):
                    if not getattr(key, kind):
                        continue
                    try:
                        self._watch_one(client, kube, key, kind, started)
                    except Exception as error:  # the apiserver or OpenBao may hiccup; never stop watching
                        self.counts[f"watch.error.{type(error).__name__}"] += 1

    def _watch_one(self, client: httpx.Client, kube: KubeRest, key: Key, kind: str, started: float) -> None:
        def read(key: Key) -> str | None:
            return self._secret_value(key, kube) if kind == "secret" else self._vault_value(key)

        value = read(key)
        if value is None:
            return
        self.sampled.add(value)
        DELIVERED.add(value)
        self.counts["watch.probes"] += 1
        status = client.get(f"{self.emulator.base_url}/models/chaos-probe",
                            headers={"Authorization": f"Bearer {value}"}).status_code
        if status != 401:
            return
        if key.deleted or read(key) != value:
            self.counts["watch.raced"] += 1  # rotated or deleted between the read and the probe
            return
        if (key.name, kind, value) not in self._dead_seen:
            self._dead_seen.add((key.name, kind, value))
            at = time.monotonic() - started
            self.problems.append(f"{key.namespace}/{key.name}: its {kind} held a revoked key (…{value[-4:]}) at "
                                 f"t+{at:.0f}s, still there when read again")
            obj = self._get_key(key, kube)
            status = obj.get("status", {})
            self.suspects.setdefault((key.namespace, key.name), []).append(
                f"t+{at:.0f}s {kind} …{value[-4:]} dead; status then: revision {status.get('revision')}, "
                f"serviceAccountId {status.get('serviceAccountId')}, "
                f"redactedKey …{str(status.get('redactedKey'))[-4:]}, "
                f"previous {[p.get('serviceAccountId') for p in status.get('previous') or []]}, "
                f"Ready {_condition(obj, 'Ready').get('reason')}, Rotating {_condition(obj, 'Rotating').get('status')}")

    # --- settle -----------------------------------------------------------------------------------

    def settle(self) -> None:
        """Faults cleared, OpenBao reachable, the operator running; rotations stretched to 720h so
        that nothing moves while the checks read; then wait until every key is settled."""
        rules = self.emulator.faults()
        self.fault_summary = {"fault rules": len(rules), "matched": sum(r["matched"] for r in rules),
                              "injected": sum(r["injected"] for r in rules)}
        for call in httpx_calls(self.emulator):
            if call["kind"] in ("admin", "data"):
                status = call["status"]
                self.fault_summary[f"{call['kind']} calls"] = \
                    self.fault_summary.get(f"{call['kind']} calls", 0) + call["count"]
                label = "dropped" if status == 0 else "429" if status == 429 else "5xx" if status >= 500 else None
                if label:
                    self.fault_summary[f"{call['kind']} {label}"] = \
                        self.fault_summary.get(f"{call['kind']} {label}", 0) + call["count"]
        self.emulator.clear_faults()
        self.proxy.restore()
        self._ensure_running(live_timeout=90)
        for key in self._live_keys():
            key.rotation = {"every": "720h", "gracePeriod": self.size.grace}
            patch = {"spec": {"rotation": {"schedule": None, **key.rotation}}}
            self._call("stretch", lambda k=key, p=patch: self.kube.patch(_keys_path(k.namespace, k.name), p))
        deadline = time.monotonic() + self.size.settle_timeout
        unsettled: dict[str, str] = {}
        while time.monotonic() < deadline:
            unsettled = self._unsettled()
            if not unsettled:
                break
            time.sleep(1)
        if unsettled:
            self.problems += [f"not settled after {self.size.settle_timeout:.0f}s: {where}: {why}"
                              for where, why in sorted(unsettled.items())]

    def _unsettled(self) -> dict[str, str]:
        out: dict[str, str] = {}
        listed: list[dict[str, Any]] = self.kube.get(
            resource_path(GROUP, VERSION, "openaikeys"))["items"]  # one read per poll
        by_name = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in listed}
        for key in self.keys.values():
            where = f"{key.namespace}/{key.name}"
            obj = by_name.get((key.namespace, key.name), {})
            if key.deleted:
                if obj:
                    out[where] = "deleted but still present (finalizer not done)"
                continue
            if not obj:
                out[where] = "missing"
                continue
            status = obj.get("status", {})
            annotations = obj["metadata"].get("annotations") or {}
            ready, rotating = _condition(obj, "Ready"), _condition(obj, "Rotating")
            if ready.get("status") != "True":
                out[where] = f"Ready={ready.get('status')} {ready.get('reason')}: {ready.get('message', '')[:200]}"
            elif rotating.get("status") == "True":
                out[where] = "Rotating=True"
            elif status.get("previous"):
                out[where] = f"{len(status['previous'])} previous credential(s) in grace"
            elif status.get("pending"):
                out[where] = "a pending credential"
            elif annotations.get(ROTATE) and annotations[ROTATE] != status.get("rotateToken"):
                out[where] = "rotate annotation not acted on"
            elif annotations.get(REVOKE) and annotations[REVOKE] != status.get("revokeToken"):
                out[where] = "revoke annotation not acted on"
            elif status.get("scopes") is not None and sorted(status["scopes"]) != sorted(key.scopes):
                out[where] = f"scopes {status['scopes']} != spec {key.scopes}"
        return out

    # --- checks -----------------------------------------------------------------------------------

    def check(self) -> None:
        """Everything the issue's "What must show" lists, from the emulator's and OpenBao's state."""
        self.stop_watching()
        live = {(k.namespace, k.name): k for k in self._live_keys()}
        objects = {where: self._get_key(k) for where, k in live.items()}
        self._wait_orphans_gone(live, objects)
        state = self.emulator.state()
        after = {where: self._get_key(k) for where, k in live.items()}  # credentials known on either side
        ours = set(self.project_ids.values())
        accounts = [(p["id"], a) for p in state["projects"] if p["id"] in ours for a in p["service_accounts"]]
        redacted_of = {a["id"]: {k["redacted_value"] for k in a["api_keys"]} for _, a in accounts}
        self.counts["checked.accounts"] = len(accounts)

        # No orphan: every operator-named account belongs to a live key and is one of its credentials.
        for project_id, account in accounts:
            if not operator_named(account["name"]):
                continue
            owners = [w for w, k in live.items() if belongs_to(account["name"], *w)]
            if not owners:
                deleted = [f"{k.namespace}/{k.name}" for k in self.keys.values()
                           if k.deleted and belongs_to(account["name"], k.namespace, k.name)]
                why = f"of deleted key {deleted[0]} (not revoked)" if deleted else "of no key"
                self.problems.append(f"orphan service account {account['name']} ({account['id']}) {why}")
                continue
            key, known = live[owners[0]], set()
            for obj in (objects[owners[0]], after[owners[0]]):
                status = (obj or {}).get("status", {})
                known |= {status.get("serviceAccountId"), (status.get("pending") or {}).get("serviceAccountId")}
                known |= {p.get("serviceAccountId") for p in status.get("previous") or []}
            if account["id"] not in known:
                self.problems.append(f"stray credential {account['name']} ({account['id']}) of {key.namespace}/"
                                     f"{key.name}: not its current, pending or previous one "
                                     f"(current {status.get('serviceAccountId')})")
            elif self.project_ids[key.project] != project_id:
                self.problems.append(f"{account['name']} lives in {project_id}, not in its key's project")

        # Every live key: Ready, its current account exists, every destination holds its current key.
        for where, key in live.items():
            label = f"{key.namespace}/{key.name}"
            obj = self._get_key(key)  # fresh: the destinations are compared with what status says now
            status = obj.get("status", {})
            settled = (objects[where] or {}).get("status", {})
            if status.get("revision") != settled.get("revision"):
                rotating = _condition(obj, "Rotating")
                self._flag(key, f"{label} rotated after settling, with no trigger: r{settled.get('revision')} -> "
                                f"r{status.get('revision')} (Rotating {rotating.get('status')} "
                                f"{rotating.get('reason')}: {rotating.get('message', '')[:160]})")
                state = self.emulator.state()  # the new credential was minted after the first read
                redacted_of |= {a["id"]: {k["redacted_value"] for k in a["api_keys"]}
                                for p in state["projects"] if p["id"] in ours for a in p["service_accounts"]}
            if _condition(obj, "Ready").get("status") != "True":
                self._flag(key, f"{label} is not Ready: {_condition(obj, 'Ready')}")
            generation, observed = obj.get("metadata", {}).get("generation"), status.get("observedGeneration")
            if observed is not None and observed != generation:
                self.counts["checked.stale observedGeneration"] += 1
                if not any(n.startswith("status.observedGeneration") for n in self.notes):
                    self.notes.append(f"status.observedGeneration lags metadata.generation (first: {label}, "
                                      f"{observed} < {generation}); count under checked")
            if _condition(obj, "Degraded").get("status") == "True":
                self._flag(key, f"{label} is Degraded: {_condition(obj, 'Degraded')}")
            current = status.get("serviceAccountId")
            if current not in redacted_of:
                self._flag(key, f"{label}: its current service account {current} does not exist upstream")
            destinations = {"secret": self._secret_value(key) if key.secret else None,
                            "vault": self._vault_value(key) if key.vault else None}
            for kind, wanted in (("secret", key.secret), ("vault", key.vault)):
                if not wanted:
                    continue
                self.counts[f"checked.destinations.{kind}"] += 1
                value = destinations[kind]
                if value is None:
                    self._flag(key, f"{label}: {kind} destination holds no key")
                    continue
                self.sampled.add(value)
                DELIVERED.add(value)
                answer = self.emulator.models_status(value)
                if answer != 200:
                    self._flag(key, f"{label}: {kind} destination holds a dead key (GET /v1/models {answer})")
                elif _redact(value) not in redacted_of.get(current, set()):
                    self._flag(key, f"{label}: {kind} destination holds a live key that is not the current one "
                                         f"({_redact(value)[-4:]})")
            if key.secret and key.vault and None not in destinations.values() \
                    and destinations["secret"] != destinations["vault"]:
                self._flag(key, f"{label}: the Secret and Vault hold different keys")

        # Every deleted key: no credential, no Secret, no Vault path.
        for key in self.keys.values():
            if not key.deleted:
                continue
            self.counts["checked.deleted"] += 1
            label = f"{key.namespace}/{key.name}"
            value = self._wait_secret_gone(key) if key.secret else None
            if value is not None:
                self._flag(key, f"deleted {label}: its Secret remains "
                                     f"(key {'live' if self.emulator.models_status(value) == 200 else 'dead'})")
            if key.vault and (value := self._vault_value(key)) is not None:
                self._flag(key, f"deleted {label}: its Vault path remains "
                                     f"(key {'live' if self.emulator.models_status(value) == 200 else 'dead'})")

        # Every key value seen during the run that is no longer current is revoked.
        current_values = set()
        for key in live.values():
            current_values |= {v for v in (self._secret_value(key) if key.secret else None,
                                           self._vault_value(key) if key.vault else None) if v}
        for value in sorted(self.sampled - current_values):
            self.counts["checked.superseded values"] += 1
            answer = self.emulator.models_status(value)
            if answer == 200:
                kind = "leaked" if value in self.leaked else "superseded"
                self.problems.append(f"a {kind} key ({_redact(value)[-4:]}) still works")
        self.counts["checked.leaked values"] = len(self.leaked)
        self._scan_for_key_material()

    def _flag(self, key: Key, problem: str) -> None:
        self.problems.append(problem)
        self.suspects.setdefault((key.namespace, key.name), [])

    def _wait_orphans_gone(self, live: dict[tuple[str, str], Key], objects: dict[Any, Any]) -> None:
        """The inventory runs every few seconds; give it up to 30 s to revoke what it should."""
        ours = set(self.project_ids.values())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = self.emulator.state()
            names = [a["name"] for p in state["projects"] if p["id"] in ours for a in p["service_accounts"]]
            extra = [n for n in names if operator_named(n) and sum(belongs_to(n, *w) for w in live) != 1]
            per_key = Counter(w for n in names for w in live if belongs_to(n, *w))
            if not extra and all(per_key[w] == 1 for w in live):
                return
            time.sleep(1)

    def _wait_secret_gone(self, key: Key) -> str | None:
        deadline = time.monotonic() + 20  # garbage collection by the controller manager
        while (value := self._secret_value(key)) is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        return value

    def _scan_for_key_material(self) -> None:
        sources: dict[str, str] = {}
        for path in sorted(self.operator.log_dir.glob("*.log")):
            sources[f"log {path.name}"] = path.read_text(errors="replace")
        sources["events"] = json.dumps(self.kube.get(resource_path("", "v1", "events")))
        for plural in ("openaikeys", "openaiprojects"):
            sources[plural] = json.dumps(self.kube.get(resource_path(GROUP, VERSION, plural)))
        for namespace in self.namespaces:
            for item in self.kube.get(secrets_path(namespace))["items"]:
                meta = item.get("metadata") or {}
                sources[f"secret {namespace}/{meta.get('name', '?')} metadata"] = json.dumps(meta)
        values = DELIVERED | self.sampled | {self.emulator.admin_key}
        self.counts["checked.scanned sources"] = len(sources)
        for where, text in sources.items():
            found = len(KEY_SHAPE.findall(text)) + sum(text.count(v) for v in values)
            if found:
                self.problems.append(f"key material in {where} ({found} hit(s))")

    # --- teardown -----------------------------------------------------------------------------------

    def tear_down(self) -> None:
        """Best effort: delete what the run created while the operator still runs, so nothing stays
        behind in a shared cluster; then the namespaces and projects."""
        with contextlib.suppress(Exception):
            for key in self._live_keys():
                self._call("teardown", lambda k=key: self.kube.delete(_keys_path(k.namespace, k.name)))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(self._get_key(k) for k in self.keys.values()):
                time.sleep(1)
        for name in self.projects:
            self.kubectl("delete", "openaiproject", name, "--wait=false", check=False)
        for name in self.namespaces:
            self.kubectl("delete", "namespace", name, "--wait=false", check=False)

    # --- report -----------------------------------------------------------------------------------

    def diagnosis(self) -> list[str]:
        """For each key a problem names: what was seen, then its Events in time order."""
        lines: list[str] = []
        for (namespace, name), seen in sorted(self.suspects.items()):
            lines.append(f"  {namespace}/{name}:")
            lines += [f"    seen: {s}" for s in seen]
            try:
                events: list[dict[str, Any]] = self.kube.get(
                    resource_path("", "v1", "events", namespace=namespace),
                    fieldSelector=f"involvedObject.name={name},involvedObject.kind=OpenAIKey")["items"]
            except KubeStatusError:
                continue
            events.sort(key=lambda e: str(_event_stamp(e)))
            for event in events[-25:]:
                stamp = _event_stamp(event)
                if stamp is None:
                    continue
                message = (event.get("message") or "")[:220]
                lines.append(f"    event {stamp:%H:%M:%S} x{event.get('count') or 1} {event.get('reason')}: {message}")
        return lines

    def report(self) -> str:
        live = self._live_keys()
        lines = [
            f"chaos seed {self.seed} (replay: CHAOS_SEED={self.seed}); size {self.size}",
            f"keys: {len(self.keys)} created, {len(self.keys) - len(live)} deleted, {len(live)} live; "
            f"{sum(k.vault for k in self.keys.values())} with a Vault destination; "
            f"projects {len(self.projects)}, namespaces {len(self.namespaces)}",
            f"kills: {self.counts['kills']} (operator runs {self.operator.runs}); vault proxy refused "
            f"{self.proxy.refused} connection(s), forwarded {self.proxy.connections}",
            "faults: " + ", ".join(f"{k} {v}" for k, v in self.fault_summary.items()),
            "actions: " + ", ".join(f"{k.removeprefix('action.')} {v}" for k, v in sorted(self.counts.items())
                                   if k.startswith(("action.", "edit.", "refused.", "vault."))),
            "watcher: " + ", ".join(f"{k.removeprefix('watch.')} {v}" for k, v in sorted(self.counts.items())
                                    if k.startswith("watch.")),
            "checked: " + ", ".join(f"{k.removeprefix('checked.')} {v}" for k, v in sorted(self.counts.items())
                                    if k.startswith("checked.")),
            "phases: " + ", ".join(f"{k} {v:.0f}s" for k, v in self.phases.items()),
            f"notes (not failed on): {len(self.notes)}",
            *(f"  - {n}" for n in self.notes),
            f"problems: {len(self.problems)}",
            *(f"  - {p}" for p in self.problems),
            *(["diagnosis:", *self.diagnosis()] if self.suspects else []),
        ]
        return "\n".join(lines)

    # --- small reads ----------------------------------------------------------------------------------

    def _get_key(self, key: Key, kube: KubeRest | None = None) -> dict[str, Any]:
        return (kube or self.kube).read(_keys_path(key.namespace, key.name)) or {}

    def _get_project(self, name: str) -> dict[str, Any]:
        return self.kube.read(resource_path(GROUP, VERSION, "openaiprojects", name=name)) or {}


def httpx_calls(emulator: Emulator) -> list[dict[str, Any]]:
    import httpx

    return httpx.get(f"{emulator.control}/calls", timeout=10).json()["calls"]  # type: ignore[no-any-return]


def _event_stamp(event: dict[str, Any]) -> datetime | None:
    """When an Event last happened (``lastTimestamp``, else ``eventTime``), as the apiserver wrote it."""
    raw = event.get("lastTimestamp") or event.get("eventTime")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def _condition(obj: dict[str, Any], type: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == type:
            return c  # type: ignore[no-any-return]
    return {}


def _redact(value: str) -> str:
    """The emulator's redacted form (first 8 characters, ``*`` padding, last 4)."""
    return "*" * len(value) if len(value) <= 12 else value[:8] + "*" * (len(value) - 12) + value[-4:]
