"""Deliver a key to a Kubernetes Secret in the OpenAIKey's namespace.

Ownership is the ``openai.operator.dev/owner-uid`` label: a Secret carrying this owner's uid is ours
to update and delete; a Secret of the same name without it (or with another uid) is someone else's
and is never touched (:class:`~openai_operator.errors.DestinationConflictError`). The Secret also
gets an ownerReference to the OpenAIKey, so Kubernetes garbage collection removes it with the key
even if the operator is not running.

Updates are a ``replace`` carrying the ``resourceVersion`` that was read, so a concurrent edit makes
the write fail with a conflict instead of being overwritten; and a write whose result would equal
what is stored is skipped. Labels and annotations that others put on the Secret are kept; ours
(``openai.operator.dev/*``) are set exactly; labels and annotations from ``spec.secret`` are set,
and one removed from the spec stays on the Secret until the Secret is recreated.

An apiserver error body can echo the Secret's data, so errors keep only the status and reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import structlog

from openai_operator.errors import (
    ConflictError,
    DestinationConflictError,
    NotFoundError,
)
from openai_operator.k8s.api import KubeApi, KubeStatusError, resource_path
from openai_operator.k8s.errors import classify_api_exception
from openai_operator.model.specs import SecretDestination
from openai_operator.secretvalue import fingerprint
from openai_operator.stores.base import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    KeyMaterial,
    Observed,
    Owner,
    WriteResult,
)

__all__ = [
    "ANNOTATION_KEY_ID",
    "ANNOTATION_REVISION",
    "LABEL_KEY",
    "LABEL_OWNER_UID",
    "OWNER_API_VERSION",
    "OWNER_KIND",
    "KubernetesSecretStore",
    "classify_api_exception",
    "is_owned_by",
    "label_value",
    "owner_reference",
    "secret_body",
    "secret_data",
    "updated_body",
]

log = structlog.get_logger(__name__)

RESERVED_PREFIX: Final = "openai.operator.dev/"
LABEL_KEY: Final = "openai.operator.dev/key"
LABEL_OWNER_UID: Final = "openai.operator.dev/owner-uid"
ANNOTATION_KEY_ID: Final = "openai.operator.dev/key-id"
ANNOTATION_REVISION: Final = "openai.operator.dev/revision"
RELOADER_MATCH: Final = "reloader.stakater.com/match"
"""Stakater Reloader's opt-in for its ``search`` mode: a Deployment annotated
``reloader.stakater.com/search: "true"`` restarts when a Secret it uses that carries this annotation
changes. (Reloader's ``auto`` mode needs nothing on the Secret.)"""
OWNER_API_VERSION: Final = "openai.operator.dev/v1alpha1"
OWNER_KIND: Final = "OpenAIKey"
OPAQUE: Final = "Opaque"

_LABEL_VALUE_MAX: Final = 63
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

T = TypeVar("T")


# --- pure body building -------------------------------------------------------------------------


def label_value(text: str) -> str:
    """``text`` as a valid label value: unchanged if it fits, else shortened with a digest suffix.

    OpenAIKey names are DNS subdomains (up to 253 characters), label values at most 63.
    """
    if len(text) <= _LABEL_VALUE_MAX and _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[: _LABEL_VALUE_MAX - len(digest) - 1].strip("-_.")
    return f"{head}-{digest}" if head else digest


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def secret_data(destination: SecretDestination, material: KeyMaterial) -> dict[str, str]:
    """The Secret's ``data`` (base64): key, project id, and the base URL only when one is set."""
    keys = destination.keys
    data = {
        keys.api_key: _b64(material.api_key.reveal()),
        keys.project_id: _b64(material.project_id),
    }
    if material.base_url:
        data[keys.base_url] = _b64(material.base_url)
    return data


def owner_reference(owner: Owner) -> dict[str, Any]:
    """The controller ownerReference to the OpenAIKey, so garbage collection follows the key."""
    return {
        "apiVersion": OWNER_API_VERSION,
        "kind": OWNER_KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _labels(destination: SecretDestination, owner: Owner) -> dict[str, str]:
    return {
        **destination.labels,
        MANAGED_BY_LABEL: MANAGED_BY,
        LABEL_KEY: label_value(owner.name),
        LABEL_OWNER_UID: owner.uid,
    }


def _annotations(destination: SecretDestination, material: KeyMaterial) -> dict[str, str]:
    return {
        **destination.annotations,
        ANNOTATION_KEY_ID: material.key_id,
        ANNOTATION_REVISION: str(material.revision),
        RELOADER_MATCH: "true",
    }


def secret_body(namespace: str, destination: SecretDestination, owner: Owner, material: KeyMaterial) -> dict[str, Any]:
    """The whole Secret to create (a manifest dict in the API's camelCase)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": destination.name,
            "namespace": namespace,
            "labels": _labels(destination, owner),
            "annotations": _annotations(destination, material),
            "ownerReferences": [owner_reference(owner)],
        },
        "type": OPAQUE,
        "data": secret_data(destination, material),
    }


def _merge(existing: Mapping[str, str] | None, ours: Mapping[str, str]) -> dict[str, str]:
    kept = {k: v for k, v in (existing or {}).items() if not k.startswith(RESERVED_PREFIX)}
    return {**kept, **ours}


def updated_body(existing: Mapping[str, Any], desired: Mapping[str, Any], owner: Owner) -> dict[str, Any]:
    """``existing`` (a Secret as the API returned it) changed to hold ``desired``'s content.

    Data is replaced; our labels, annotations and ownerReference are set; others' labels,
    annotations, non-controller ownerReferences, finalizers and the ``resourceVersion`` are kept, so
    the update is a compare-and-swap against what was read.
    """
    meta = dict(existing.get("metadata") or {})
    wanted = desired["metadata"]
    meta["labels"] = _merge(meta.get("labels"), wanted["labels"])
    meta["annotations"] = _merge(meta.get("annotations"), wanted["annotations"])
    others = [
        ref for ref in meta.get("ownerReferences") or []
        if ref.get("uid") != owner.uid and not ref.get("controller")
    ]
    meta["ownerReferences"] = [*wanted["ownerReferences"], *others]
    body = {key: value for key, value in existing.items() if key not in ("stringData", "data", "metadata")}
    body.update(apiVersion="v1", kind="Secret", metadata=meta, data=dict(desired["data"]))
    body.setdefault("type", OPAQUE)
    return body


def _same(existing: Mapping[str, Any], updated: Mapping[str, Any]) -> bool:
    """Whether writing ``updated`` would change nothing (data compared in constant time)."""
    old_meta, new_meta = existing.get("metadata") or {}, updated["metadata"]
    for field in ("labels", "annotations", "ownerReferences"):
        if (old_meta.get(field) or None) != (new_meta.get(field) or None):
            return False
    old_data, new_data = existing.get("data") or {}, updated["data"]
    if sorted(old_data) != sorted(new_data):
        return False
    return all(hmac.compare_digest(str(old_data[k]).encode(), str(new_data[k]).encode()) for k in new_data)


def is_owned_by(labels: Mapping[str, str] | None, owner: Owner) -> bool:
    """Whether a Secret with these labels belongs to ``owner`` (its uid label equals ``owner.uid``)."""
    return bool(labels) and (labels or {}).get(LABEL_OWNER_UID) == owner.uid


def _foreign_reason(labels: Mapping[str, str] | None) -> str:
    labels = labels or {}
    uid = labels.get(LABEL_OWNER_UID)
    if uid is None:
        return "exists and is not managed by the operator; delete or rename it, or choose another spec.secret.name"
    key = labels.get(LABEL_KEY, "?")
    return f"is owned by another OpenAIKey ({key}, uid {uid}); choose another spec.secret.name"


# --- the store ----------------------------------------------------------------------------------


class KubernetesSecretStore:
    """A :class:`~openai_operator.stores.base.SecretStore` writing ``spec.secret`` in ``namespace``."""

    kind = "secret"

    def __init__(
        self, api: KubeApi, namespace: str, destination: SecretDestination, fingerprint_key: bytes
    ) -> None:
        if not fingerprint_key:
            raise ValueError("fingerprint_key must not be empty")
        self._api = api
        self._namespace = namespace
        self._destination = destination
        self._fingerprint_key = fingerprint_key
        self._seen_absent = False
        """The last :meth:`observe` found no Secret (a store lives for one pass, so this is fresh)."""

    @property
    def name(self) -> str:
        return self._destination.name

    @property
    def _what(self) -> str:
        return f"Secret {self._namespace}/{self._destination.name}"

    def __repr__(self) -> str:
        return f"KubernetesSecretStore({self._namespace}/{self._destination.name})"

    @property
    def _path(self) -> str:
        return resource_path("", "v1", "secrets", namespace=self._namespace, name=self.name)

    async def _call(self, verb: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except KubeStatusError as exc:
            raise classify_api_exception(exc, verb, self._what, resource="secrets", namespace=self._namespace) from None

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self._call("get", lambda: self._api.get(self._path))
        except NotFoundError:
            return None

    def _check_owned(self, existing: Mapping[str, Any], owner: Owner) -> None:
        labels = (existing.get("metadata") or {}).get("labels")
        if not is_owned_by(labels, owner):
            raise DestinationConflictError(self._what, _foreign_reason(labels))

    async def write(self, owner: Owner, material: KeyMaterial) -> WriteResult:
        desired = secret_body(self._namespace, self._destination, owner, material)
        result = WriteResult(
            location=self.name,
            fingerprint=fingerprint(material.api_key, self._fingerprint_key),
            version=None,
            changed=True,
        )
        if self._seen_absent:
            # This pass observed no Secret a moment ago: create it without reading again (a first
            # issue then costs one apiserver call here, not two). Created meanwhile by anyone: the
            # 409 sends this write down the read-check-update path below, ownership check included.
            self._seen_absent = False
            try:
                return await self._create(desired, material, result)
            except ConflictError:
                pass
        existing = await self._read()
        if existing is None:
            return await self._create(desired, material, result)
        self._check_owned(existing, owner)
        updated = updated_body(existing, desired, owner)
        if _same(existing, updated):
            return WriteResult(result.location, result.fingerprint, None, changed=False)
        try:
            await self._call("update", lambda: self._api.replace(self._path, updated))
        except NotFoundError:
            raise ConflictError(f"update {self._what}: deleted concurrently; re-read and retry") from None
        log.info("secret updated", secret_name=self.name, namespace=self._namespace,
                 key_id=material.key_id, revision=material.revision)
        return result

    async def _create(self, desired: dict[str, Any], material: KeyMaterial, result: WriteResult) -> WriteResult:
        collection = resource_path("", "v1", "secrets", namespace=self._namespace)
        await self._call("create", lambda: self._api.create(collection, desired))
        log.info("secret created", secret_name=self.name, namespace=self._namespace,
                 key_id=material.key_id, revision=material.revision)
        return result

    async def observe(self, owner: Owner) -> Observed | None:
        existing = await self._read()
        self._seen_absent = existing is None
        if existing is None:
            return None
        self._check_owned(existing, owner)
        raw = (existing.get("data") or {}).get(self._destination.keys.api_key)
        if raw is None:
            return Observed(fingerprint=None, version=None)
        try:
            value = base64.b64decode(raw, validate=True)
        except ValueError:
            return Observed(fingerprint=None, version=None)
        return Observed(fingerprint=fingerprint(value, self._fingerprint_key), version=None)

    async def release(self, owner: Owner) -> None:
        """Drop the ownerReference, so garbage collection keeps the Secret after the OpenAIKey goes."""
        existing = await self._read()
        if existing is None:
            return
        meta = existing.get("metadata") or {}
        if not is_owned_by(meta.get("labels"), owner):
            return
        kept = [ref for ref in meta.get("ownerReferences") or [] if ref.get("uid") != owner.uid]
        if len(kept) == len(meta.get("ownerReferences") or []):
            return
        released = {**existing, "metadata": {**meta, "ownerReferences": kept}}
        await self._call("update", lambda: self._api.replace(self._path, released))
        log.info("secret released: kept after its key is deleted", secret_name=self.name, namespace=self._namespace)

    async def delete(self, owner: Owner) -> None:
        existing = await self._read()
        if existing is None:
            return
        meta = existing.get("metadata") or {}
        if not is_owned_by(meta.get("labels"), owner):
            log.warning("secret not deleted: not owned by this key", secret_name=self.name, namespace=self._namespace)
            return
        options = {"apiVersion": "v1", "kind": "DeleteOptions",
                   "preconditions": {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}}
        try:
            await self._call("delete", lambda: self._api.delete(self._path, options))
        except NotFoundError:
            return
        log.info("secret deleted", secret_name=self.name, namespace=self._namespace)
