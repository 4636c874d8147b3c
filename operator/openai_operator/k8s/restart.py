"""Restart the workloads that use a key once per new credential (VSO's rollout-restart idea).

The pod template of each target gets an annotation naming the key and the credential revision it
has rolled out for. Patching the pod template makes the controller roll the pods; comparing first
makes the step idempotent, so it is safe to repeat after a crash and never restarts twice for one
revision (no restart storm after an operator restart).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client import AppsV1Api
from kubernetes.client.exceptions import ApiException

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


_READERS: dict[str, str] = {
    "Deployment": "namespaced_deployment",
    "StatefulSet": "namespaced_stateful_set",
    "DaemonSet": "namespaced_daemon_set",
}


async def restart_targets(
    apps: AppsV1Api, namespace: str, targets: Sequence[RestartTarget], *, key_name: str, revision: int
) -> RestartResult:
    """Patch each target's pod template unless it already rolled out for ``revision``."""
    annotation = restart_annotation(key_name)
    wanted = f"r{revision}"
    restarted: list[str] = []
    missing: list[str] = []
    for target in targets:
        suffix = _READERS[str(target.kind)]
        read: Callable[..., Any] = getattr(apps, f"read_{suffix}")
        patch: Callable[..., Any] = getattr(apps, f"patch_{suffix}")
        label = f"{target.kind}/{target.name}"
        try:
            found = await asyncio.to_thread(read, target.name, namespace)
        except ApiException as error:
            if error.status == 404:
                missing.append(label)
                continue
            raise classify_api_exception(error, "get", label, resource=f"{str(target.kind).lower()}s",
                                         namespace=namespace) from None
        template_meta = found.spec.template.metadata
        current = (template_meta.annotations or {}).get(annotation) if template_meta is not None else None
        if current == wanted:
            continue
        body = {"spec": {"template": {"metadata": {"annotations": {annotation: wanted}}}}}
        try:
            await asyncio.to_thread(patch, target.name, namespace, body)
        except ApiException as error:
            raise classify_api_exception(error, "patch", label, resource=f"{str(target.kind).lower()}s",
                                         namespace=namespace) from None
        restarted.append(label)
    return RestartResult(tuple(restarted), tuple(missing))
