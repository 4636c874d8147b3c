"""Who is in an OpenAIProject's OpenAI project: ``spec.members`` mirrored to the project's users,
with organisation invites for people who are not in the organisation yet.

Pure: facts in (the project's users, the organisation users with the wanted emails, the invites,
what status recorded), actions and the new ``status.members`` out. The executor
(``operations/project_access.py``) lists each kind at most once per pass and only when this module
says the pass needs it, so a project without ``spec.members`` costs no call at all.

Ownership: a user is the operator's when ``status.members`` records it ``Active``, an invite when
the operator sent it (``invitesSent``; a pending invite someone else sent is waited for, never
withdrawn). Leaving the spec removes exactly those; ``membersPolicy: Exclusive`` also removes every
other project user.

Invites: a member who is not in the organisation gets one invite (organisation role ``reader``,
this project with the member's role). While it is pending the member is ``Invited``; once accepted
the person is a project user and the member ``Active`` (the role is corrected if it was changed
meanwhile). An invite that expires (or disappears) is sent once more; when that one expires too,
the member is ``Failed`` with reason ``InviteExpired`` and nothing more is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from openai_operator.model.reasons import Reason
from openai_operator.model.specs import Member, MembersPolicy
from openai_operator.model.status import MemberState, MemberStatus

MAX_INVITES_SENT = 2
"""The first invite and one re-send after it expired."""
INVITE_ROLE = "reader"
"""The organisation role of an invitee (OpenAI's org roles are owner and reader)."""


@dataclass(frozen=True)
class ObservedUser:
    """A project user or an organisation user; ``email`` already case-folded."""

    id: str
    email: str
    role: str | None = None


@dataclass(frozen=True)
class ObservedInvite:
    id: str
    email: str
    status: str
    """``pending``, ``accepted`` or ``expired``."""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AddMember:
    email: str
    user_id: str
    role: str
    drift: bool = False
    """The operator had added this user before and someone removed it."""


@dataclass(frozen=True)
class ChangeRole:
    email: str
    user_id: str
    role: str
    was: str
    drift: bool = False
    """The operator had set this role before and someone changed it."""


@dataclass(frozen=True)
class RemoveMember:
    email: str
    user_id: str
    exclusive: bool = False
    """Removed because ``membersPolicy: Exclusive`` (it was never in the spec), not because it left it."""


@dataclass(frozen=True)
class SendInvite:
    email: str
    role: str
    """The project role the invite grants."""
    resend: bool = False
    replaces: str | None = None
    """The expired invite this one follows (deleted first, so the list keeps one per person)."""


@dataclass(frozen=True)
class DeleteInvite:
    email: str
    invite_id: str


MemberAction = AddMember | ChangeRole | RemoveMember | SendInvite | DeleteInvite


@dataclass(frozen=True)
class MembersPlan:
    actions: tuple[MemberAction, ...] = ()
    members: tuple[MemberStatus, ...] = ()
    """``status.members`` once the actions are done; a ``SendInvite`` member's ``invite_id`` is
    filled in by the executor from OpenAI's answer."""
    newly_failed: tuple[str, ...] = field(default=())
    """Emails whose second invite expired in this pass (one Warning Event each)."""


def managed(members: Sequence[Member] | None, policy: MembersPolicy, recorded: Sequence[MemberStatus]) -> bool:
    """Whether a pass looks at the project's users at all (otherwise it costs no call)."""
    return members is not None or policy is MembersPolicy.EXCLUSIVE or bool(recorded)


def emails_outside_project(members: Sequence[Member], project_users: Sequence[ObservedUser]) -> tuple[str, ...]:
    """Wanted emails that are not project users: the ones an organisation-user listing must look up."""
    present = {u.email for u in project_users}
    return tuple(m.email for m in members if m.email not in present)


def needs_invites(
    members: Sequence[Member], recorded: Sequence[MemberStatus], not_in_org: Sequence[str]
) -> bool:
    """Whether the invites must be listed: someone is not in the organisation, or an invite the
    operator recorded may need deleting (its member left the spec)."""
    wanted = {m.email for m in members}
    return bool(not_in_org) or any(r.invite_id and r.invites_sent and r.email not in wanted for r in recorded)


def _invite_for(email: str, record: MemberStatus | None, invites: Sequence[ObservedInvite]) -> ObservedInvite | None:
    """The recorded invite if OpenAI still lists it, else a pending one for the same address."""
    if record is not None and record.invite_id:
        recorded = next((i for i in invites if i.id == record.invite_id), None)
        if recorded is not None:
            return recorded
    return next((i for i in invites if i.email == email and i.status == "pending"), None)


def plan_members(
    members: Sequence[Member] | None,
    policy: MembersPolicy,
    recorded: Sequence[MemberStatus],
    project_users: Sequence[ObservedUser],
    org_users: Sequence[ObservedUser],
    invites: Sequence[ObservedInvite],
) -> MembersPlan:
    """Make the project's users ``members`` (see the module docstring for the rules).

    ``org_users`` need only hold the organisation users among ``emails_outside_project``, and
    ``invites`` may be empty when :func:`needs_invites` said no listing was needed.
    """
    wanted = tuple(members or ())
    by_record = {r.email: r for r in recorded}
    in_project = {u.email: u for u in project_users}
    in_org = {u.email: u for u in org_users}
    actions: list[MemberAction] = []
    out: list[MemberStatus] = []
    newly_failed: list[str] = []
    for member in wanted:
        email, role = member.email, str(member.role)
        record = by_record.get(email)
        was_active = record is not None and record.state == MemberState.ACTIVE
        user = in_project.get(email)
        if user is not None:
            if user.role != role:
                drift = was_active and record is not None and record.role == role
                actions.append(ChangeRole(email, user.id, role, user.role or "", drift=drift))
            out.append(MemberStatus(email, role, MemberState.ACTIVE, user_id=user.id))
            continue
        org_user = in_org.get(email)
        if org_user is not None:
            actions.append(AddMember(email, org_user.id, role, drift=was_active))
            out.append(MemberStatus(email, role, MemberState.ACTIVE, user_id=org_user.id))
            continue
        out.append(_invited(email, role, record, _invite_for(email, record, invites), actions, newly_failed))
    kept = {m.email for m in wanted}
    removed: set[str] = set()
    for record in recorded:
        if record.email in kept:
            continue
        user = in_project.get(record.email)
        if user is not None and record.state == MemberState.ACTIVE:
            actions.append(RemoveMember(record.email, user.id))
            removed.add(user.id)
        elif record.invite_id and record.invites_sent and any(
            i.id == record.invite_id and i.status == "pending" for i in invites
        ):
            actions.append(DeleteInvite(record.email, record.invite_id))
    if policy is MembersPolicy.EXCLUSIVE:
        for user in project_users:
            if user.email not in kept and user.id not in removed:
                actions.append(RemoveMember(user.email, user.id, exclusive=True))
    return MembersPlan(tuple(actions), tuple(out), tuple(newly_failed))


def _invited(
    email: str, role: str, record: MemberStatus | None, invite: ObservedInvite | None,
    actions: list[MemberAction], newly_failed: list[str],
) -> MemberStatus:
    """The status of a member who is not in the organisation, and the invite action it needs."""
    sent = record.invites_sent if record is not None else 0
    if invite is not None and invite.status == "pending":
        return MemberStatus(email, role, MemberState.INVITED, invite_id=invite.id,
                            invite_expires_at=invite.expires_at, invites_sent=sent)
    if record is not None and record.state == MemberState.FAILED and sent >= MAX_INVITES_SENT:
        return replace(record, role=role)
    replaces = invite.id if invite is not None and invite.status == "expired" else None
    if sent >= MAX_INVITES_SENT:
        newly_failed.append(email)
        return MemberStatus(email, role, MemberState.FAILED, invite_id=record.invite_id if record else None,
                            invite_expires_at=record.invite_expires_at if record else None, invites_sent=sent,
                            message=f"the invite expired {sent} times without being accepted",
                            reason=Reason.INVITE_EXPIRED)
    actions.append(SendInvite(email, role, resend=sent > 0, replaces=replaces))
    return MemberStatus(email, role, MemberState.INVITED, invites_sent=sent + 1)


def summary(members: Sequence[MemberStatus]) -> Mapping[str, tuple[str, ...]]:
    """Emails by state, for the condition message."""
    out: dict[str, list[str]] = {}
    for member in members:
        out.setdefault(member.state, []).append(member.email)
    return {state: tuple(emails) for state, emails in out.items()}
