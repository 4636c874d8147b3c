"""Building blocks of the operator scenarios: manifests, reads through kubectl, waits on conditions.

``DELIVERED`` collects every key value a test read from a Secret, so the final key-material scan can
look for each of them verbatim in logs, Events and object metadata.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any

from harness import Emulator, OperatorProcess
from support import wait_for
from testbed import Kubectl

KEY_SHAPE = re.compile(r"sk-(?:svcacct-|proj-|admin-)?[A-Za-z0-9_\-]{20,}")
DELIVERED: set[str] = set()
"""Every key value a test read from a Secret; the final scan looks for each of them verbatim."""


def apply(kubectl: Kubectl, manifest: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(manifest))


def project_manifest(name: str, /, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIProject",
            "metadata": {"name": name}, "spec": spec}


def key_manifest(name: str, namespace: str, project: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIKey",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"projectRef": {"name": project}, "secret": {}, **spec}}


def get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    result = kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def condition(obj: dict[str, Any], type: str = "Ready") -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == type:
            return c  # type: ignore[no-any-return]
    return {}


def secret_value(kubectl: Kubectl, namespace: str, name: str, field: str = "OPENAI_API_KEY") -> str | None:
    secret = get(kubectl, "secret", name, "-n", namespace)
    data = secret.get("data", {})
    if field not in data:
        return None
    value = base64.b64decode(data[field]).decode()
    if field == "OPENAI_API_KEY":
        DELIVERED.add(value)
    return value


def account_name_pattern(namespace: str, name: str) -> re.Pattern[str]:
    """Operator-made service-account names of the key ``namespace/name``: ``k8s.<instance>.<ns>.<name>.r<N>``."""
    return re.compile(rf"^k8s\.(?:[a-z0-9]{{1,12}}\.)?{re.escape(namespace)}\.{re.escape(name)}\.r[0-9]+$")


def live_accounts_for(emulator: Emulator, project_id: str, namespace: str, name: str) -> list[dict[str, Any]]:
    pattern = account_name_pattern(namespace, name)
    return [a for a in emulator.project(project_id)["service_accounts"] if pattern.match(a["name"])]


def wait_ready(kubectl: Kubectl, *args: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (obj := get(kubectl, *args)) and condition(obj).get("status") == "True" and obj,
                    timeout=timeout, what=f"{' '.join(args)} to be Ready")


def operator_instance_id(kubectl: Kubectl) -> str:
    """The instance id the operator derives by default: 8 hex digits of the kube-system namespace uid."""
    uid = get(kubectl, "namespace", "kube-system")["metadata"]["uid"]
    return str(uid).replace("-", "")[:8]

def key_status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return get(kubectl, "openaikey", name, "-n", namespace).get("status", {})  # type: ignore[no-any-return]

def wait_revision(kubectl: Kubectl, namespace: str, name: str, above: int, timeout: float = 60) -> dict[str, Any]:
    """Until a rotation past revision ``above`` is complete (promoted, Rotating not True, Ready)."""
    def done() -> dict[str, Any] | None:
        key = get(kubectl, "openaikey", name, "-n", namespace)
        status = key.get("status", {})
        if status.get("revision", 0) > above and condition(key, "Rotating").get("status") != "True" \
                and condition(key).get("status") == "True":
            return status  # type: ignore[no-any-return]
        return None
    return wait_for(done, timeout=timeout, what=f"{namespace}/{name} to rotate past r{above}")


def start_peered(kubectl: Kubectl, active: OperatorProcess) -> tuple[str, OperatorProcess]:
    """Run ``active`` (priority 20) and a standby (priority 10) under a fresh ClusterKopfPeering.

    They start one after the other, as a rollout does: two replicas started in the same instant both
    act until each sees the other's peering record (Kopf's peering has that window). Returns the
    peering name and the standby, which the caller stops.
    """
    peering = f"openai-operator-{secrets.token_hex(3)}"
    apply(kubectl, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}})
    standby = OperatorProcess(env=active.env, log_dir=active.log_dir / "standby")
    standby.log_dir.mkdir()
    for replica, priority in ((active, 20), (standby, 10)):
        replica.standalone = False
        replica.extra_args = [f"--peering-name={peering}", f"--priority={priority}"]
        replica.start()
        wait_for(lambda p=priority: p in [v.get("priority") for v in  # type: ignore[misc]
                                           get(kubectl, "clusterkopfpeering", peering).get("status", {}).values()],
                 timeout=30, what=f"the replica with priority {priority} to announce itself")
    return peering, standby
