"""Everything the operations need from the outside world, built once at startup and closed at exit.

Nothing is created at import time: ``handlers.lifecycle`` calls :func:`build_deps` in Kopf's
startup handler and keeps the result in Kopf's ``memo``; tests build their own.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import hvac
import kubernetes
from kubernetes.client import ApiClient, AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi

from openai_operator.config import OperatorConfig
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
from openai_operator.stores.vault import VaultClientCache


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    config: OperatorConfig
    admin: AdminApi
    core: CoreV1Api
    apps: AppsV1Api
    objects: ObjectStore
    metrics: OperatorMetrics
    vault_client_factory: Callable[[], hvac.Client] | None
    clock: Callable[[], datetime] = utc_now
    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
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
        return self.locks[f"{kind}/{namespace or ''}/{name}"]

    def serves(self, namespace: str) -> bool:
        """Whether this operator serves ``namespace`` (its ``--namespace`` patterns; none: every one)."""
        return serves_namespace(self.config.watched_namespaces, namespace)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            result = closer()
            if asyncio.iscoroutine(result):
                await result


KUBERNETES_THREADS = 32
"""Concurrent apiserver calls. The ``kubernetes`` client is synchronous, so each call holds a thread
(``asyncio.to_thread``) for its round trip; asyncio's default pool (``cpu_count + 4`` threads, 6 on
two cores) made a thousand keys queue behind six calls at a time. The threads spend their time
waiting on sockets, not holding the GIL; the client's connection pool is sized to match, so no
call opens a new TLS connection because the pool was full."""


def _kubernetes_api_client() -> ApiClient:
    """In a pod, the ServiceAccount; elsewhere, ``KUBECONFIG`` or ``~/.kube/config``."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = KUBERNETES_THREADS
    return ApiClient(configuration)


def _cluster_instance_id(core: CoreV1Api) -> str:
    """The default instance id: 8 hex digits of the ``kube-system`` namespace's uid (stable per cluster)."""
    metadata = core.read_namespace("kube-system").metadata
    uid = metadata.uid if metadata is not None else None
    if not uid:
        raise ValueError("the kube-system namespace has no uid: set --instance-id")
    return str(uid).replace("-", "")[:8]


async def build_deps(config: OperatorConfig, metrics: OperatorMetrics) -> Deps:
    http = new_http_client()
    # One budget for the process: every handler, sweep and poller draws on the same allowance.
    budget = RequestBudget(config.admin_api_rate, burst=config.admin_api_burst,
                           on_wait=metrics.observe_admin_budget_wait)
    admin = AdminClient(http, admin_key=config.admin_key, base_url=config.base_url,
                        observer=metrics.observe_admin_request, budget=budget)
    threads = ThreadPoolExecutor(max_workers=KUBERNETES_THREADS, thread_name_prefix="kubernetes")
    asyncio.get_running_loop().set_default_executor(threads)
    api_client = await asyncio.to_thread(_kubernetes_api_client)
    # One cached, renewed Vault client; its login token is revoked on close.
    vault_cache: VaultClientCache | None = None
    vault_factory: Callable[[], hvac.Client] | None = None
    if config.vault_addr:
        vault_cache = VaultClientCache(
            config.vault_addr,
            token=config.vault_token.reveal() if config.vault_token else None,
            kubernetes_role=config.vault_kubernetes_role,
        )
        vault_factory = vault_cache

    core = CoreV1Api(api_client)
    configured = config.instance_id
    instance_id = configured if configured else await asyncio.to_thread(_cluster_instance_id, core)
    if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
        raise ValueError(f"instance id {instance_id!r} must match {INSTANCE_ID_PATTERN.pattern}")
    deps = Deps(
        config=config,
        admin=admin,
        core=core,
        apps=AppsV1Api(api_client),
        objects=ObjectClient(CustomObjectsApi(api_client)),
        metrics=metrics,
        vault_client_factory=vault_factory,
        instance_id=instance_id,
        identity_admin=admin,
        identity_cluster=IdentityKube(api_client),
    )
    if config.shard is not None:
        deps.shard = ShardMembership(CoordinationV1Api(api_client), config.shard, config.shard_member,
                                     config.shard_lease_namespace, config.watched_namespaces)
    # Closers run in reverse: the threads go last, after everything that may still use them.
    deps._closers.extend([lambda: threads.shutdown(wait=False), http.aclose, api_client.close])
    if vault_cache is not None:  # closed first (closers run in reverse): revokes its token
        deps._closers.append(vault_cache.aclose)
    return deps
