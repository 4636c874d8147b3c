"""Execute the project-access plans: ``spec.members`` (project users and invites), ``spec.models``
(model permissions) and ``spec.serviceTiers`` (service-tier settings), each with its condition
(``MembersSynced``, ``ModelsSynced``, ``ServiceTiersSynced``).

The decisions are in ``reconcile/members.py`` and ``reconcile/project_controls.py``; this module
lists what they ask for (each kind at most once per pass, every page), runs the actions, and turns
the results into status, conditions and Events. A refusal (4xx) is reported on that part's
condition and leaves the project Ready: its keys keep working. Transient errors go up the usual
error path with what was done so far kept in ``progress``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from openai_operator.deps import Deps
from openai_operator.errors import NotFoundError, PermanentError
from openai_operator.model.conditions import ConditionType
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import Member, ProjectSpec
from openai_operator.model.status import MemberState, MemberStatus, ModelsStatus, ProjectStatus
from openai_operator.openai.models import OrgUser, ProjectUser
from openai_operator.operations.outcome import Outcome
from openai_operator.reconcile.members import (
    INVITE_ROLE,
    AddMember,
    ChangeRole,
    DeleteInvite,
    MemberAction,
    ObservedInvite,
    ObservedUser,
    RemoveMember,
    SendInvite,
    emails_outside_project,
    managed,
    needs_invites,
    plan_members,
)
from openai_operator.reconcile.project_controls import (
    ObservedModels,
    ObservedTiers,
    needs_models_read,
    plan_models,
    plan_service_tiers,
    tiers_status,
)

__all__ = ["sync_project_access"]


class _Ref(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def generation(self) -> int | None: ...


class _Progress(Protocol):
    status: ProjectStatus


def _condition(status: ProjectStatus, type: str, ok: bool, reason: str, message: str, ref: _Ref,
               now: datetime) -> ProjectStatus:
    return status.with_condition(type, ok, reason, message, ref.generation, now)


def _had(status: ProjectStatus, type: str, reason: str) -> bool:
    condition = status.condition(type)
    return condition is not None and condition.reason == reason


async def sync_project_access(
    deps: Deps, ref: _Ref, spec: ProjectSpec, progress: _Progress, project_id: str, outcome: Outcome,
    now: datetime,
) -> ProjectStatus:
    """Mirror members, models and service tiers, in that order; returns the status (also in ``progress``)."""
    await _sync_members(deps, ref, spec, progress, project_id, outcome, now)
    await _sync_models(deps, ref, spec, progress, project_id, outcome, now)
    await _sync_service_tiers(deps, ref, spec, progress, project_id, outcome, now)
    return progress.status


# --- members --------------------------------------------------------------------------------------


def _users(raw: Sequence[ProjectUser | OrgUser]) -> list[ObservedUser]:
    """Emails case-folded, as ``spec.members`` are (a user without an email matches no entry)."""
    return [ObservedUser(u.id, (u.email or "").lower(), u.role) for u in raw]


async def _sync_members(
    deps: Deps, ref: _Ref, spec: ProjectSpec, progress: _Progress, project_id: str, outcome: Outcome,
    now: datetime,
) -> None:
    status = progress.status
    if not managed(spec.members, spec.members_policy, status.members):
        progress.status = _condition(replace(status, members=()), ConditionType.MEMBERS_SYNCED, True,
                                     Reason.NOT_CONFIGURED,
                                     "spec.members is not set: the project's users are left as they are", ref, now)
        return
    admin = deps.admin
    wanted: tuple[Member, ...] = spec.members or ()
    try:
        project_users = _users(await admin.list_project_users(project_id))
        missing = emails_outside_project(wanted, project_users)
        org_users = _users(await admin.list_org_users(emails=missing)) if missing else []
        known = {u.email for u in org_users}
        not_in_org = [email for email in missing if email not in known]
        invites = []
        if needs_invites(wanted, status.members, not_in_org):
            invites = [ObservedInvite(i.id, i.email.lower(), i.status, i.expires_at)
                       for i in await admin.list_invites()]
    except (PermanentError, NotFoundError) as error:
        _members_failed(progress, ref, outcome, now, f"OpenAI refused to read the users of project {project_id}: "
                                                    f"{error.message}")
        return
    plan = plan_members(wanted, spec.members_policy, status.members, project_users, org_users, invites)
    before = {m.email: m for m in status.members}
    members = {m.email: m for m in plan.members}
    order = [m.email for m in plan.members]

    # Entries leaving the spec stay recorded until their user is removed (or invite withdrawn): if the
    # pass stops before that, the next one still knows they are the operator's to remove.
    leaving = {a.email: before[a.email] for a in plan.actions
               if isinstance(a, RemoveMember | DeleteInvite) and a.email in before and a.email not in members}

    def record() -> None:
        entries = [members[e] for e in order] + list(leaving.values())
        progress.status = replace(progress.status, members=tuple(entries))

    record()
    refused: list[str] = []
    for action in plan.actions:
        try:
            await _execute(deps, project_id, action, members, outcome)
            if isinstance(action, RemoveMember | DeleteInvite):
                leaving.pop(action.email, None)
        except (PermanentError, NotFoundError) as error:
            message = f"OpenAI refused to {_verb(action)} {action.email}: {error.message}"
            refused.append(message)
            if action.email in members:
                members[action.email] = replace(members[action.email], state=MemberState.FAILED, message=message,
                                                reason=Reason.MEMBERS_SYNC_FAILED)
        record()
        if isinstance(action, SendInvite):
            # The invite id is what makes the invite the operator's (to withdraw it later): saved at
            # once, so a crash before the end of the pass does not leave it unrecorded.
            await deps.objects.patch_project_status(
                ref.name, {"members": [m.to_dict() for m in progress.status.members]})
    for email, member in members.items():
        earlier = before.get(email)
        if earlier is not None and earlier.state == MemberState.INVITED and member.state == MemberState.ACTIVE:
            outcome.note("Normal", Reason.MEMBER_ADDED,
                         f"{email} accepted the invite and is in OpenAI project {project_id} as {member.role}")
    for email in plan.newly_failed:
        outcome.note("Warning", Reason.INVITE_EXPIRED,
                     f"The invite of {email} to OpenAI project {project_id} expired twice; not sent again")
    _members_condition(progress, ref, outcome, now, project_id, refused)


def _verb(action: MemberAction) -> str:
    return {AddMember: "add", ChangeRole: "change the role of", RemoveMember: "remove",
            SendInvite: "invite", DeleteInvite: "withdraw the invite of"}[type(action)]


async def _execute(
    deps: Deps, project_id: str, action: MemberAction, members: dict[str, MemberStatus], outcome: Outcome
) -> None:
    admin = deps.admin
    if isinstance(action, AddMember):
        await admin.add_project_user(project_id, action.user_id, action.role)
        outcome.note("Normal", Reason.MEMBER_ADDED,
                     f"Added {action.email} to OpenAI project {project_id} as {action.role}")
        if action.drift:
            outcome.note("Normal", Reason.DRIFT_REPAIRED,
                         f"{action.email} had been removed from OpenAI project {project_id} outside the operator; "
                         "added back")
    elif isinstance(action, ChangeRole):
        await admin.update_project_user(project_id, action.user_id, action.role)
        outcome.note("Normal", Reason.MEMBER_ROLE_CHANGED,
                     f"Changed the role of {action.email} in OpenAI project {project_id} from {action.was} to "
                     f"{action.role}")
        if action.drift:
            outcome.note("Normal", Reason.DRIFT_REPAIRED,
                         f"The role of {action.email} had been changed to {action.was} outside the operator; set "
                         f"back to {action.role}")
    elif isinstance(action, RemoveMember):
        await admin.remove_project_user(project_id, action.user_id)
        why = "membersPolicy is Exclusive and it is not in spec.members" if action.exclusive \
            else "it left spec.members"
        outcome.note("Normal", Reason.MEMBER_REMOVED,
                     f"Removed {action.email or action.user_id} from OpenAI project {project_id}: {why}")
    elif isinstance(action, SendInvite):
        if action.replaces is not None:
            await admin.delete_invite(action.replaces)
        invite = await admin.create_invite(action.email, role=INVITE_ROLE, projects={project_id: action.role})
        members[action.email] = replace(members[action.email], invite_id=invite.id,
                                        invite_expires_at=invite.expires_at)
        if action.resend:
            outcome.note("Normal", Reason.INVITE_RESENT,
                         f"The invite of {action.email} expired; sent a new one ({invite.id})")
        else:
            outcome.note("Normal", Reason.INVITE_SENT,
                         f"Invited {action.email} to the organisation (role {INVITE_ROLE}) and to OpenAI project "
                         f"{project_id} as {action.role} ({invite.id})")
    else:
        await admin.delete_invite(action.invite_id)
        outcome.note("Normal", Reason.MEMBER_REMOVED,
                     f"Withdrew the pending invite {action.invite_id} of {action.email}: it left spec.members")


def _members_failed(progress: _Progress, ref: _Ref, outcome: Outcome, now: datetime, message: str) -> None:
    if not _had(progress.status, ConditionType.MEMBERS_SYNCED, Reason.MEMBERS_SYNC_FAILED):
        outcome.note("Warning", Reason.MEMBERS_SYNC_FAILED, message)
    progress.status = _condition(progress.status, ConditionType.MEMBERS_SYNCED, False, Reason.MEMBERS_SYNC_FAILED,
                                 message, ref, now)


def _members_condition(progress: _Progress, ref: _Ref, outcome: Outcome, now: datetime, project_id: str,
                       refused: Sequence[str]) -> None:
    if refused:
        _members_failed(progress, ref, outcome, now, "; ".join(refused))
        return
    status = progress.status
    failed = [m.email for m in status.members if m.state == MemberState.FAILED]
    invited = [m.email for m in status.members if m.state == MemberState.INVITED]
    active = [m for m in status.members if m.state == MemberState.ACTIVE]
    if failed:
        reason, ok = Reason.INVITE_EXPIRED, False
        message = ("invites expired twice without being accepted: " + ", ".join(failed)
                   + "; remove and re-add the entries (or invite by hand) to try again")
    elif invited:
        reason, ok = Reason.INVITE_PENDING, False
        message = "waiting for these members to accept their invites: " + ", ".join(invited)
    else:
        reason, ok = Reason.MEMBERS_SYNCED, True
        message = f"{len(active)} member(s) of spec.members are users of OpenAI project {project_id}"
    if ok and _had(status, ConditionType.MEMBERS_SYNCED, Reason.MEMBERS_SYNC_FAILED):
        outcome.note("Normal", Reason.MEMBERS_SYNCED, f"spec.members are mirrored to OpenAI project {project_id} again")
    progress.status = _condition(status, ConditionType.MEMBERS_SYNCED, ok, reason, message, ref, now)


# --- models ---------------------------------------------------------------------------------------


async def _sync_models(
    deps: Deps, ref: _Ref, spec: ProjectSpec, progress: _Progress, project_id: str, outcome: Outcome,
    now: datetime,
) -> None:
    status = progress.status
    kind = ConditionType.MODELS_SYNCED
    if not needs_models_read(spec.models, status.models):
        progress.status = _condition(status, kind, True, Reason.NOT_CONFIGURED,
                                     "spec.models is not set: the project may call every model", ref, now)
        return
    try:
        observed = None
        if spec.models is not None:
            current = await deps.admin.get_model_permissions(project_id)
            observed = ObservedModels(current.mode, current.model_ids)
        plan = plan_models(spec.models, observed, status.models)
        if plan.delete:
            await deps.admin.delete_model_permissions(project_id)
            outcome.note("Normal", Reason.MODELS_REMOVED,
                         f"spec.models was removed: deleted the model permissions of OpenAI project {project_id}, "
                         "which may call every model again")
        if plan.set_to is not None:
            await deps.admin.set_model_permissions(project_id, plan.set_to.mode, plan.set_to.models)
            if plan.drift:
                outcome.note("Normal", Reason.DRIFT_REPAIRED,
                             f"The model permissions of OpenAI project {project_id} had been changed outside the "
                             "operator; set back to spec.models")
            else:
                outcome.note("Normal", Reason.MODELS_MIRRORED,
                             f"Set the model permissions of OpenAI project {project_id}: {_models_text(plan.set_to)}")
    except (PermanentError, NotFoundError) as error:
        message = f"OpenAI refused to mirror spec.models to project {project_id}: {error.message}"
        if not _had(status, kind, Reason.MODELS_MIRROR_FAILED):
            outcome.note("Warning", Reason.MODELS_MIRROR_FAILED, message)
        progress.status = _condition(status, kind, False, Reason.MODELS_MIRROR_FAILED, message, ref, now)
        return
    status = replace(status, models=plan.status)
    if plan.status is None:
        progress.status = _condition(status, kind, True, Reason.NOT_CONFIGURED,
                                     "spec.models is not set: the project may call every model", ref, now)
        return
    progress.status = _condition(status, kind, True, Reason.MODELS_MIRRORED,
                                 f"OpenAI project {project_id}: {_models_text(plan.status)}", ref, now)


def _models_text(models: ModelsStatus) -> str:
    listed = ", ".join(models.models)
    if models.mode == "allow_list":
        return f"only {listed} may be called"
    return f"every model but {listed} may be called"


# --- service tiers --------------------------------------------------------------------------------


async def _sync_service_tiers(
    deps: Deps, ref: _Ref, spec: ProjectSpec, progress: _Progress, project_id: str, outcome: Outcome,
    now: datetime,
) -> None:
    status = progress.status
    kind = ConditionType.SERVICE_TIERS_SYNCED
    tiers = spec.service_tiers
    if tiers is None:
        progress.status = _condition(replace(status, service_tiers=None), kind, True, Reason.NOT_CONFIGURED,
                                     "spec.serviceTiers is not set: the project's service tiers are left as they "
                                     "are", ref, now)
        return
    try:
        current = await deps.admin.get_service_tier_settings(project_id)
        observed = ObservedTiers(current.default, current.enabled_tiers)
        plan = plan_service_tiers(tiers, observed, status.service_tiers)
        if plan.changes:
            current = await deps.admin.update_service_tier_settings(project_id, default=plan.default,
                                                                    enabled_tiers=plan.enabled)
            observed = ObservedTiers(current.default, current.enabled_tiers)
            reason = Reason.DRIFT_REPAIRED if plan.drift else Reason.SERVICE_TIERS_MIRRORED
            what = "had been changed outside the operator; set back to" if plan.drift else "set to"
            outcome.note("Normal", reason, f"Service tiers of OpenAI project {project_id} {what} "
                                           f"{_tiers_text(observed)}")
    except (PermanentError, NotFoundError) as error:
        message = f"OpenAI refused to mirror spec.serviceTiers to project {project_id}: {error.message}"
        if not _had(status, kind, Reason.SERVICE_TIERS_MIRROR_FAILED):
            outcome.note("Warning", Reason.SERVICE_TIERS_MIRROR_FAILED, message)
        progress.status = _condition(status, kind, False, Reason.SERVICE_TIERS_MIRROR_FAILED, message, ref, now)
        return
    status = replace(status, service_tiers=tiers_status(observed))
    progress.status = _condition(status, kind, True, Reason.SERVICE_TIERS_MIRRORED,
                                 f"OpenAI project {project_id}: {_tiers_text(observed)}", ref, now)


def _tiers_text(observed: ObservedTiers) -> str:
    enabled = "all tiers" if observed.enabled == "all" else (", ".join(observed.enabled) or "Standard only")
    return f"default {observed.default}, enabled {enabled}"
