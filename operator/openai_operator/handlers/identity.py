"""OpenAIIdentityProvider and OpenAIWorkloadIdentity handlers: one daemon per object runs every pass.

Like keys, each object has a single loop (a Kopf daemon) that runs a pass, then sleeps until the
plan's next time or its interval unless a change wakes it: a provider re-reads the cluster's JWKS
every ``spec.syncInterval``; an identity re-checks its service account and rule at the key resync
interval (drift repair). Deletion is the finalizer's, under the same per-object lock.

Indexes: ``identity_provider_index`` (each provider's slots and readiness, for identities),
``workload_identity_index`` (identities by project, for ``maxKeys`` and the inventory).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import kopf
import structlog

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError, TransientError
from openai_operator.handlers._common import kopf_fn, one_pass, project_view
from openai_operator.handlers._errors import raise_for, retry_after
from openai_operator.handlers._wakeups import Wakeups
from openai_operator.k8s.shards import RENEW_SECONDS
from openai_operator.model.conditions import ConditionType
from openai_operator.model.identity import IdentityProviderStatus, WorkloadIdentityStatus
from openai_operator.model.resources import GROUP, IDENTITY_PROVIDER_PLURAL, VERSION, WORKLOAD_IDENTITY_PLURAL
from openai_operator.operations.identity import (
    IdentityRef,
    finalize_identity,
    finalize_identity_provider,
    reconcile_identity,
    reconcile_identity_provider,
)
from openai_operator.operations.inventory import IdentityEntry, identity_holders
from openai_operator.operations.outcome import Outcome
from openai_operator.operations.shards import claim_for_this_shard, with_shard
from openai_operator.ports import IdentityCluster
from openai_operator.reconcile.backoff import retry_delay
from openai_operator.reconcile.identity_plan import ProviderView
from openai_operator.reconcile.policy import ProjectView

__all__ = ["identity_provider_index", "register", "workload_identity_index"]

log = structlog.get_logger(__name__)

ProviderIndex = kopf.Index[str, ProviderView]
IdentityIndex = kopf.Index[str, IdentityEntry]
_ALL = "*"
"""The index key under which every identity is also listed (for the orphan-rule sweep)."""


async def identity_provider_index(name: str, status: kopf.Status, meta: kopf.Meta, **_: Any) -> dict[str, ProviderView]:
    recorded = IdentityProviderStatus.from_dict(dict(status))
    ready = any(c.type == ConditionType.READY and c.status == "True" for c in recorded.conditions)
    return {name: ProviderView(name, ready, recorded.audience, recorded.providers,
                               deleting=meta.get("deletionTimestamp") is not None)}


async def workload_identity_index(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status,
                            **_: Any) -> dict[str, IdentityEntry]:
    """Identities by their project (and all of them under ``*``), with the account their status records."""
    recorded = WorkloadIdentityStatus.from_dict(dict(status))
    entry = IdentityEntry(namespace, name, recorded.service_account_id, recorded.federation_rule_id is not None)
    project = (spec.get("projectRef") or {}).get("name")
    return {_ALL: entry, **({project: entry} if project else {})}


def _providers(index: ProviderIndex) -> list[ProviderView]:
    return [view for _, store in index.items() for view in store]


def _entries(index: IdentityIndex, key: str) -> list[IdentityEntry]:
    found = index.get(key)
    return list(found) if found is not None else []


def _known(index: IdentityIndex) -> frozenset[tuple[str, str]]:
    return frozenset((e.namespace, e.name) for e in _entries(index, _ALL))


def _wakeups(memo: kopf.Memo, kind: str) -> Wakeups:
    found: Wakeups | None = memo.get(kind)
    if found is None:
        found = memo[kind] = Wakeups()
    return found


# --- OpenAIIdentityProvider ---------------------------------------------------------------------


async def provider_daemon(name: str, stopped: kopf.DaemonStopped, memo: kopf.Memo,
                          workload_identity_index: IdentityIndex, **_: Any) -> None:
    """The provider's loop: a pass every ``spec.syncInterval`` (or sooner when nudged)."""
    deps: Deps = memo["deps"]
    wakeups = _wakeups(memo, "provider_wakeups")
    errors = 0
    while not stopped:
        wait = timedelta(minutes=1)
        try:
            outcome = await one_pass(
                deps, "OpenAIIdentityProvider", None, name,
                lambda: _cluster(deps).get_identity_provider(name),
                lambda body: reconcile_identity_provider(deps, name, body, lambda: _known(workload_identity_index)))
            errors = 0
            if outcome is not None and outcome.requeue_after is not None:
                wait = outcome.requeue_after
            if outcome is not None and outcome.error is not None:
                errors += 1
        except OperatorError as error:
            errors += 1
            wait = min(retry_after(error, retry_delay(errors, name)), wait)
            log.warning("identity provider pass failed", provider=name, error=error.message)
        except Exception as error:  # the loop must outlive anything (an apiserver restart, say)
            errors += 1
            wait = min(retry_delay(errors, name), wait)
            log.warning("identity provider pass failed", provider=name, error=type(error).__name__)
        await wakeups.wait("", name, max(wait.total_seconds(), 0.05), stopped)


def _cluster(deps: Deps) -> IdentityCluster:
    if deps.identity_cluster is None:
        raise OperatorError("workload identity is not configured")
    return deps.identity_cluster


async def provider_nudge(name: str, memo: kopf.Memo, **_: Any) -> None:
    _wakeups(memo, "provider_wakeups").nudge("", name)


async def provider_finalize(name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    deps: Deps = memo["deps"]

    async def read() -> Any:
        return dict(body)

    try:
        await one_pass(deps, "OpenAIIdentityProvider", None, name, read,
                       lambda current: finalize_identity_provider(deps, name, current), deleting=True)
    except OperatorError as error:
        raise_for(error, delay=timedelta(seconds=5))
    _wakeups(memo, "provider_wakeups").forget("", name)


# --- OpenAIWorkloadIdentity ---------------------------------------------------------------------


def _holders(identity_index: IdentityIndex, key_index: Any, project: str | None) -> list[tuple[str, str]]:
    """Every holder of the project's ``maxKeys`` slots: keys with a credential and mapped identities."""
    found = key_index.get(project) if key_index is not None and project else None
    keys = [(e.namespace, e.name) for e in found or () if e.current is not None or e.issuing]
    return keys + identity_holders(identity_index, project)


async def _identity_pass(deps: Deps, memo: kopf.Memo, namespace: str, name: str,
                         project_index: kopf.Index[str, ProjectView], provider_index: ProviderIndex,
                         identity_index: IdentityIndex, key_index: Any) -> Outcome | None:
    async def operate(body: Any) -> Outcome:
        cluster = _cluster(deps)
        if not await claim_for_this_shard(deps, "OpenAIWorkloadIdentity", namespace, name, body,
                                          cluster.patch_workload_identity_status):
            # Another shard's live replica still serves this namespace: look again after its next renewal.
            return Outcome(status=dict(body.get("status") or {}), requeue_after=timedelta(seconds=RENEW_SECONDS))
        body = with_shard(body, deps)
        spec = body.get("spec") or {}
        project_name = (spec.get("projectRef") or {}).get("name")
        ref = IdentityRef(namespace, name, body["metadata"]["uid"], body["metadata"].get("generation"))
        outcome = await reconcile_identity(
            deps, ref, body, project=project_view(project_index, project_name),
            providers=_providers(provider_index),
            holders=_holders(identity_index, key_index, project_name))
        if outcome.status.get("conditions") and any(
                c.get("reason") == "ProviderFull" for c in outcome.status["conditions"]):
            for view in _providers(provider_index):
                _wakeups(memo, "provider_wakeups").nudge("", view.name)
        return outcome

    outcome = await one_pass(deps, "OpenAIWorkloadIdentity", namespace, name,
                             lambda: _cluster(deps).get_workload_identity(namespace, name), operate)
    if outcome is not None:
        deps.metrics.track_identity_conditions(
            namespace, name, {c["type"]: c["status"] for c in outcome.status.get("conditions") or []})
    return outcome


async def identity_daemon(
    namespace: str, name: str, stopped: kopf.DaemonStopped, memo: kopf.Memo,
    project_index: kopf.Index[str, ProjectView], identity_provider_index: ProviderIndex,
    workload_identity_index: IdentityIndex, key_index: Any, **_: Any,
) -> None:
    """The identity's loop: a pass, then wait for the plan's time, a nudge or the resync interval."""
    deps: Deps = memo["deps"]
    wakeups = _wakeups(memo, "identity_wakeups")
    resync = deps.config.key_resync_interval
    errors = 0
    while not stopped:
        wait = resync
        try:
            outcome = await _identity_pass(deps, memo, namespace, name, project_index, identity_provider_index,
                                           workload_identity_index, key_index)
            errors = 0
            if outcome is not None and outcome.error is not None:
                errors += 1
                wait = min(retry_after(outcome.error, retry_delay(errors, f"{namespace}/{name}")), resync)
            elif outcome is not None and outcome.requeue_after is not None:
                wait = min(outcome.requeue_after, resync)
        except OperatorError as error:
            errors += 1
            wait = min(retry_after(error, retry_delay(errors, f"{namespace}/{name}")), resync)
            log.warning("workload identity pass failed", identity=f"{namespace}/{name}", error=error.message)
        except Exception as error:  # the loop must outlive anything (an apiserver restart, say)
            errors += 1
            wait = min(retry_delay(errors, f"{namespace}/{name}"), resync)
            log.warning("workload identity pass failed", identity=f"{namespace}/{name}", error=type(error).__name__)
        await wakeups.wait(namespace, name, max(wait.total_seconds(), 0.05), stopped)


async def identity_nudge(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    _wakeups(memo, "identity_wakeups").nudge(namespace, name)


async def identity_finalize(namespace: str, name: str, body: kopf.Body, memo: kopf.Memo,
                            project_index: kopf.Index[str, ProjectView], identity_provider_index: ProviderIndex,
                            **_: Any) -> None:
    deps: Deps = memo["deps"]

    async def read() -> Any:
        return await _cluster(deps).get_workload_identity(namespace, name) or dict(body)

    async def operate(current: Any) -> Outcome:
        if not await claim_for_this_shard(deps, "OpenAIWorkloadIdentity", namespace, name, current,
                                          _cluster(deps).patch_workload_identity_status):
            raise TransientError("another shard still serves this namespace; it deletes the identity",
                                 retry_after=float(RENEW_SECONDS))
        ref = IdentityRef(namespace, name, current["metadata"].get("uid") or "", current["metadata"].get("generation"))
        project_name = ((current.get("spec") or {}).get("projectRef") or {}).get("name")
        return await finalize_identity(deps, ref, current, project=project_view(project_index, project_name),
                                       providers=_providers(identity_provider_index))

    try:
        await one_pass(deps, "OpenAIWorkloadIdentity", namespace, name, read, operate, deleting=True)
    except OperatorError as error:
        raise_for(error, delay=timedelta(seconds=5))
    deps.metrics.track_identity_conditions(namespace, name, None)
    deps.metrics.forget_spend("OpenAIWorkloadIdentity", namespace, name)
    _wakeups(memo, "identity_wakeups").forget(namespace, name)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    providers = (GROUP, VERSION, IDENTITY_PROVIDER_PLURAL)
    identities = (GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL)
    kopf.index(*providers, registry=registry)(kopf_fn(identity_provider_index))
    kopf.index(*identities, registry=registry)(kopf_fn(workload_identity_index))
    kopf.daemon(*identities, registry=registry, id="lifecycle", cancellation_timeout=60.0)(kopf_fn(identity_daemon))
    kopf.on.update(*identities, registry=registry, field="spec")(kopf_fn(identity_nudge))
    kopf.on.delete(*identities, registry=registry)(kopf_fn(identity_finalize))
    if not config.manage_projects:
        return  # the shard that manages projects also manages the cluster's providers; this one reads them
    kopf.daemon(*providers, registry=registry, id="sync", cancellation_timeout=60.0)(kopf_fn(provider_daemon))
    kopf.on.update(*providers, registry=registry, field="spec")(kopf_fn(provider_nudge))
    kopf.on.delete(*providers, registry=registry)(kopf_fn(provider_finalize))
