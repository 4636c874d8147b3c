"""Read a namespace's labels, for ``keyPolicy.allowedNamespaces.selector``."""

from __future__ import annotations

from openai_operator.k8s.api import KubeApi, resource_path
from openai_operator.k8s.objects import read_object


async def namespace_labels(api: KubeApi, namespace: str) -> dict[str, str] | None:
    """The namespace's labels, or ``None`` when it does not exist (being deleted, say)."""
    found = await read_object(api, resource_path("", "v1", "namespaces", name=namespace), f"namespace {namespace}",
                              "namespaces")
    if found is None:
        return None
    return dict((found.get("metadata") or {}).get("labels") or {})
