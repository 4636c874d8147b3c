"""Create or adopt the OpenAI project behind an OpenAIProject, keep its name and rate limits, and
archive or retain it on deletion.

OpenAI projects cannot be deleted, only archived, and an archived project refuses every change; so
an archived project is reported (``Ready=False``, reason ``Archived``), never silently recreated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from openai_operator.deps import Deps
from openai_operator.errors import NotFoundError, OperatorError, PermanentError, SpecError, TransientError
from openai_operator.model.conditions import ConditionType
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import ProjectDeletionPolicy, ProjectSpec, parse_project_spec
from openai_operator.model.status import ProjectStatus
from openai_operator.openai.models import Project
from openai_operator.operations.outcome import Outcome
from openai_operator.reconcile.project_plan import (
    RATE_LIMIT_FIELDS,
    ObservedRateLimit,
    plan_project,
    plan_rate_limits,
)


@dataclass(frozen=True)
class ProjectRef:
    name: str
    uid: str
    generation: int | None


def _condition(
    status: ProjectStatus, type: str, ok: bool, reason: str, message: str, ref: ProjectRef, now: datetime
) -> ProjectStatus:
    updated = status.with_condition(type, ok, reason, message, ref.generation, now)
    return replace(updated, observed_generation=ref.generation)


async def reconcile_project(
    deps: Deps, ref: ProjectRef, *, spec_raw: Mapping[str, Any], status_raw: Mapping[str, Any] | None, keys: int,
    duplicate_of: str | None = None,
) -> Outcome:
    """One pass over an OpenAIProject. ``duplicate_of`` names an older OpenAIProject that already
    manages the same OpenAI project id: this one is refused and changes nothing upstream."""
    now = deps.clock()
    status = replace(ProjectStatus.from_dict(status_raw), keys=keys)
    outcome = Outcome()
    if duplicate_of is not None:
        message = (f"OpenAIProject {duplicate_of!r} already manages this OpenAI project; two objects managing "
                   "one project would sweep each other's keys")
        if not _has_reason(status, ConditionType.READY, Reason.DUPLICATE_PROJECT_ID):
            outcome.note("Warning", Reason.DUPLICATE_PROJECT_ID, message)
        status = _condition(status, ConditionType.READY, False, Reason.DUPLICATE_PROJECT_ID, message, ref, now)
        outcome.status = status.to_patch()
        return outcome
    try:
        spec = parse_project_spec(spec_raw, name=ref.name)
        status = await _converge(deps, ref, spec, status, outcome, now)
        status = replace(status, failed_attempts=0, last_failure_time=None)
    except OperatorError as error:
        reason = (
            Reason.INVALID_SPEC if isinstance(error, SpecError)
            else Reason.PROJECT_NOT_FOUND if isinstance(error, NotFoundError)
            else Reason.ADMIN_API_UNAVAILABLE if isinstance(error, TransientError)
            else Reason.ADMIN_API_REJECTED
        )
        status = _condition(status, ConditionType.READY, False, reason, error.message, ref, now)
        status = replace(status, failed_attempts=status.failed_attempts + 1, last_failure_time=now)
        outcome.note("Warning", reason, error.message)
        outcome.error = error
    outcome.status = status.to_patch()
    return outcome


async def _converge(
    deps: Deps, ref: ProjectRef, spec: ProjectSpec, status: ProjectStatus, outcome: Outcome, now: datetime
) -> ProjectStatus:
    admin = deps.admin
    plan = plan_project(spec, status.project_id, upstream_name=None)
    project: Project
    if plan.adopt_id is not None:
        project = await admin.get_project(plan.adopt_id)
        reason = Reason.ADOPTED
        outcome.note("Normal", Reason.ADOPTED, f"Adopted OpenAI project {project.id}")
    elif plan.create:
        project = await admin.create_project(spec.name)
        reason = Reason.CREATED
        outcome.note("Normal", Reason.CREATED, f"Created OpenAI project {project.id} named {spec.name!r}")
    else:
        assert status.project_id is not None
        project = await admin.get_project(status.project_id)
        reason = Reason.ADOPTED if spec.adopted else Reason.CREATED
    status = replace(status, project_id=project.id)
    if project.archived:
        return _condition(status, ConditionType.READY, False, Reason.ARCHIVED,
                          f"OpenAI project {project.id} is archived and refuses changes", ref, now)
    rename = plan_project(spec, project.id, upstream_name=project.name).rename_to
    if rename is not None:
        await admin.rename_project(project.id, rename)
        outcome.note("Normal", Reason.CREATED, f"Renamed OpenAI project {project.id} to {rename!r}")

    status = await _sync_rate_limits(deps, ref, spec, status, project.id, outcome, now)
    return _condition(status, ConditionType.READY, True, reason, f"OpenAI project {project.id} is active", ref, now)


async def _sync_rate_limits(
    deps: Deps, ref: ProjectRef, spec: ProjectSpec, status: ProjectStatus, project_id: str, outcome: Outcome,
    now: datetime,
) -> ProjectStatus:
    if not spec.rate_limits:
        return _condition(status, ConditionType.RATE_LIMITS_SYNCED, True, Reason.NOT_CONFIGURED,
                          "spec.rateLimits is empty: OpenAI's defaults apply", ref, now)
    rows = await deps.admin.list_rate_limits(project_id)
    observed = [
        ObservedRateLimit(r.id, r.model, {api: getattr(r, api) for api in RATE_LIMIT_FIELDS.values()}) for r in rows
    ]
    plan = plan_rate_limits(spec.rate_limits, observed)
    try:
        for change in plan.changes:
            await deps.admin.modify_rate_limit(project_id, change.rate_limit_id, **change.values)
    except PermanentError as error:
        outcome.note("Warning", Reason.RATE_LIMITS_FAILED, error.message)
        return _condition(status, ConditionType.RATE_LIMITS_SYNCED, False, Reason.RATE_LIMITS_FAILED,
                          error.message, ref, now)
    if plan.changes:
        models = ", ".join(c.model for c in plan.changes)
        outcome.note("Normal", Reason.RATE_LIMITS_APPLIED, f"Applied rate limits for {models}")
    if plan.unknown_models:
        message = (
            "spec.rateLimits names models the project has no rate limit for: " + ", ".join(plan.unknown_models)
        )
        if not _has_reason(status, ConditionType.RATE_LIMITS_SYNCED, Reason.RATE_LIMITS_FAILED):
            outcome.note("Warning", Reason.RATE_LIMITS_FAILED, message)
        return _condition(status, ConditionType.RATE_LIMITS_SYNCED, False, Reason.RATE_LIMITS_FAILED, message, ref,
                          now)
    return _condition(status, ConditionType.RATE_LIMITS_SYNCED, True, Reason.RATE_LIMITS_APPLIED,
                      f"{len(spec.rate_limits)} model rate limit(s) match spec.rateLimits", ref, now)


def _has_reason(status: ProjectStatus, type: str, reason: str) -> bool:
    condition = status.condition(type)
    return condition is not None and condition.reason == reason


async def finalize_project(deps: Deps, ref: ProjectRef, *, spec_raw: Mapping[str, Any],
                           status_raw: Mapping[str, Any] | None) -> Outcome:
    """Archive the OpenAI project (policy ``Archive``) or leave it (``Retain``)."""
    outcome = Outcome()
    status = ProjectStatus.from_dict(status_raw)
    try:
        spec = parse_project_spec(spec_raw, name=ref.name)
        policy = spec.deletion_policy
    except SpecError:
        policy = ProjectDeletionPolicy.RETAIN
    if status.project_id is None:
        return outcome
    if status.condition(ConditionType.READY) is not None and \
            status.condition(ConditionType.READY).reason == Reason.DUPLICATE_PROJECT_ID:  # type: ignore[union-attr]
        return outcome  # it never managed the project
    if policy == ProjectDeletionPolicy.RETAIN:
        outcome.note("Normal", Reason.ARCHIVED, f"deletionPolicy is Retain: OpenAI project {status.project_id} kept")
        return outcome
    try:
        project = await deps.admin.get_project(status.project_id)
    except NotFoundError:
        return outcome
    if not project.archived:
        await deps.admin.archive_project(status.project_id)
    outcome.note("Normal", Reason.ARCHIVED, f"Archived OpenAI project {status.project_id}")
    return outcome
