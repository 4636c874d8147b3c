"""The last operator module of the run (files run in name order): scan everything the operator
scenarios produced for key material. The test issues a key itself, so it never scans nothing."""

from __future__ import annotations

import json
import secrets
from typing import Any

from harness import Emulator, OperatorProcess
from openai_emulator.wif import ACCESS_TOKEN_PREFIX
from scenario import DELIVERED, KEY_SHAPE, apply, key_manifest, secret_value, wait_ready
from testbed import Kubectl


def test_no_key_material_anywhere(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, operator_logs: Any, namespace: str, project: str
) -> None:
    """Logs, Events, statuses, annotations and labels of this whole module hold no key-shaped string
    (nor any key value a test read from a Secret, nor the admin key)."""
    wait_ready(kubectl, "openaiproject", project)
    apply(kubectl, key_manifest("scanned", namespace, project))
    wait_ready(kubectl, "openaikey", "scanned", "-n", namespace)
    assert secret_value(kubectl, namespace, "scanned") in DELIVERED
    planted = "sk-svcacct-" + secrets.token_urlsafe(40)
    assert KEY_SHAPE.search(f"scanner self-check {planted}")

    sources: dict[str, str] = {}
    for path in sorted(operator_logs.rglob("*.log")):
        sources[str(path)] = path.read_text(errors="replace")
    assert sources, "operator logs were collected"
    sources["events"] = kubectl("get", "events", "-A", "-o", "json").stdout
    for kind in ("openaikeys", "openaiprojects", "openaiidentityproviders", "openaiworkloadidentities"):
        sources[kind] = kubectl("get", kind, "-A", "-o", "json").stdout
    managed = kubectl("get", "configmaps", "-A", "-l", "app.kubernetes.io/managed-by=openai-operator", "-o", "json")
    sources["workload identity ConfigMaps"] = managed.stdout
    secrets_list = json.loads(kubectl("get", "secrets", "-A", "-o", "json").stdout)
    for item in secrets_list["items"]:
        sources[f"secret {item['metadata']['namespace']}/{item['metadata']['name']} metadata"] = json.dumps(
            item["metadata"])
    leaks = {where: len(KEY_SHAPE.findall(text)) + sum(text.count(v) for v in DELIVERED | {emulator.admin_key})
             + text.count(ACCESS_TOKEN_PREFIX)  # workload identity access tokens never reach the operator
             for where, text in sources.items()}
    leaks = {where: found for where, found in leaks.items() if found}
    assert not leaks, f"key material found in: {sorted(leaks)}"
