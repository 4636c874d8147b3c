"""Create or adopt the OpenAI project behind an OpenAIProject, keep its name, rate limits and budget
mirror (hard spend limit, spend alerts), and archive or retain it on deletion.

OpenAI projects cannot be deleted, only archived, and an archived project refuses every change; so
an archived project is reported (``Ready=False``, reason ``Archived``), never silently recreated.

A pass records what it has done upstream as it goes (:class:`_Progress`), so a failure part-way
(the project just created, an alert just created) still saves it: forgetting would create the
project again, or leave an alert nobody owns.
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
from openai_operator.model.specs import (
    BudgetEnforcement,
    ProjectBudget,
    ProjectDeletionPolicy,
    ProjectSpec,
    parse_project_spec,
)
from openai_operator.model.status import ProjectStatus, SpendAlertRecord, SpendLimitStatus
from openai_operator.openai.models import Project, SpendLimit
from openai_operator.operations.outcome import Outcome
from openai_operator.operations.project_access import sync_project_access
from openai_operator.reconcile.project_plan import (
    RATE_LIMIT_FIELDS,
    ObservedRateLimit,
    ObservedSpendAlert,
    ObservedSpendLimit,
    needs_spend_alert_listing,
    needs_spend_limit_read,
    plan_project,
    plan_rate_limits,
    plan_spend_alerts,
    plan_spend_limit,
)


@dataclass(frozen=True)
class ProjectRef:
    name: str
    uid: str
    generation: int | None


@dataclass
class _Progress:
    """The status as far as the pass got: what it did upstream, kept when a later step fails."""

    status: ProjectStatus


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
    progress = _Progress(status)
    try:
        spec = parse_project_spec(spec_raw, name=ref.name)
        status = await _converge(deps, ref, spec, progress, outcome, now)
        status = replace(status, failed_attempts=0, last_failure_time=None)
    except OperatorError as error:
        status = progress.status
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
    deps: Deps, ref: ProjectRef, spec: ProjectSpec, progress: _Progress, outcome: Outcome, now: datetime
) -> ProjectStatus:
    admin = deps.admin
    status = progress.status
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
    status = progress.status = replace(status, project_id=project.id)
    if project.archived:
        return _condition(status, ConditionType.READY, False, Reason.ARCHIVED,
                          f"OpenAI project {project.id} is archived and refuses changes", ref, now)
    rename = plan_project(spec, project.id, upstream_name=project.name).rename_to
    if rename is not None:
        await admin.rename_project(project.id, rename)
        outcome.note("Normal", Reason.CREATED, f"Renamed OpenAI project {project.id} to {rename!r}")

    status = await _sync_rate_limits(deps, ref, spec, status, project.id, outcome, now)
    progress.status = status
    status = await _sync_budget(deps, ref, spec.budget, progress, project.id, outcome, now)
    progress.status = status
    status = await sync_project_access(deps, ref, spec, progress, project.id, outcome, now)
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


async def _sync_budget(
    deps: Deps, ref: ProjectRef, budget: ProjectBudget | None, progress: _Progress, project_id: str,
    outcome: Outcome, now: datetime,
) -> ProjectStatus:
    """Mirror ``spec.budget`` to OpenAI: the hard spend limit, then the spend alerts (``BudgetSynced``).

    A refusal (4xx) is reported on ``BudgetSynced`` and leaves the project Ready: its keys work, only
    the mirror is missing. Transient errors go up the usual error path, with what was already done
    kept in ``progress``.
    """
    try:
        progress.status = await _mirror_spend_limit(deps, budget, progress.status, project_id, outcome)
        await _mirror_spend_alerts(deps, ref, budget, progress, project_id, outcome)
    except (PermanentError, NotFoundError) as error:
        message = f"OpenAI refused to mirror spec.budget to project {project_id}: {error.message}"
        if not _has_reason(progress.status, ConditionType.BUDGET_SYNCED, Reason.BUDGET_MIRROR_FAILED):
            outcome.note("Warning", Reason.BUDGET_MIRROR_FAILED, message)
        return _condition(progress.status, ConditionType.BUDGET_SYNCED, False, Reason.BUDGET_MIRROR_FAILED,
                          message, ref, now)
    status = progress.status
    if _has_reason(status, ConditionType.BUDGET_SYNCED, Reason.BUDGET_MIRROR_FAILED):
        outcome.note("Normal", Reason.BUDGET_MIRRORED, f"spec.budget is mirrored to OpenAI project {project_id} again")
    asked = budget is not None and (budget.enforcement is BudgetEnforcement.HARD_LIMIT or bool(budget.alert_emails))
    reason = Reason.BUDGET_MIRRORED if asked else Reason.NOT_CONFIGURED
    return _condition(status, ConditionType.BUDGET_SYNCED, True, reason, _budget_message(budget, status), ref, now)


def _budget_message(budget: ProjectBudget | None, status: ProjectStatus) -> str:
    parts: list[str] = []
    limit = status.spend_limit
    if limit is not None and limit.monthly_usd is not None:
        whose = "hard spend limit" if limit.managed else "hard spend limit set outside the operator (left alone)"
        parts.append(f"{whose} ${limit.monthly_usd:.2f} per month, enforcement {limit.enforcement or 'unknown'}")
    if status.spend_alerts:
        thresholds = ", ".join(str(r.threshold_percent) for r in status.spend_alerts)
        parts.append(f"{len(status.spend_alerts)} spend alert(s) at {thresholds}% of the budget")
    if not parts:
        return "spec.budget asks for no hard limit and no alert emails: nothing is mirrored to OpenAI"
    return "OpenAI project has a " + "; ".join(parts)


async def _mirror_spend_limit(
    deps: Deps, budget: ProjectBudget | None, status: ProjectStatus, project_id: str, outcome: Outcome
) -> ProjectStatus:
    recorded = status.spend_limit
    if not needs_spend_limit_read(budget, recorded):
        return replace(status, spend_limit=None)
    current: SpendLimit | None = await deps.admin.get_spend_limit(project_id)
    observed = None if current is None else ObservedSpendLimit(current.threshold_cents, current.enforcement_status)
    plan = plan_spend_limit(budget, observed, recorded)
    if plan.set_cents is not None:
        current = await deps.admin.set_spend_limit(project_id, plan.set_cents)
        outcome.note("Normal", Reason.SPEND_LIMIT_SET,
                     f"Set the hard spend limit of OpenAI project {project_id} to "
                     f"${plan.set_cents / 100:.2f} per month")
    elif plan.delete and current is not None:
        await deps.admin.delete_spend_limit(project_id)
        outcome.note("Normal", Reason.SPEND_LIMIT_REMOVED,
                     f"Removed the hard spend limit (${current.threshold_usd:.2f}) the operator had set on OpenAI "
                     f"project {project_id}")
        current = None
    elif plan.released and current is not None:
        outcome.note("Normal", Reason.SPEND_LIMIT_RELEASED,
                     f"The hard spend limit of OpenAI project {project_id} was changed outside the operator "
                     f"(now ${current.threshold_usd:.2f}); it is left in place")
    if current is None:
        return replace(status, spend_limit=None)
    return replace(status, spend_limit=SpendLimitStatus(current.enforcement_status, current.threshold_usd,
                                                        plan.managed))


def _records(owned: dict[str, SpendAlertRecord]) -> tuple[SpendAlertRecord, ...]:
    return tuple(sorted(owned.values(), key=lambda r: (r.threshold_percent, r.id)))


async def _mirror_spend_alerts(
    deps: Deps, ref: ProjectRef, budget: ProjectBudget | None, progress: _Progress, project_id: str,
    outcome: Outcome,
) -> None:
    """Make the operator's own spend alerts the wanted ones; every change is recorded in ``progress`` as
    soon as it is made, so an alert created just before a failure stays owned (and is not made twice).

    A created alert's id is also saved to status at once, before the next call: only that id makes
    the alert the operator's, and a crash before the end of the pass would otherwise leave an alert
    nobody owns (and a second one made by the next pass)."""
    if not needs_spend_alert_listing(budget, progress.status.spend_alerts):
        progress.status = replace(progress.status, spend_alerts=())
        return
    observed = [
        ObservedSpendAlert(a.id, a.threshold_cents, a.recipients, a.currency, a.interval, a.channel_type)
        for a in await deps.admin.list_spend_alerts(project_id)
    ]
    plan = plan_spend_alerts(budget, observed, progress.status.spend_alerts)
    owned = {record.id: record for record in plan.owned}

    def record() -> None:
        progress.status = replace(progress.status, spend_alerts=_records(owned))

    record()
    for alert_id, wanted in plan.update:
        await deps.admin.update_spend_alert(project_id, alert_id, wanted.threshold_cents, wanted.recipients)
        owned[alert_id] = SpendAlertRecord(alert_id, wanted.threshold_percent)
        record()
    for wanted in plan.create:
        created = await deps.admin.create_spend_alert(project_id, wanted.threshold_cents, wanted.recipients)
        owned[created.id] = SpendAlertRecord(created.id, wanted.threshold_percent)
        record()
        await deps.objects.patch_project_status(
            ref.name, {"spendAlerts": [r.to_dict() for r in progress.status.spend_alerts]})
    for alert_id in plan.delete:
        await deps.admin.delete_spend_alert(project_id, alert_id)
        owned.pop(alert_id, None)
        record()
    if plan.changes:
        outcome.note("Normal", Reason.SPEND_ALERTS_SYNCED,
                     f"Spend alerts of OpenAI project {project_id}: {len(plan.create)} created, "
                     f"{len(plan.update)} updated, {len(plan.delete)} deleted")


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
