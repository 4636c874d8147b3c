"""Read and patch the operator's own objects (fresh from the apiserver, status through the
``/status`` subresource).

Handlers work on a fresh read, under a per-object lock, and write status themselves before the lock
is released: a timer that runs right after a change handler therefore never acts on stale status
(which could issue a credential twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai_operator.k8s.api import KubeApi, KubeStatusError, resource_path
from openai_operator.k8s.errors import classify_api_exception
from openai_operator.model.resources import GROUP, KEY_PLURAL, PROJECT_PLURAL, VERSION


async def read_object(api: KubeApi, path: str, what: str, resource: str) -> dict[str, Any] | None:
    """The object at ``path`` fresh from the apiserver, or ``None`` when there is none."""
    try:
        return await api.read(path)
    except KubeStatusError as error:
        raise classify_api_exception(error, "get", what, resource=resource) from None


async def patch_object_status(api: KubeApi, path: str, status: Mapping[str, Any], what: str, resource: str) -> None:
    """A merge patch of ``status`` at ``path`` (a ``/status`` subresource); an object deleted meanwhile
    has nothing left to record."""
    try:
        await api.patch(path, {"status": dict(status)})
    except KubeStatusError as error:
        if error.status != 404:
            raise classify_api_exception(error, "patch", f"{what} status", resource=f"{resource}/status") from None


class ObjectClient:
    """OpenAIKey and OpenAIProject objects, and Kopf's peering object."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    async def get_key(self, namespace: str, name: str) -> dict[str, Any] | None:
        path = resource_path(GROUP, VERSION, KEY_PLURAL, namespace=namespace, name=name)
        return await read_object(self._api, path, f"OpenAIKey {namespace}/{name}", KEY_PLURAL)

    async def patch_key_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        path = resource_path(GROUP, VERSION, KEY_PLURAL, namespace=namespace, name=name, subresource="status")
        await patch_object_status(self._api, path, status, f"OpenAIKey {namespace}/{name}", KEY_PLURAL)

    async def get_project(self, name: str) -> dict[str, Any] | None:
        path = resource_path(GROUP, VERSION, PROJECT_PLURAL, name=name)
        return await read_object(self._api, path, f"OpenAIProject {name}", PROJECT_PLURAL)

    async def patch_project_status(self, name: str, status: Mapping[str, Any]) -> None:
        path = resource_path(GROUP, VERSION, PROJECT_PLURAL, name=name, subresource="status")
        await patch_object_status(self._api, path, status, f"OpenAIProject {name}", PROJECT_PLURAL)

    async def cluster_peering_exists(self, name: str) -> bool:
        """Whether Kopf's ``ClusterKopfPeering`` object ``name`` exists (replicas wait without it)."""
        path = resource_path("kopf.dev", "v1", "clusterkopfpeerings", name=name)
        found = await read_object(self._api, path, f"ClusterKopfPeering {name}", "clusterkopfpeerings")
        return found is not None
