"""Start-up, shutdown and the explicit operational settings (STYLE.md practice 15).

- Our own finalizer and annotation prefix, not Kopf's defaults, so this operator never trips over
  another Kopf operator's state on the same objects.
- Peering for HA replicas (only the highest-priority replica acts); ``--standalone`` for tests.
- Kopf posts only warnings from its own logs as Events; our Events are explicit and scrubbed.
- Clients are built here, kept in ``memo.deps``, and closed on cleanup; Kopf and the operator's own
  Kubernetes client log in the same way (:func:`login`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kopf

from openai_operator.config import OperatorConfig
from openai_operator.deps import build_deps
from openai_operator.handlers._wakeups import Wakeups
from openai_operator.k8s.api import KubeConnection
from openai_operator.metrics import OperatorMetrics, start_metrics_server
from openai_operator.model.resources import GROUP, KEY_KIND

FINALIZER = f"{GROUP}/finalizer"
KOPF_PREFIX = f"kopf.{GROUP}"
"""Kopf's own annotations (progress, diff base). Not ``GROUP`` itself: Kopf hides every annotation
under its prefix from change detection, and the user-facing ``openai.operator.dev/rotate`` and
``/revoke`` annotations must trigger the key's handler."""


class _DiffBaseExceptKeys(kopf.AnnotationsDiffBaseStorage):
    """Kopf's diff base (the last handled spec, in an annotation) for OpenAIProjects only.

    Kopf writes the diff base after the first event of every object that has change handlers, so
    its ``on.update`` handlers can tell what changed. OpenAIKeys need no diff: their one loop (the
    daemon) reads the object fresh each pass, and a watch-event handler that compares generation and
    trigger annotations in memory (``handlers.keys.notice``) wakes it. Without a diff base a key costs
    one patch fewer when it appears, and its body carries no copy of its own spec through every
    watch event and into the operator's memory. Kopf then sees each key event as a creation, for
    which keys have no handlers.
    """

    def fetch(self, *, body: kopf.Body) -> Any:
        if body.get("kind") == KEY_KIND:
            return None
        return super().fetch(body=body)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        if body.get("kind") == KEY_KIND:
            return
        super().store(body=body, patch=patch, essence=essence)


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod, the ServiceAccount; elsewhere, the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``).

    Kopf's own logins read a token or client certificates, which is what a pod and most kubeconfigs
    hold. A kubeconfig whose user runs an exec or auth-provider plugin (cloud CLIs) needs the
    ``kubernetes`` package: when it is installed, Kopf's login through it is used instead (it costs
    the process about 45 MB, which is why the operator does not depend on it).
    """
    found = kopf.login_with_service_account(**kwargs)
    if found is None and importlib.util.find_spec("kubernetes") is not None:
        with contextlib.suppress(kopf.LoginError):
            found = kopf.login_via_client(**kwargs)
    return found if found is not None else kopf.login_with_kubeconfig(**kwargs)


def kube_connection(**kwargs: Any) -> Callable[[], KubeConnection]:
    """The operator client's credentials, from :func:`login` each time they are asked for."""
    def connect() -> KubeConnection:
        info = login(**kwargs)
        if info is None:
            raise kopf.LoginError("no Kubernetes credentials: not in a pod, and no KUBECONFIG or ~/.kube/config")
        return KubeConnection(server=info.server, verify=info.as_ssl_context(), headers=info.as_http_headers(),
                              trust_env=info.trust_env)
    return connect


@dataclass(frozen=True)
class RunOptions:
    """How ``openai-operator run`` watches: namespaces, peering, probes."""

    namespaces: tuple[str, ...] = ()
    standalone: bool = False
    peering_name: str = "openai-operator"
    priority: int = 0
    liveness_endpoint: str | None = "http://0.0.0.0:8081/healthz"


async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    config: OperatorConfig = memo["config"]
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = _DiffBaseExceptKeys(prefix=KOPF_PREFIX, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 8
    metrics = OperatorMetrics()
    deps = memo["deps"] = await build_deps(config, metrics, kube_connection(settings=settings, logger=logger))
    memo["wakeups"] = Wakeups()
    memo["key_triggers"] = {}
    peering = settings.peering
    if config.shard is not None:
        # The replicas of one shard elect their active one through the shard's own ClusterKopfPeering
        # (the chart makes one per shard), however few namespaces the shard serves.
        peering.clusterwide = True
        assert deps.shard is not None
        await deps.shard.renew()  # before any handler runs: other shards must see this one alive
        memo["shard_lease"] = asyncio.create_task(deps.shard.keep_renewing())
    if not peering.standalone and peering.clusterwide and not await deps.objects.cluster_peering_exists(peering.name):
        logger.warning(
            f"ClusterKopfPeering {peering.name!r} does not exist, so this replica waits and handles nothing: "
            "apply it (the Helm chart does) or run with --standalone"
        )
    if config.metrics_port is not None:
        memo["metrics_server"] = await start_metrics_server(metrics, host=config.metrics_address,
                                                            port=config.metrics_port)


async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "shard_lease" in memo:
        memo["shard_lease"].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await memo["shard_lease"]
        await memo["deps"].shard.release()  # its namespaces may move to another shard at once
    if "metrics_server" in memo:
        await memo["metrics_server"].stop()
    if "deps" in memo:
        await memo["deps"].close()


def register(config: OperatorConfig) -> kopf.OperatorRegistry:
    """Register every handler in a fresh registry (timer intervals come from ``config``)."""
    from openai_operator.handlers import identity, keys, projects, spend

    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    projects.register(registry, config)
    keys.register(registry, config)
    spend.register(registry, config)
    identity.register(registry, config)
    return registry


def run_operator(config: OperatorConfig, options: RunOptions) -> None:
    """Run until stopped (SIGINT/SIGTERM)."""
    registry = register(config)
    kopf.run(
        registry=registry,
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        standalone=options.standalone,
        peering_name=None if options.standalone else options.peering_name,
        priority=options.priority,
        liveness_endpoint=options.liveness_endpoint,
        memo=kopf.Memo(config=config),
    )
