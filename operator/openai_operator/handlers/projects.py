"""OpenAIProject handlers: create/adopt, keep name and rate limits, archive or retain on delete.

An index (``project_index``) keeps a small view of every project (id, readiness, key policy) that
the OpenAIKey handlers consult without reading the project from the apiserver each time.
"""

from __future__ import annotations

import time
from typing import Any

import kopf

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError, SpecError
from openai_operator.handlers._common import kopf_fn as _kopf_fn
from openai_operator.handlers._common import post
from openai_operator.handlers._errors import raise_for
from openai_operator.model.conditions import ConditionType
from openai_operator.model.resources import GROUP, PROJECT_PLURAL, VERSION
from openai_operator.model.specs import KeyPolicy, parse_project_spec
from openai_operator.operations.inventory import take_inventory
from openai_operator.operations.projects import ProjectRef, finalize_project, reconcile_project
from openai_operator.reconcile.policy import ProjectView


def project_index(name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any) -> dict[str, ProjectView]:
    try:
        key_policy = parse_project_spec(dict(spec), name=name).key_policy
    except SpecError:
        key_policy = KeyPolicy()
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == ConditionType.READY and c.get("status") == "True" for c in conditions)
    view = ProjectView(
        name=name,
        project_id=status.get("projectId"),
        ready=ready,
        key_policy=key_policy,
        deleting=meta.get("deletionTimestamp") is not None,
    )
    return {name: view}


def _keys_of(key_index: kopf.Index[str, Any], name: str) -> int:
    found = key_index.get(name)
    return len(list(found)) if found is not None else 0


async def reconcile(name: str, memo: kopf.Memo, key_index: kopf.Index[str, Any], **_: Any) -> None:
    deps: Deps = memo["deps"]
    started = time.monotonic()
    async with deps.lock("project", None, name):
        try:
            body = await deps.objects.get_project(name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return
            ref = ProjectRef(name, body["metadata"]["uid"], body["metadata"].get("generation"))
            outcome = await reconcile_project(
                deps, ref, spec_raw=body.get("spec") or {}, status_raw=body.get("status"),
                keys=_keys_of(key_index, name),
            )
            await deps.objects.patch_project_status(name, outcome.status)
        except OperatorError as error:
            deps.metrics.observe_reconcile("OpenAIProject", time.monotonic() - started, ok=False)
            raise_for(error)
            return
    post(body, outcome.notes)
    deps.metrics.observe_reconcile("OpenAIProject", time.monotonic() - started, ok=outcome.error is None)
    raise_for(outcome.error)


async def inventory(name: str, memo: kopf.Memo, key_index: kopf.Index[str, Any], **_: Any) -> None:
    """One paged list of the project's service accounts: orphans revoked, a snapshot kept for keys."""
    deps: Deps = memo["deps"]
    body = await deps.objects.get_project(name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    project_id = (body.get("status") or {}).get("projectId")
    if not project_id:
        return
    found = key_index.get(name)
    keys = [(namespace, key) for namespace, key, _holds in found] if found is not None else []
    try:
        outcome = await take_inventory(deps, project_id, keys, judge_orphans=deps.config.clusterwide)
    except OperatorError as error:
        raise_for(error)
        return
    post(body, outcome.notes)


async def finalize(name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    deps: Deps = memo["deps"]
    async with deps.lock("project", None, name):
        ref = ProjectRef(name, body.metadata.uid or "", body.metadata.get("generation"))
        try:
            outcome = await finalize_project(deps, ref, spec_raw=dict(body.spec), status_raw=dict(body.status))
        except OperatorError as error:
            raise_for(error)
            return
    post(body, outcome.notes)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    resource = (GROUP, VERSION, PROJECT_PLURAL)
    kopf.index(*resource, registry=registry)(_kopf_fn(project_index))
    kopf.on.resume(*resource, registry=registry)(_kopf_fn(reconcile))
    kopf.on.create(*resource, registry=registry)(_kopf_fn(reconcile))
    kopf.on.update(*resource, registry=registry, field="spec")(_kopf_fn(reconcile))
    kopf.timer(*resource, registry=registry, id="resync", interval=config.project_resync_interval.total_seconds(),
               initial_delay=config.project_resync_interval.total_seconds())(_kopf_fn(reconcile))
    kopf.timer(*resource, registry=registry, id="inventory", interval=config.inventory_interval.total_seconds(),
               initial_delay=config.inventory_interval.total_seconds())(_kopf_fn(inventory))
    kopf.on.delete(*resource, registry=registry)(_kopf_fn(finalize))
