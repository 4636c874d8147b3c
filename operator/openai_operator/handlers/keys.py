"""OpenAIKey handlers: one daemon per key runs every pass; a watch-event handler only wakes it.

The daemon is the key's single loop (Kopf stops it when the replica loses leadership, and when the
key is deleted): it runs one pass, then sleeps until the plan's ``requeue_after`` or the key's next
resync (at its own phase of the resync interval), whichever comes first, unless a change wakes it
sooner. A spec change, a rotate or revoke annotation (seen by :func:`notice` on the watch stream)
and the inventory's report of a deleted credential all nudge it. Deletion is the finalizer's
(``on.delete``), under the same per-key lock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
from openai_operator.model.resources import GROUP, KEY_PLURAL, REVOKE_ANNOTATION, ROTATE_ANNOTATION, VERSION
from openai_operator.model.status import KeyStatus
from openai_operator.model.timestamps import parse_time
from openai_operator.operations.inventory import KeyEntry, identity_holders
from openai_operator.operations.key_deletion import finalize_key
from openai_operator.operations.keys import KeyRef, reconcile_key
from openai_operator.operations.outcome import Outcome
from openai_operator.operations.shards import claim_for_this_shard, with_shard
from openai_operator.reconcile.backoff import retry_delay
from openai_operator.reconcile.policy import ProjectView
from openai_operator.reconcile.spread import resync_delay

__all__ = ["key_index", "register"]

log = structlog.get_logger(__name__)

KeyIndex = kopf.Index[str, KeyEntry]
NamespaceIndex = kopf.Index[str, dict[str, str]]


async def namespace_index(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    """Every namespace's labels, for ``keyPolicy.allowedNamespaces.selector``: a key's pass reads them
    here instead of asking the apiserver each time (a thousand keys resyncing were a thousand GETs)."""
    return {name: dict(labels)}


def _labels(index: NamespaceIndex, namespace: str) -> dict[str, str] | None:
    """The namespace's labels from the watch, or ``None`` when the watch has not seen it (yet): read it."""
    for labels in index.get(namespace) or ():
        return labels
    return None


async def key_index(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict[str, KeyEntry]:
    """Keys by the project they reference, with the credentials their status records.

    Every index function is a coroutine though none awaits: Kopf runs a plain function in its thread
    pool, a hop per watch event per index, which a thousand keys made a tenth of the profile.
    """
    project = (spec.get("projectRef") or {}).get("name")
    if not project:
        return {}
    recorded = KeyStatus.from_dict(dict(status))
    ids = {p.service_account_id for p in recorded.previous}
    if recorded.service_account_id:
        ids.add(recorded.service_account_id)
    if recorded.pending is not None and recorded.pending.service_account_id:
        ids.add(recorded.pending.service_account_id)
    return {project: KeyEntry(namespace, name, frozenset(ids), recorded.service_account_id, recorded.created_at,
                              issuing=recorded.pending is not None)}


def _holders(index: KeyIndex, project: str | None, identities: Any = None) -> list[tuple[str, str]]:
    """Who holds one of the project's ``maxKeys`` slots: keys with a credential, and workload identities
    with a mapping (``identity_holders``), which count the same."""
    found = index.get(project) if project else None
    return [(e.namespace, e.name) for e in found or () if e.current is not None or e.issuing] + \
        identity_holders(identities, project)


async def _key_pass(deps: Deps, namespace: str, name: str, project_index: kopf.Index[str, ProjectView],
                    key_index: KeyIndex, namespace_index: NamespaceIndex, identity_index: Any = None) -> Outcome | None:
    async def operate(body: Any) -> Outcome:
        if not await claim_for_this_shard(deps, "OpenAIKey", namespace, name, body, deps.objects.patch_key_status):
            # Another shard's live replica still serves this namespace: look again after its next renewal.
            return Outcome(status=dict(body.get("status") or {}), requeue_after=timedelta(seconds=RENEW_SECONDS))
        body = with_shard(body, deps)  # what the claim wrote, so the pass's own saves keep it
        spec = body.get("spec") or {}
        project_name = (spec.get("projectRef") or {}).get("name")
        ref = KeyRef(namespace, name, body["metadata"]["uid"], body["metadata"].get("generation"))
        # The holders are listed only when the pass needs them (a first issue under maxKeys): every
        # pass listing every key of its project made a thousand keys cost a million steps.
        return await reconcile_key(deps, ref, body, project=project_view(project_index, project_name),
                                   holders=lambda: _holders(key_index, project_name, identity_index),
                                   known_namespace_labels=_labels(namespace_index, namespace))

    outcome = await one_pass(deps, "OpenAIKey", namespace, name, lambda: deps.objects.get_key(namespace, name),
                             operate)
    if outcome is not None:
        deps.metrics.track_key_conditions(
            namespace, name, {c["type"]: c["status"] for c in outcome.status.get("conditions") or []}
        )
        next_rotation = parse_time(outcome.status.get("nextRotationAt"))
        deps.metrics.set_next_rotation(namespace, name, next_rotation.timestamp() if next_rotation else None)
    return outcome


async def daemon(
    namespace: str, name: str, stopped: kopf.DaemonStopped, memo: kopf.Memo,
    project_index: kopf.Index[str, ProjectView], key_index: KeyIndex, namespace_index: NamespaceIndex,
    workload_identity_index: Any = None, **_: Any,
) -> None:
    """The key's loop: a pass, then wait for the plan's next time, a nudge or the resync interval."""
    deps: Deps = memo["deps"]
    wakeups: Wakeups = memo["wakeups"]
    resync = deps.config.key_resync_interval
    errors = 0
    identity = f"{namespace}/{name}"
    while not stopped:
        # Each key re-checks at its own phase of the interval, so thousands of keys never wake together.
        wait = resync_delay(identity, resync, datetime.now(UTC))
        try:
            outcome = await _key_pass(deps, namespace, name, project_index, key_index, namespace_index,
                                      workload_identity_index)
            errors = 0
            if outcome is not None and outcome.requeue_after is not None:
                wait = min(outcome.requeue_after, wait)
        except OperatorError as error:
            # The pass could not even read or save (apiserver, namespace, listing): back off.
            errors += 1
            wait = min(retry_after(error, retry_delay(errors, identity)), resync)
            log.warning("key pass failed", key=f"{namespace}/{name}", error=error.message)
        await wakeups.wait(namespace, name, max(wait.total_seconds(), 0.05), stopped)


def _triggers(body: kopf.Body) -> tuple[object, ...]:
    """What a change the key's loop must see at once is made of: the spec (its generation) and the
    rotate and revoke annotations. Status and other metadata changes are not."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    return (body.get("metadata", {}).get("generation"), annotations.get(ROTATE_ANNOTATION),
            annotations.get(REVOKE_ANNOTATION))


async def notice(event: kopf.RawEvent, namespace: str, name: str, body: kopf.Body, memo: kopf.Memo,
                 **_: Any) -> None:
    """Every watch event of a key: wake its loop when the spec or a trigger annotation changed.

    The first sight of a key only records what it looks like: its loop's first pass runs anyway.
    This replaces Kopf's change handlers, which need a diff base written into every key.
    """
    seen: dict[tuple[str, str], tuple[object, ...]] = memo["key_triggers"]
    if event.get("type") == "DELETED":
        seen.pop((namespace, name), None)
        return
    now = _triggers(body)
    before = seen.get((namespace, name))
    seen[(namespace, name)] = now
    if before is not None and before != now:
        memo["wakeups"].nudge(namespace, name)


async def finalize(
    namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, project_index: kopf.Index[str, ProjectView],
    **_: Any,
) -> None:
    deps: Deps = memo["deps"]

    async def operate(current: Any) -> Outcome:
        if not await claim_for_this_shard(deps, "OpenAIKey", namespace, name, current,
                                          deps.objects.patch_key_status):
            raise TransientError("another shard still serves this namespace; it deletes the key",
                                 retry_after=float(RENEW_SECONDS))
        current = with_shard(current, deps)
        ref = KeyRef(namespace, name, current["metadata"].get("uid") or "", current["metadata"].get("generation"))
        project_name = (current.get("spec") or {}).get("projectRef", {}).get("name")
        return await finalize_key(deps, ref, current, project=project_view(project_index, project_name))

    async def read() -> Any:
        return await deps.objects.get_key(namespace, name) or dict(body)

    try:
        await one_pass(deps, "OpenAIKey", namespace, name, read, operate, deleting=True)
    except OperatorError as error:
        raise_for(error, delay=timedelta(seconds=5))
    deps.metrics.forget_key(namespace, name)
    memo["wakeups"].forget(namespace, name)
    memo["key_triggers"].pop((namespace, name), None)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    resource = (GROUP, VERSION, KEY_PLURAL)
    kopf.index(*resource, registry=registry)(kopf_fn(key_index))
    kopf.index("", "v1", "namespaces", registry=registry)(kopf_fn(namespace_index))
    kopf.daemon(*resource, registry=registry, id="lifecycle", cancellation_timeout=60.0)(kopf_fn(daemon))
    kopf.on.event(*resource, registry=registry, id="notice")(kopf_fn(notice))
    kopf.on.delete(*resource, registry=registry)(kopf_fn(finalize))
