"""Instruments for the failure-path tests: watch what a destination holds, count Admin API calls per
project, deny writes with admission policies, and read metrics.

- :class:`KeyWatch` polls a destination (a Secret, a Vault path) and checks every key it finds on the
  emulator's data plane (``GET /v1/models/{model}``, a route the verification faults on
  ``/v1/models`` do not match). A *violation* is a key the destination still held after the data plane
  refused it: the read is repeated after a refusal, so a key that was replaced or removed in between
  does not count.
- :class:`ApiCounter` is a fault rule that injects nothing: the emulator counts the requests it
  matches, and its glob may name a concrete path, so it counts one project's calls (the emulator's
  own call log aggregates by route template, across projects).
- :func:`deny_with_policy` installs a ValidatingAdmissionPolicy and its binding on the real
  apiserver and waits until a server-side dry run is refused, so the denial is known to be in force.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hvac

from harness import Emulator, OperatorProcess
from kube_rest import KubeRest, secret_path
from openai_emulator.keys import redact
from scenario import DELIVERED, condition, get
from support import wait_for
from testbed import Kubectl

LIVENESS_MODEL = "gpt-4o-mini"
SERVICE_ACCOUNTS = "/v1/organization/projects/{project_id}/service_accounts"


# --- what a destination holds ----------------------------------------------------------------------


@dataclass
class Observation:
    at: float
    value: str | None
    status: int | None
    """The data plane's answer for ``value`` (``None`` when the destination held nothing)."""

    def __repr__(self) -> str:  # never print a key, not even in a failed assertion
        shown = None if self.value is None else redact(self.value)
        return f"Observation(at={self.at:.1f}, value={shown!r}, status={self.status})"


@dataclass
class KeyWatch:
    """Poll ``read`` every ``interval`` and check each key it returns on the data plane."""

    what: str
    read: Callable[[], str | None]
    emulator: Emulator
    interval: float = 0.25
    observations: list[Observation] = field(default_factory=list)
    violations: list[Observation] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> KeyWatch:
        with httpx.Client(timeout=10) as client:  # the first observation happens before start returns
            self._observe_once(client)
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.what}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> KeyWatch:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def values(self) -> list[str]:
        """Every distinct key the destination held, in the order first seen."""
        seen: list[str] = []
        for o in self.observations:
            if o.value is not None and o.value not in seen:
                seen.append(o.value)
        return seen

    def since(self, at: float) -> list[Observation]:
        return [o for o in self.observations if o.at >= at]

    def assert_never_held_a_dead_key(self) -> None:
        assert self.observations, f"{self.what} was never observed"
        assert not self.violations, (
            f"{self.what} held a key the data plane refused, at {len(self.violations)} observation(s): "
            f"{[(round(v.at, 1), (v.value or '')[-4:], v.status) for v in self.violations[:5]]}"
        )

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.interval):
                self._observe_once(client)

    def _read(self) -> tuple[bool, str | None]:
        try:
            return True, self.read()
        except Exception:  # a destination that cannot be read right now is not an observation
            self.errors += 1
            return False, None

    def _observe_once(self, client: httpx.Client) -> None:
        ok, value = self._read()
        if not ok:
            return
        at = time.monotonic()
        if value is None:
            self.observations.append(Observation(at, None, None))
            return
        DELIVERED.add(value)
        status = data_plane_status(client, self.emulator, value)
        observation = Observation(at, value, status)
        self.observations.append(observation)
        if status != 200:
            ok, again = self._read()
            if ok and again == value:
                self.violations.append(observation)


def data_plane_status(client: httpx.Client, emulator: Emulator, value: str) -> int:
    response = client.get(f"{emulator.base_url}/models/{LIVENESS_MODEL}",
                          headers={"Authorization": f"Bearer {value}"})
    return response.status_code


def live(emulator: Emulator, value: str | None) -> bool:
    """Whether ``value`` is a working key (checked on a data-plane route verification faults miss)."""
    if not value:
        return False
    with httpx.Client(timeout=10) as client:
        return data_plane_status(client, emulator, value) == 200


def assert_live(emulator: Emulator, value: str | None, message: str) -> None:
    """Fail with ``message`` unless ``value`` is a working key (the failure shows only its redacted form)."""
    if not live(emulator, value):
        raise AssertionError(f"{message} (key {redact(value) if value else value!r})")


def assert_dead(emulator: Emulator, value: str | None, message: str) -> None:
    if value is None or live(emulator, value):
        raise AssertionError(f"{message} (key {redact(value) if value else value!r})")


def shown(values: list[str]) -> list[str]:
    """Keys as a failed assertion may print them: redacted."""
    return [redact(v) for v in values]


def secret_reader(
    kubeconfig: Path, namespace: str, name: str, field: str = "OPENAI_API_KEY"
) -> Callable[[], str | None]:
    kube = KubeRest(kubeconfig)

    def read() -> str | None:
        secret = kube.read(secret_path(namespace, name))
        if secret is None:
            return None
        data = (secret.get("data") or {}).get(field)
        return None if data is None else base64.b64decode(data).decode()

    return read


def vault_reader(address: str, token: str, path: str, mount: str = "secret",
                 field: str = "api_key") -> Callable[[], str | None]:
    client = hvac.Client(url=address, token=token)

    def read() -> str | None:
        try:
            stored = client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount,
                                                              raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        value = stored["data"]["data"].get(field)
        return value if isinstance(value, str) else None

    return read


def key_id_of(emulator: Emulator, project_id: str, value: str | None) -> str | None:
    """The id of the live key whose value is ``value`` (matched by its redacted form), if any."""
    if not value:
        return None
    redacted = redact(value)
    for account in emulator.project(project_id)["service_accounts"]:
        for key in account["api_keys"]:
            if key["redacted_value"] == redacted:
                return key["id"]  # type: ignore[no-any-return]
    return None


def account_ids(emulator: Emulator, project_id: str) -> set[str]:
    return {a["id"] for a in emulator.project(project_id)["service_accounts"]}


# --- counting one project's Admin API calls ---------------------------------------------------------


@dataclass
class ApiCounter:
    """Counts requests whose route template or concrete path matches ``route`` (a glob)."""

    emulator: Emulator
    route: str
    method: str = "*"
    id: str = ""

    def __post_init__(self) -> None:
        self.id = self.emulator.add_fault({"route": self.route, "method": self.method})["id"]

    def count(self) -> int:
        for rule in self.emulator.faults():
            if rule["id"] == self.id:
                return int(rule["matched"])
        raise AssertionError(f"the counting rule {self.id} for {self.method} {self.route} is gone")

    def remove(self) -> None:
        remove_fault(self.emulator, self.id)


def remove_fault(emulator: Emulator, fault_id: str) -> None:
    httpx.delete(f"{emulator.control}/faults/{fault_id}", timeout=10)


def fault_rule(emulator: Emulator, fault_id: str) -> dict[str, Any]:
    return next((r for r in emulator.faults() if r["id"] == fault_id), {})


def service_accounts_path(project_id: str) -> str:
    return SERVICE_ACCOUNTS.format(project_id=project_id)


def wait_inventory_passes(emulator: Emulator, project_id: str, passes: int = 2, timeout: float = 60) -> None:
    """Until the project's service accounts were listed ``passes`` times from now on (the inventory's
    paged list; a key lists only right before it issues)."""
    counter = ApiCounter(emulator, service_accounts_path(project_id), "GET")
    try:
        wait_for(lambda: counter.count() >= passes, timeout=timeout,
                 what=f"{passes} inventory passes over {project_id}")
    finally:
        counter.remove()


# --- admission policies that deny writes ------------------------------------------------------------


def deny_with_policy(
    kubectl: Kubectl,
    name: str,
    *,
    namespace: str,
    group: str,
    resource: str,
    expression: str,
    message: str,
    probe: Callable[[], bool],
) -> None:
    """A ValidatingAdmissionPolicy (+ binding, ``Deny``) refusing UPDATEs of ``resource`` in ``namespace``
    that fail ``expression``; returns once ``probe`` (a server-side dry run) is refused."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [group], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": [resource],
            }]},
            "validations": [{"expression": expression, "message": message}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]}))
    wait_for(probe, timeout=60, what=f"the admission policy {name} to deny")


def lift_policy(kubectl: Kubectl, name: str) -> None:
    kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
    kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found")


def refused(result: Any, message: str) -> bool:
    return bool(result.returncode != 0 and message in result.stderr)


# --- metrics, status, events ------------------------------------------------------------------------


def metric(operator: OperatorProcess, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when there is none)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(?P<labels>[^}}]*)\}})?\s+(?P<value>\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match["value"])
    return total


def apiserver_metric(kubectl: Kubectl, name: str, **labels: str) -> float:
    text = kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total




def wait_condition(kubectl: Kubectl, namespace: str | None, kind: str, name: str, type: str = "Ready", *,
                   status: str | None = None, reason: str | None = None, timeout: float = 60) -> dict[str, Any]:
    """Until the object's condition ``type`` has ``status`` and/or ``reason``; returns the object."""
    where = ["-n", namespace] if namespace else []

    def probe() -> dict[str, Any] | None:
        obj = get(kubectl, kind, name, *where)
        c = condition(obj, type)
        if c and (status is None or c.get("status") == status) and (reason is None or c.get("reason") == reason):
            return obj
        return None

    return wait_for(probe, timeout=timeout,
                    what=f"{kind} {name}: {type}={status or '*'} reason {reason or '*'}")




def events_for(kubectl: Kubectl, namespace: str, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={name}" + (f",reason={reason}" if reason else "")
    return get(kubectl, "events", "-n", namespace, "--field-selector", selector).get("items", [])  # type: ignore[no-any-return]


@contextmanager
def watching(*watches: KeyWatch) -> Iterator[tuple[KeyWatch, ...]]:
    for watch in watches:
        watch.start()
    try:
        yield watches
    finally:
        for watch in watches:
            watch.stop()
