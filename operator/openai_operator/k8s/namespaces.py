"""Read a namespace's labels, for ``keyPolicy.allowedNamespaces.selector``."""

from __future__ import annotations

import asyncio

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from openai_operator.k8s.errors import classify_api_exception


async def namespace_labels(core: CoreV1Api, namespace: str) -> dict[str, str] | None:
    """The namespace's labels, or ``None`` when it does not exist (being deleted, say)."""
    try:
        found = await asyncio.to_thread(core.read_namespace, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise classify_api_exception(error, "get", f"namespace {namespace}", resource="namespaces") from None
    metadata = found.metadata
    return dict(metadata.labels or {}) if metadata is not None else {}
