"""OpenAIKey handlers: issue and deliver on create/resume/spec change, re-check on a timer, revoke
on delete.

Every handler works under the key's lock on a fresh read of the object and writes the status itself
(see :mod:`openai_operator.k8s.objects`). The timer is what re-checks keys that policy refused, so a
refused key is retried when its project or namespace changes, at the resync interval, never in a
tight loop.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import kopf

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError
from openai_operator.handlers._common import kopf_fn as _kopf_fn
from openai_operator.handlers._common import post, project_view
from openai_operator.handlers._errors import raise_for
from openai_operator.model.resources import GROUP, KEY_PLURAL, REVOKE_ANNOTATION, ROTATE_ANNOTATION, VERSION
from openai_operator.model.timestamps import parse_time
from openai_operator.operations.keys import KeyRef, finalize_key, reconcile_key
from openai_operator.reconcile.policy import ProjectView


def key_index(
    namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[str, tuple[str, str, bool]]:
    """Keys by the project they reference, with whether each holds a credential (for ``maxKeys``)."""
    project = (spec.get("projectRef") or {}).get("name")
    if not project:
        return {}
    return {project: (namespace, name, bool(status.get("keyId")))}


def _holding_others(key_index: kopf.Index[str, tuple[str, str, bool]], project: str | None,
                    namespace: str, name: str) -> int:
    if not project:
        return 0
    found = key_index.get(project)
    if found is None:
        return 0
    return sum(1 for ns, n, holds in found if holds and (ns, n) != (namespace, name))


async def reconcile(
    namespace: str,
    name: str,
    memo: kopf.Memo,
    project_index: kopf.Index[str, ProjectView],
    key_index: kopf.Index[str, tuple[str, str, bool]],
    **_: Any,
) -> None:
    """On create, resume and spec change: one pass."""
    await _reconcile_once(memo["deps"], namespace, name, project_index, key_index)


async def resync(
    namespace: str,
    name: str,
    memo: kopf.Memo,
    project_index: kopf.Index[str, ProjectView],
    key_index: kopf.Index[str, tuple[str, str, bool]],
    **_: Any,
) -> None:
    """The periodic pass. Kopf timers have a fixed interval, so when something falls due before the
    next tick (a rotation, the end of a grace period or of a backoff) the timer waits for it and
    passes again, instead of being up to one interval late."""
    deps: Deps = memo["deps"]
    interval = deps.config.key_resync_interval.total_seconds()
    until = time.monotonic() + interval
    while True:
        wake_at = await _reconcile_once(deps, namespace, name, project_index, key_index)
        if wake_at is None:
            return
        delay = (wake_at - deps.clock()).total_seconds()
        if time.monotonic() + delay >= until:
            return
        await asyncio.sleep(max(delay, 0.2))


async def _reconcile_once(
    deps: Deps,
    namespace: str,
    name: str,
    project_index: kopf.Index[str, ProjectView],
    key_index: kopf.Index[str, tuple[str, str, bool]],
) -> datetime | None:
    started = time.monotonic()
    async with deps.lock("key", namespace, name):
        try:
            body = await deps.objects.get_key(namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return None
            spec = body.get("spec") or {}
            project_name = (spec.get("projectRef") or {}).get("name")
            ref = KeyRef(namespace, name, body["metadata"]["uid"], body["metadata"].get("generation"))
            outcome = await reconcile_key(
                deps, ref, spec_raw=spec, status_raw=body.get("status"),
                annotations=body["metadata"].get("annotations") or {},
                project=project_view(project_index, project_name),
                other_keys_holding_credentials=_holding_others(key_index, project_name, namespace, name),
            )
            await deps.objects.patch_key_status(namespace, name, outcome.status)
        except OperatorError as error:
            deps.metrics.observe_reconcile("OpenAIKey", time.monotonic() - started, ok=False)
            raise_for(error)
            return None
    post(body, outcome.notes)
    deps.metrics.observe_reconcile("OpenAIKey", time.monotonic() - started, ok=outcome.error is None)
    deps.metrics.track_key_conditions(
        namespace, name, {c["type"]: c["status"] for c in outcome.status.get("conditions") or []}
    )
    next_rotation = parse_time(outcome.status.get("nextRotationAt"))
    deps.metrics.set_next_rotation(namespace, name, next_rotation.timestamp() if next_rotation else None)
    raise_for(outcome.error, failed_attempts=int(outcome.status.get("failedAttempts") or 1))
    return outcome.wake_at


async def finalize(
    namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, project_index: kopf.Index[str, ProjectView],
    **_: Any,
) -> None:
    deps: Deps = memo["deps"]
    async with deps.lock("key", namespace, name):
        ref = KeyRef(namespace, name, body.metadata.uid or "", body.metadata.get("generation"))
        project_name = (body.spec.get("projectRef") or {}).get("name")
        try:
            outcome = await finalize_key(
                deps, ref, spec_raw=dict(body.spec), status_raw=dict(body.status),
                project=project_view(project_index, project_name),
            )
        except OperatorError as error:
            raise_for(error)
            return
    post(body, outcome.notes)
    deps.metrics.forget_key(namespace, name)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    resource = (GROUP, VERSION, KEY_PLURAL)
    interval = config.key_resync_interval.total_seconds()
    kopf.index(*resource, registry=registry)(_kopf_fn(key_index))
    kopf.on.resume(*resource, registry=registry)(_kopf_fn(reconcile))
    kopf.on.create(*resource, registry=registry)(_kopf_fn(reconcile))
    kopf.on.update(*resource, registry=registry, field="spec")(_kopf_fn(reconcile))
    for annotation in (ROTATE_ANNOTATION, REVOKE_ANNOTATION):
        kopf.on.update(*resource, registry=registry, id=annotation.rsplit("/", 1)[1],
                       field=("metadata", "annotations", annotation))(_kopf_fn(reconcile))
    kopf.timer(*resource, registry=registry, id="resync", interval=interval, initial_delay=interval)(
        _kopf_fn(resync)
    )
    kopf.on.delete(*resource, registry=registry)(_kopf_fn(finalize))
