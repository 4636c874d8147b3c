"""Read a namespace's labels, for ``keyPolicy.allowedNamespaces.selector``."""

from __future__ import annotations

from openai_operator.k8s.api import KubeApi, KubeStatusError, resource_path
from openai_operator.k8s.errors import classify_api_exception


async def namespace_labels(api: KubeApi, namespace: str) -> dict[str, str] | None:
    """The namespace's labels, or ``None`` when it does not exist (being deleted, say)."""
    try:
        found = await api.read(resource_path("", "v1", "namespaces", name=namespace))
    except KubeStatusError as error:
        raise classify_api_exception(error, "get", f"namespace {namespace}", resource="namespaces") from None
    if found is None:
        return None
    return dict((found.get("metadata") or {}).get("labels") or {})
