"""The Kubernetes side of workload identity: the issuer's discovery document and JWKS, the two kinds'
objects, the ConfigMap an identity publishes, and the workloads it patches.

The issuer is read from the apiserver itself (``/.well-known/openid-configuration``, then
``/openid/v1/jwks``): the discovery document's ``jwks_uri`` names the issuer's public host, which
the operator may not reach, while the apiserver serves the same key set. Both are non-resource
URLs, so the operator's ClusterRole grants ``get`` on them by name.

Workload patches are idempotent: the operator computes the pod template's projected token volume,
mounts and environment, and patches only when they differ (strategic merge: volumes by name, mounts
by path, env by name, so other entries are kept).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openai_operator.errors import DestinationConflictError, TransientError
from openai_operator.k8s.api import STRATEGIC_MERGE_PATCH, KubeApi, KubeStatusError, resource_path
from openai_operator.k8s.errors import classify_api_exception
from openai_operator.k8s.objects import patch_object_status, read_object
from openai_operator.model.identity import TOKEN_MOUNT_DIR, WorkloadRef
from openai_operator.model.resources import (
    GROUP,
    IDENTITY_PROVIDER_PLURAL,
    VERSION,
    WORKLOAD_IDENTITY_KIND,
    WORKLOAD_IDENTITY_PLURAL,
)

__all__ = ["IdentityKube", "Issuer", "WorkloadPatchResult"]

VOLUME_NAME = "openai-workload-identity"
MANAGED_BY = {"app.kubernetes.io/managed-by": "openai-operator"}
CONFIG_ANNOTATION = f"{GROUP}/workload-identity-config"
"""On the pod template: a digest of the ConfigMap data, so a changed provider or account id rolls the pods."""


@dataclass(frozen=True)
class Issuer:
    issuer: str
    jwks: Mapping[str, Any]


@dataclass(frozen=True)
class WorkloadPatchResult:
    patched: tuple[str, ...]
    missing: tuple[str, ...]


class IdentityKube:
    """Kubernetes calls of the workload-identity lifecycle."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    # --------------------------------------------------------------------------------- issuer

    async def _get_json(self, path: str) -> Mapping[str, Any]:
        try:
            return await self._api.get(path)
        except KubeStatusError as error:  # an answer that is not JSON counts as no answer (transient)
            raise classify_api_exception(error, "get", path, resource=f"the non-resource URL {path}") from None

    async def read_issuer(self) -> Issuer:
        """The service-account issuer and its key set, as the apiserver publishes them."""
        discovery = await self._get_json("/.well-known/openid-configuration")
        issuer = discovery.get("issuer")
        if not isinstance(issuer, str) or not issuer:
            raise TransientError("/.well-known/openid-configuration has no issuer")
        jwks = await self._get_json("/openid/v1/jwks")
        if not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
            raise TransientError("/openid/v1/jwks has no keys")
        return Issuer(issuer, jwks)

    # -------------------------------------------------------------------------------- objects

    async def get_identity_provider(self, name: str) -> dict[str, Any] | None:
        path = resource_path(GROUP, VERSION, IDENTITY_PROVIDER_PLURAL, name=name)
        return await read_object(self._api, path, f"OpenAIIdentityProvider {name}", IDENTITY_PROVIDER_PLURAL)

    async def patch_identity_provider_status(self, name: str, status: Mapping[str, Any]) -> None:
        path = resource_path(GROUP, VERSION, IDENTITY_PROVIDER_PLURAL, name=name, subresource="status")
        await patch_object_status(self._api, path, status, f"OpenAIIdentityProvider {name}", IDENTITY_PROVIDER_PLURAL)

    async def get_workload_identity(self, namespace: str, name: str) -> dict[str, Any] | None:
        path = resource_path(GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL, namespace=namespace, name=name)
        return await read_object(self._api, path, f"OpenAIWorkloadIdentity {namespace}/{name}",
                                 WORKLOAD_IDENTITY_PLURAL)

    async def patch_workload_identity_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        path = resource_path(GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL, namespace=namespace, name=name,
                             subresource="status")
        await patch_object_status(self._api, path, status, f"OpenAIWorkloadIdentity {namespace}/{name}",
                                  WORKLOAD_IDENTITY_PLURAL)

    # ------------------------------------------------------------------------------ ConfigMap

    async def apply_config_map(self, namespace: str, name: str, data: Mapping[str, str], *, owner_name: str,
                               owner_uid: str) -> None:
        """Create or update the identity's ConfigMap; one not owned by this identity is never touched."""
        owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": WORKLOAD_IDENTITY_KIND, "name": owner_name,
                 "uid": owner_uid, "controller": True}
        body = {"metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY),
                             "ownerReferences": [owner]}, "data": dict(data)}
        what = f"ConfigMap {namespace}/{name}"
        path = resource_path("", "v1", "configmaps", namespace=namespace, name=name)
        try:
            found = await self._api.read(path)
        except KubeStatusError as error:
            raise classify_api_exception(error, "get", what, resource="configmaps", namespace=namespace) from None
        try:
            if found is None:
                await self._api.create(resource_path("", "v1", "configmaps", namespace=namespace), body)
                return
            refs = (found.get("metadata") or {}).get("ownerReferences") or []
            if not any(r.get("uid") == owner_uid for r in refs):
                raise DestinationConflictError(what,
                    "it exists and is not owned by OpenAIWorkloadIdentity {namespace}/{owner_name} "
                    "(spec.configMap.name): it is never overwritten")
            if dict(found.get("data") or {}) != dict(data):
                await self._api.patch(path, {"data": dict(data)})
        except KubeStatusError as error:
            raise classify_api_exception(error, "update", what, resource="configmaps", namespace=namespace) from None

    # ------------------------------------------------------------------------------ workloads

    async def patch_workloads(
        self, namespace: str, workloads: Sequence[WorkloadRef], *, service_account: str, config_map: str,
        data: Mapping[str, str], audience: str, expiration_seconds: int,
    ) -> WorkloadPatchResult:
        """Give each workload the projected token, the environment and the ServiceAccount (only if they differ)."""
        patched: list[str] = []
        missing: list[str] = []
        digest = hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()[:16]
        for workload in workloads:
            label = f"{workload.kind}/{workload.name}"
            resource = f"{str(workload.kind).lower()}s"
            path = resource_path("apps", "v1", resource, namespace=namespace, name=workload.name)
            try:
                found = await self._api.read(path)
            except KubeStatusError as error:
                raise classify_api_exception(error, "get", label, resource=resource, namespace=namespace) from None
            if found is None:
                missing.append(label)
                continue
            template = (found.get("spec") or {}).get("template") or {}
            wanted = pod_template_patch(template, service_account=service_account, config_map=config_map,
                                        keys=sorted(data), audience=audience, expiration_seconds=expiration_seconds,
                                        digest=digest)
            if wanted is None:
                continue
            try:
                await self._api.patch(path, {"spec": {"template": wanted}}, content_type=STRATEGIC_MERGE_PATCH)
            except KubeStatusError as error:
                raise classify_api_exception(error, "patch", label, resource=resource, namespace=namespace) from None
            patched.append(label)
        return WorkloadPatchResult(tuple(patched), tuple(missing))


def pod_template_patch(
    template: Mapping[str, Any], *, service_account: str, config_map: str, keys: Sequence[str], audience: str,
    expiration_seconds: int, digest: str,
) -> dict[str, Any] | None:
    """The strategic-merge patch that gives ``template`` the identity, or ``None`` when it already has it."""
    token = {"path": "token", "audience": audience, "expirationSeconds": expiration_seconds}
    sources = [{"serviceAccountToken": token}]
    volume = {"name": VOLUME_NAME, "projected": {"sources": sources}}
    mount = {"name": VOLUME_NAME, "mountPath": TOKEN_MOUNT_DIR, "readOnly": True}
    env = [{"name": k, "valueFrom": {"configMapKeyRef": {"name": config_map, "key": k}}} for k in keys]
    spec = template.get("spec") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    current_volume = next((v for v in spec.get("volumes") or () if v.get("name") == VOLUME_NAME), None)
    # Compared on what the operator sets: the apiserver fills in defaults (defaultMode, …).
    current_sources = ((current_volume or {}).get("projected") or {}).get("sources")
    ok = (spec.get("serviceAccountName") == service_account
          and current_sources == sources
          and annotations.get(CONFIG_ANNOTATION) == digest)
    containers = []
    for container in spec.get("containers") or ():
        mounts = {m.get("mountPath"): m for m in container.get("volumeMounts") or ()}
        envs = {e.get("name"): e for e in container.get("env") or ()}
        current_mount = mounts.get(TOKEN_MOUNT_DIR) or {}
        if any(current_mount.get(k) != v for k, v in mount.items()) or any(envs.get(e["name"]) != e for e in env):
            ok = False
        containers.append({"name": container.get("name"), "volumeMounts": [mount], "env": env})
    if ok:
        return None
    return {"metadata": {"annotations": {CONFIG_ANNOTATION: digest}},
            "spec": {"serviceAccountName": service_account, "volumes": [volume], "containers": containers}}

