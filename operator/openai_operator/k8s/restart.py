"""Restart the workloads that use a key once per new credential (VSO's rollout-restart idea).

The pod template of each target gets an annotation naming the key and the credential revision it
has rolled out for. Patching the pod template makes the controller roll the pods; comparing first
makes the step idempotent, so it is safe to repeat after a crash and never restarts twice for one
revision (no restart storm after an operator restart).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from openai_operator.k8s.api import STRATEGIC_MERGE_PATCH, KubeApi, KubeStatusError, resource_path
from openai_operator.k8s.errors import classify_api_exception
from openai_operator.model.resources import GROUP
from openai_operator.model.specs import RestartTarget


def restart_annotation(key_name: str) -> str:
    """``openai.operator.dev/key.<name>``, or a digest when the name would not fit (63 chars)."""
    name = f"key.{key_name}"
    if len(name) > 63:
        name = f"key.{key_name[:40]}-{hashlib.sha256(key_name.encode()).hexdigest()[:10]}"
    return f"{GROUP}/{name}"


@dataclass(frozen=True)
class RestartResult:
    restarted: tuple[str, ...]
    missing: tuple[str, ...]


async def restart_targets(
    api: KubeApi, namespace: str, targets: Sequence[RestartTarget], *, key_name: str, revision: int
) -> RestartResult:
    """Patch each target's pod template unless it already rolled out for ``revision``."""
    annotation = restart_annotation(key_name)
    wanted = f"r{revision}"
    restarted: list[str] = []
    missing: list[str] = []
    for target in targets:
        resource = f"{str(target.kind).lower()}s"
        path = resource_path("apps", "v1", resource, namespace=namespace, name=target.name)
        label = f"{target.kind}/{target.name}"
        try:
            found = await api.read(path)
        except KubeStatusError as error:
            raise classify_api_exception(error, "get", label, resource=resource, namespace=namespace) from None
        if found is None:
            missing.append(label)
            continue
        template_meta = ((found.get("spec") or {}).get("template") or {}).get("metadata") or {}
        if (template_meta.get("annotations") or {}).get(annotation) == wanted:
            continue
        body = {"spec": {"template": {"metadata": {"annotations": {annotation: wanted}}}}}
        try:
            await api.patch(path, body, content_type=STRATEGIC_MERGE_PATCH)
        except KubeStatusError as error:
            raise classify_api_exception(error, "patch", label, resource=resource, namespace=namespace) from None
        restarted.append(label)
    return RestartResult(tuple(restarted), tuple(missing))
