"""Shard membership: each replica of a sharded operator keeps a Lease saying which namespaces it serves.

Several operator Deployments (shards) may split a cluster's namespaces between them (``--shard`` and
``--namespace``). Kopf keeps each one to its namespaces, but when a namespace moves from one shard to
another the two run side by side for a while (a rolling update, a slow shutdown): the old shard may
still be in the middle of a pass on a key the new one just started watching. So every key records
the shard that acts on it (``status.shard``), and a shard takes a key over from another only when no
live replica of that shard serves the key's namespace any more. A replica's Lease
(``coordination.k8s.io/v1``, in the operator's namespace) is its word for that: renewed every
:data:`RENEW_SECONDS`, deleted when it stops, stale after :data:`LEASE_SECONDS`, and annotated with
its ``--namespace`` patterns. Reading the Leases costs one list, only when a key names another shard.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog

from openai_operator.k8s.api import KubeApi, KubeStatusError, resource_path
from openai_operator.k8s.errors import classify_api_exception
from openai_operator.model.shards import SHARD_LABEL, SHARD_NAMESPACES_ANNOTATION, lease_name, serves_namespace
from openai_operator.model.timestamps import parse_time

__all__ = ["LEASE_SECONDS", "RENEW_SECONDS", "ShardMembership"]

log = structlog.get_logger(__name__)

RENEW_SECONDS: Final = 10
LEASE_SECONDS: Final = 30
"""A replica not heard of for this long is gone (three missed renewals)."""


@dataclass
class ShardMembership:
    """This replica's place in its shard, and what it can tell of the others."""

    api: KubeApi
    shard: str
    member: str
    """This replica's name (its pod name), unique within the shard."""
    lease_namespace: str
    patterns: tuple[str, ...]

    @property
    def lease(self) -> str:
        return lease_name(self.shard, self.member)

    def serves(self, namespace: str) -> bool:
        return serves_namespace(self.patterns, namespace)

    def _body(self, now: datetime, resource_version: str | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self.lease, "namespace": self.lease_namespace,
            "labels": {SHARD_LABEL: self.shard},
            "annotations": {SHARD_NAMESPACES_ANNOTATION: json.dumps(list(self.patterns))},
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": {"holderIdentity": self.member, "leaseDurationSeconds": LEASE_SECONDS,
                     "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
        }

    def _path(self, name: str | None = None) -> str:
        return resource_path("coordination.k8s.io", "v1", "leases", namespace=self.lease_namespace, name=name)

    async def renew(self) -> None:
        """Create or renew this replica's Lease."""
        now = datetime.now(UTC)
        try:
            found = await self.api.read(self._path(self.lease))
            if found is None:
                await self.api.create(self._path(), self._body(now))
                return
            version = (found.get("metadata") or {}).get("resourceVersion")
            await self.api.replace(self._path(self.lease), self._body(now, version))
        except KubeStatusError as error:
            raise classify_api_exception(error, "update", f"Lease {self.lease_namespace}/{self.lease}",
                                         resource="leases", namespace=self.lease_namespace) from None

    async def keep_renewing(self) -> None:
        """Renew every :data:`RENEW_SECONDS` until cancelled; a failed renewal is logged and retried."""
        while True:
            try:
                await self.renew()
            except Exception as error:  # the next renewal retries; the lease outlives a few misses
                log.warning("shard lease not renewed", lease=self.lease, error=str(error))
            await asyncio.sleep(RENEW_SECONDS)

    async def release(self) -> None:
        """Delete this replica's Lease, so another shard may take its namespaces over at once."""
        try:
            await self.api.delete(self._path(self.lease))
        except KubeStatusError as error:
            if error.status != 404:
                log.warning("shard lease not released", lease=self.lease, status=error.status)

    async def live_owner(self, shard: str, namespace: str) -> str | None:
        """A live replica of ``shard`` that serves ``namespace``, or ``None`` when there is none."""
        try:
            found = await self.api.get(self._path(), params={"labelSelector": f"{SHARD_LABEL}={shard}"})
        except KubeStatusError as error:
            raise classify_api_exception(error, "list", f"Leases of shard {shard}", resource="leases",
                                         namespace=self.lease_namespace) from None
        now = datetime.now(UTC)
        for lease in found.get("items") or ():
            spec, metadata = lease.get("spec") or {}, lease.get("metadata") or {}
            if _alive(spec, now) and serves_namespace(_patterns(metadata), namespace):
                return str(spec.get("holderIdentity") or metadata.get("name") or "?")
        return None


def _alive(spec: Mapping[str, Any], now: datetime) -> bool:
    renewed = parse_time(spec.get("renewTime"))
    if renewed is None:
        return False
    if renewed.tzinfo is None:
        renewed = renewed.replace(tzinfo=UTC)
    duration = spec.get("leaseDurationSeconds") or LEASE_SECONDS
    return bool(now - renewed < timedelta(seconds=duration))


def _patterns(metadata: Mapping[str, Any]) -> Sequence[str]:
    raw = (metadata.get("annotations") or {}).get(SHARD_NAMESPACES_ANNOTATION, "[]")
    try:
        patterns = json.loads(raw)
    except ValueError:
        return ["*"]  # unreadable: assume it serves everything (never take a key from a live replica)
    return [str(p) for p in patterns] if isinstance(patterns, list) else ["*"]
