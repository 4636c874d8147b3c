"""Read and patch the operator's own objects (fresh from the apiserver, status through the
``/status`` subresource).

Handlers work on a fresh read, under a per-object lock, and write status themselves before the lock
is released: a timer that runs right after a change handler therefore never acts on stale status
(which could issue a credential twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from openai_operator.k8s.errors import classify_api_exception
from openai_operator.model.resources import GROUP, KEY_PLURAL, PROJECT_PLURAL, VERSION


class ObjectClient:
    """OpenAIKey and OpenAIProject objects through ``CustomObjectsApi`` (sync client, run in threads)."""

    def __init__(self, api: CustomObjectsApi) -> None:
        self._api = api

    async def get_key(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: object = await asyncio.to_thread(
                self._api.get_namespaced_custom_object, GROUP, VERSION, namespace, KEY_PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise classify_api_exception(error, "get", f"OpenAIKey {namespace}/{name}", resource="openaikeys") from None
        return dict(cast(dict[str, Any], found))

    async def patch_key_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        try:
            await asyncio.to_thread(
                self._api.patch_namespaced_custom_object_status,
                GROUP, VERSION, namespace, KEY_PLURAL, name, {"status": dict(status)},
            )
        except ApiException as error:
            if error.status == 404:
                return
            raise classify_api_exception(
                error, "patch", f"OpenAIKey {namespace}/{name} status", resource="openaikeys/status"
            ) from None

    async def get_project(self, name: str) -> dict[str, Any] | None:
        try:
            found: object = await asyncio.to_thread(
                self._api.get_cluster_custom_object, GROUP, VERSION, PROJECT_PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise classify_api_exception(error, "get", f"OpenAIProject {name}", resource="openaiprojects") from None
        return dict(cast(dict[str, Any], found))

    async def patch_project_status(self, name: str, status: Mapping[str, Any]) -> None:
        try:
            await asyncio.to_thread(
                self._api.patch_cluster_custom_object_status,
                GROUP, VERSION, PROJECT_PLURAL, name, {"status": dict(status)},
            )
        except ApiException as error:
            if error.status == 404:
                return
            raise classify_api_exception(
                error, "patch", f"OpenAIProject {name} status", resource="openaiprojects/status"
            ) from None

    async def cluster_peering_exists(self, name: str) -> bool:
        """Whether Kopf's ``ClusterKopfPeering`` object ``name`` exists (replicas wait without it)."""
        try:
            await asyncio.to_thread(self._api.get_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings", name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise classify_api_exception(
                error, "get", f"ClusterKopfPeering {name}", resource="clusterkopfpeerings"
            ) from None
        return True
