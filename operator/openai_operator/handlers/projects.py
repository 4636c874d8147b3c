"""OpenAIProject handlers: create/adopt, keep name and rate limits, archive or retain on delete, and
the per-project inventory of service accounts.

Two indexes serve the key handlers and the duplicate check: ``project_index`` (a small view of
each project: id, readiness, key policy) and ``project_id_index`` (which OpenAIProjects claim an
OpenAI project id, oldest first), so a second OpenAIProject adopting the same project is refused.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import kopf

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError, SpecError
from openai_operator.handlers._common import kopf_fn, one_pass, post
from openai_operator.handlers._errors import raise_for
from openai_operator.handlers._wakeups import Wakeups
from openai_operator.model.conditions import ConditionType
from openai_operator.model.resources import GROUP, PROJECT_PLURAL, VERSION
from openai_operator.model.specs import KeyPolicy, parse_project_spec
from openai_operator.model.status import ProjectStatus
from openai_operator.operations.inventory import IdentityEntry, KeyEntry, take_inventory
from openai_operator.operations.outcome import Outcome
from openai_operator.operations.projects import ProjectRef, finalize_project, reconcile_project
from openai_operator.reconcile.backoff import retry_delay
from openai_operator.reconcile.policy import ProjectView

__all__ = ["project_id_index", "project_index", "register"]


async def project_index(name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                        **_: Any) -> dict[str, ProjectView]:
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


async def project_id_index(name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                     **_: Any) -> dict[str, tuple[str, str]]:
    """OpenAI project id → (creation time, name) of each OpenAIProject that claims it."""
    project_id = spec.get("projectId") or status.get("projectId")
    if not project_id:
        return {}
    return {str(project_id): (str(meta.get("creationTimestamp") or ""), name)}


def _claimed_first_by(index: kopf.Index[str, tuple[str, str]], project_id: str | None) -> str | None:
    if not project_id:
        return None
    found = index.get(project_id)
    claims = sorted(found) if found is not None else []
    return claims[0][1] if claims else None


def _identities(index: kopf.Index[str, IdentityEntry] | None) -> list[IdentityEntry]:
    """Every OpenAIWorkloadIdentity (listed under ``*`` in the index), whatever its project."""
    found = index.get("*") if index is not None else None
    return list(found) if found is not None else []


def _keys_of(key_index: kopf.Index[str, KeyEntry], name: str) -> list[KeyEntry]:
    found = key_index.get(name)
    return list(found) if found is not None else []


async def reconcile(name: str, memo: kopf.Memo, key_index: kopf.Index[str, KeyEntry],
                    project_id_index: kopf.Index[str, tuple[str, str]], **_: Any) -> None:
    deps: Deps = memo["deps"]

    async def operate(body: Any) -> Outcome:
        ref = ProjectRef(name, body["metadata"]["uid"], body["metadata"].get("generation"))
        spec = body.get("spec") or {}
        claimed = spec.get("projectId") or (body.get("status") or {}).get("projectId")
        first = _claimed_first_by(project_id_index, claimed)
        outcome = await reconcile_project(
            deps, ref, spec_raw=spec, status_raw=body.get("status"), keys=len(_keys_of(key_index, name)),
            duplicate_of=first if first is not None and first != name else None,
        )
        await deps.objects.patch_project_status(name, outcome.status)
        return outcome

    try:
        outcome = await one_pass(deps, "OpenAIProject", None, name, lambda: deps.objects.get_project(name), operate)
    except OperatorError as error:
        raise_for(error, delay=timedelta(seconds=5))
        return
    if outcome is not None:
        failed = ProjectStatus.from_dict(outcome.status).failed_attempts
        raise_for(outcome.error, delay=retry_delay(failed, name))


async def inventory(name: str, memo: kopf.Memo, key_index: kopf.Index[str, KeyEntry],
                    workload_identity_index: kopf.Index[str, IdentityEntry] | None = None, **_: Any) -> None:
    """One paged list of the project's service accounts: orphans revoked, deleted credentials reported."""
    deps: Deps = memo["deps"]
    wakeups: Wakeups = memo["wakeups"]
    body = await deps.objects.get_project(name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    project_id = (body.get("status") or {}).get("projectId")
    if not project_id:
        return
    try:
        result = await take_inventory(deps, project_id, lambda: _keys_of(key_index, name),
                                      judge_orphans_in=deps.serves,
                                      identities=lambda: _identities(workload_identity_index))
        for entry, account_id in result.missing:
            async with deps.lock("OpenAIKey", entry.namespace, entry.name):
                key = await deps.objects.get_key(entry.namespace, entry.name)
                if key is None or (key.get("status") or {}).get("serviceAccountId") != account_id:
                    continue
                await deps.objects.patch_key_status(entry.namespace, entry.name, {"upstreamMissing": account_id})
            wakeups.nudge(entry.namespace, entry.name)
    except OperatorError as error:
        raise_for(error, delay=deps.config.inventory_interval / 4)
        return
    post(body, result.outcome.notes)


async def finalize(name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    deps: Deps = memo["deps"]

    async def operate(current: Any) -> Outcome:
        ref = ProjectRef(name, current["metadata"].get("uid") or "", current["metadata"].get("generation"))
        return await finalize_project(deps, ref, spec_raw=dict(current.get("spec") or {}),
                                      status_raw=dict(current.get("status") or {}))

    async def read() -> Any:
        return dict(body)

    try:
        await one_pass(deps, "OpenAIProject", None, name, read, operate, deleting=True)
    except OperatorError as error:
        raise_for(error, delay=timedelta(seconds=5))


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    resource = (GROUP, VERSION, PROJECT_PLURAL)
    kopf.index(*resource, registry=registry)(kopf_fn(project_index))
    kopf.index(*resource, registry=registry)(kopf_fn(project_id_index))
    kopf.timer(*resource, registry=registry, id="inventory", interval=config.inventory_interval.total_seconds(),
               initial_delay=config.inventory_interval.total_seconds())(kopf_fn(inventory))
    if not config.manage_projects:
        return  # another shard reconciles projects; this one reads them (indexes) and sweeps its own keys
    kopf.on.resume(*resource, registry=registry)(kopf_fn(reconcile))
    kopf.on.create(*resource, registry=registry)(kopf_fn(reconcile))
    kopf.on.update(*resource, registry=registry, field="spec")(kopf_fn(reconcile))
    kopf.timer(*resource, registry=registry, id="resync", interval=config.project_resync_interval.total_seconds(),
               initial_delay=config.project_resync_interval.total_seconds())(kopf_fn(reconcile))
    kopf.on.delete(*resource, registry=registry)(kopf_fn(finalize))
