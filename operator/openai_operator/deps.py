"""Everything the operations need from the outside world, built once at startup and closed at exit.

Nothing is created at import time: ``handlers.lifecycle`` calls :func:`build_deps` in Kopf's
startup handler and keeps the result in Kopf's ``memo``; tests build their own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from openai_operator.config import OperatorConfig
from openai_operator.k8s.api import KubeApi, KubeConnection, resource_path
from openai_operator.k8s.identity import IdentityKube
from openai_operator.k8s.objects import ObjectClient
from openai_operator.k8s.shards import ShardMembership
from openai_operator.metrics import OperatorMetrics
from openai_operator.model.naming import INSTANCE_ID_PATTERN
from openai_operator.model.shards import serves_namespace
from openai_operator.openai import AdminClient, new_http_client
from openai_operator.openai.budget import RequestBudget
from openai_operator.ports import AdminApi, IdentityAdmin, IdentityCluster, ObjectStore
from openai_operator.reconcile.quota import QuotaLedger

if TYPE_CHECKING:
    import hvac

    from openai_operator.stores.vault import VaultClientCache


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    config: OperatorConfig
    admin: AdminApi
    kube: KubeApi
    """Secrets, namespaces and workloads (the stores and restarts); ``objects`` reads the operator's kinds."""
    objects: ObjectStore
    metrics: OperatorMetrics
    vault_client_factory: Callable[[], hvac.Client] | None
    clock: Callable[[], datetime] = utc_now
    locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(default_factory=weakref.WeakValueDictionary)
    """Held only while in use: whoever holds or awaits a lock keeps it alive, so the lock of a deleted
    object goes with its last user instead of staying for the life of the process."""
    instance_id: str = "local"
    """Carried in every service-account name this installation makes (see ``model.naming``)."""
    quota: QuotaLedger = field(default_factory=QuotaLedger)
    identity_admin: IdentityAdmin | None = None
    """Workload identity federation's Admin API calls (the same client as ``admin``; ``None`` in tests
    that do not need it)."""
    identity_cluster: IdentityCluster | None = None
    shard: ShardMembership | None = None
    """This replica's shard membership when the operator is sharded (``--shard``)."""
    _closers: list[Callable[[], object]] = field(default_factory=list)

    def lock(self, kind: str, namespace: str | None, name: str) -> asyncio.Lock:
        """One lock per object: a timer and a change handler never work on the same object at once."""
        key = f"{kind}/{namespace or ''}/{name}"
        found = self.locks.get(key)
        if found is None:
            found = self.locks[key] = asyncio.Lock()
        return found

    def serves(self, namespace: str) -> bool:
        """Whether this operator serves ``namespace`` (its ``--namespace`` patterns; none: every one)."""
        return serves_namespace(self.config.watched_namespaces, namespace)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            result = closer()
            if asyncio.iscoroutine(result):
                await result


async def _cluster_instance_id(kube: KubeApi) -> str:
    """The default instance id: 8 hex digits of the ``kube-system`` namespace's uid (stable per cluster)."""
    found = await kube.get(resource_path("", "v1", "namespaces", name="kube-system"))
    uid = (found.get("metadata") or {}).get("uid")
    if not uid:
        raise ValueError("the kube-system namespace has no uid: set --instance-id")
    return str(uid).replace("-", "")[:8]


async def build_deps(config: OperatorConfig, metrics: OperatorMetrics,
                     kube_connection: Callable[[], KubeConnection]) -> Deps:
    """``kube_connection`` gives the apiserver's address and credentials (again after a 401)."""
    http = new_http_client()
    # One budget for the process: every handler, sweep and poller draws on the same allowance.
    budget = RequestBudget(config.admin_api_rate, burst=config.admin_api_burst,
                           on_wait=metrics.observe_admin_budget_wait)
    admin = AdminClient(http, admin_key=config.admin_key, base_url=config.base_url,
                        observer=metrics.observe_admin_request, budget=budget)
    kube = KubeApi(kube_connection)
    # One cached, renewed Vault client; its login token is revoked on close.
    vault_cache: VaultClientCache | None = None
    vault_factory: Callable[[], hvac.Client] | None = None
    if config.vault_addr:
        from openai_operator.stores.vault import VaultClientCache  # hvac only with Vault configured

        vault_cache = VaultClientCache(
            config.vault_addr,
            token=config.vault_token.reveal() if config.vault_token else None,
            kubernetes_role=config.vault_kubernetes_role,
        )
        vault_factory = vault_cache

    configured = config.instance_id
    instance_id = configured if configured else await _cluster_instance_id(kube)
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
        raise ValueError(f"instance id {instance_id!r} must match {INSTANCE_ID_PATTERN.pattern}")
    deps = Deps(
        config=config,
        admin=admin,
        kube=kube,
        objects=ObjectClient(kube),
        metrics=metrics,
        vault_client_factory=vault_factory,
        instance_id=instance_id,
        identity_admin=admin,
        identity_cluster=IdentityKube(kube),
    )
    if config.shard is not None:
        deps.shard = ShardMembership(kube, config.shard, config.shard_member,
                                     config.shard_lease_namespace, config.watched_namespaces)
    deps._closers.extend([http.aclose, kube.aclose])
    if vault_cache is not None:  # closed first (closers run in reverse): revokes its token
        deps._closers.append(vault_cache.aclose)
    return deps
