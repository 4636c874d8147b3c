"""Table tests of the project-access planners (no I/O): ``spec.members`` against project users,
organisation users and invites (``reconcile/members.py``), ``spec.models`` and ``spec.serviceTiers``
(``reconcile/project_controls.py``), and the spec checks behind them (``model/specs.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openai_operator.errors import SpecError
from openai_operator.model.specs import Member, MembersPolicy, ProjectModels, ServiceTiers, parse_project_spec
from openai_operator.model.status import MemberState, MemberStatus, ModelsStatus, ServiceTiersStatus
from openai_operator.reconcile.members import (
    AddMember,
    ChangeRole,
    DeleteInvite,
    MembersPlan,
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
    ModelsPlan,
    ObservedModels,
    ObservedTiers,
    TiersPlan,
    needs_models_read,
    plan_models,
    plan_service_tiers,
)

pytestmark = pytest.mark.unit

EXPIRES = datetime(2026, 12, 9, tzinfo=UTC)
ADDITIVE, EXCLUSIVE = MembersPolicy.ADDITIVE, MembersPolicy.EXCLUSIVE


def member(email: str, role: str = "member") -> Member:
    return Member(email=email, role=role)  # type: ignore[arg-type]


def active(email: str, user_id: str, role: str = "member") -> MemberStatus:
    return MemberStatus(email, role, MemberState.ACTIVE, user_id=user_id)


def invited(email: str, invite_id: str | None, sent: int = 1, role: str = "member") -> MemberStatus:
    return MemberStatus(email, role, MemberState.INVITED, invite_id=invite_id,
                        invite_expires_at=EXPIRES if invite_id else None, invites_sent=sent)


ANA = ObservedUser("user-ana", "ana@example.com", "member")
BEN_IN_ORG = ObservedUser("user-ben", "ben@example.com", "reader")
HAND = ObservedUser("user-hand", "hand@example.com", "owner")


@pytest.mark.parametrize(
    ("members", "policy", "recorded", "project", "org", "invites", "expected"),
    [
        pytest.param([member("ana@example.com")], ADDITIVE, [], [ANA], [], [],
                     MembersPlan((), (active("ana@example.com", "user-ana"),)),
                     id="a member already in the project with its role: nothing to do"),
        pytest.param([member("ben@example.com", "owner")], ADDITIVE, [], [], [BEN_IN_ORG], [],
                     MembersPlan((AddMember("ben@example.com", "user-ben", "owner"),),
                                 (active("ben@example.com", "user-ben", "owner"),)),
                     id="an organisation user is added to the project with the spec's role"),
        pytest.param([member("ana@example.com", "owner")], ADDITIVE, [active("ana@example.com", "user-ana")],
                     [ANA], [], [],
                     MembersPlan((ChangeRole("ana@example.com", "user-ana", "owner", "member"),),
                                 (active("ana@example.com", "user-ana", "owner"),)),
                     id="a changed role in the spec changes the project user's role"),
        pytest.param([member("ana@example.com", "owner")], ADDITIVE, [active("ana@example.com", "user-ana", "owner")],
                     [ANA], [], [],
                     MembersPlan((ChangeRole("ana@example.com", "user-ana", "owner", "member", drift=True),),
                                 (active("ana@example.com", "user-ana", "owner"),)),
                     id="a role changed in the dashboard is set back, as drift"),
        pytest.param([member("ben@example.com")], ADDITIVE, [active("ben@example.com", "user-ben")], [],
                     [BEN_IN_ORG], [],
                     MembersPlan((AddMember("ben@example.com", "user-ben", "member", drift=True),),
                                 (active("ben@example.com", "user-ben"),)),
                     id="a member removed in the dashboard is added back, as drift"),
        pytest.param([], ADDITIVE, [active("ana@example.com", "user-ana")], [ANA, HAND], [], [],
                     MembersPlan((RemoveMember("ana@example.com", "user-ana"),), ()),
                     id="a member who left the spec is removed; a hand-added user is left alone"),
        pytest.param([], EXCLUSIVE, [active("ana@example.com", "user-ana")], [ANA, HAND], [], [],
                     MembersPlan((RemoveMember("ana@example.com", "user-ana"),
                                  RemoveMember("hand@example.com", "user-hand", exclusive=True)), ()),
                     id="Exclusive also removes users added outside the resource"),
        pytest.param([member("new@example.com", "owner")], ADDITIVE, [], [], [], [],
                     MembersPlan((SendInvite("new@example.com", "owner"),),
                                 (MemberStatus("new@example.com", "owner", MemberState.INVITED, invites_sent=1),)),
                     id="someone not in the organisation is invited with the project role"),
        pytest.param([member("new@example.com")], ADDITIVE, [invited("new@example.com", "inv-1")], [], [],
                     [ObservedInvite("inv-1", "new@example.com", "pending", EXPIRES)],
                     MembersPlan((), (invited("new@example.com", "inv-1"),)),
                     id="a pending invite is waited for, not sent again"),
        pytest.param([member("new@example.com")], ADDITIVE, [], [], [],
                     [ObservedInvite("inv-9", "new@example.com", "pending", EXPIRES)],
                     MembersPlan((), (invited("new@example.com", "inv-9", sent=0),)),
                     id="a pending invite nobody recorded (status lost) is adopted, not duplicated"),
        pytest.param([member("new@example.com")], ADDITIVE, [invited("new@example.com", "inv-1")], [], [],
                     [ObservedInvite("inv-1", "new@example.com", "expired", EXPIRES)],
                     MembersPlan((SendInvite("new@example.com", "member", resend=True, replaces="inv-1"),),
                                 (MemberStatus("new@example.com", "member", MemberState.INVITED, invites_sent=2),)),
                     id="an expired invite is sent once more"),
        pytest.param([member("new@example.com")], ADDITIVE, [invited("new@example.com", "inv-2", sent=2)], [], [],
                     [ObservedInvite("inv-2", "new@example.com", "expired", EXPIRES)],
                     MembersPlan((), (MemberStatus("new@example.com", "member", MemberState.FAILED,
                                                   invite_id="inv-2", invite_expires_at=EXPIRES, invites_sent=2,
                                                   message="the invite expired 2 times without being accepted",
                                                   reason="InviteExpired"),),
                                 ("new@example.com",)),
                     id="the second expiry is reported as Failed, nothing more is sent"),
        pytest.param([member("new@example.com", "owner")], ADDITIVE, [invited("new@example.com", "inv-1")],
                     [ObservedUser("user-new", "new@example.com", "member")], [],
                     [ObservedInvite("inv-1", "new@example.com", "accepted", EXPIRES)],
                     MembersPlan((ChangeRole("new@example.com", "user-new", "owner", "member"),),
                                 (active("new@example.com", "user-new", "owner"),)),
                     id="an accepted invite makes the member Active, with the role the spec has now"),
        pytest.param([], ADDITIVE, [invited("new@example.com", "inv-1")], [], [],
                     [ObservedInvite("inv-1", "new@example.com", "pending", EXPIRES)],
                     MembersPlan((DeleteInvite("new@example.com", "inv-1"),), ()),
                     id="an invited member who left the spec has the invite withdrawn"),
        pytest.param([], ADDITIVE, [invited("new@example.com", "inv-9", sent=0)], [], [],
                     [ObservedInvite("inv-9", "new@example.com", "pending", EXPIRES)], MembersPlan(),
                     id="an invite someone else sent is never withdrawn"),
    ],
)
def test_plan_members(members: list[Member], policy: MembersPolicy, recorded: list[MemberStatus],
                      project: list[ObservedUser], org: list[ObservedUser], invites: list[ObservedInvite],
                      expected: MembersPlan) -> None:
    assert plan_members(members, policy, recorded, project, org, invites) == expected


def test_a_failed_member_stays_failed_without_calls() -> None:
    failed = MemberStatus("new@example.com", "member", MemberState.FAILED, invite_id="inv-2", invites_sent=2)
    plan = plan_members([member("new@example.com")], ADDITIVE, [failed], [], [], [])
    assert plan.actions == ()
    assert plan.members == (failed,)
    assert plan.newly_failed == ()


@pytest.mark.parametrize(
    ("members", "policy", "recorded", "expected"),
    [
        pytest.param(None, ADDITIVE, [], False, id="no spec.members and nothing recorded: no call at all"),
        pytest.param([], ADDITIVE, [], True, id="an empty list is managed"),
        pytest.param(None, ADDITIVE, [active("a@example.com", "u")], True,
                     id="recorded members of a removed list are still cleaned up"),
    ],
)
def test_when_the_users_are_listed(members: list[Member] | None, policy: MembersPolicy,
                                   recorded: list[MemberStatus], expected: bool) -> None:
    assert managed(members, policy, recorded) is expected


def test_only_missing_emails_are_looked_up_and_invites_listed_only_when_needed() -> None:
    wanted = [member("ana@example.com"), member("new@example.com")]
    assert emails_outside_project(wanted, [ANA]) == ("new@example.com",)
    assert needs_invites(wanted, [], ["new@example.com"]) is True
    assert needs_invites(wanted, [active("ana@example.com", "user-ana")], []) is False
    assert needs_invites([], [invited("gone@example.com", "inv-1")], []) is True


MODELS_ALLOW = ProjectModels(allow=("gpt-4o-mini", "gpt-4o"))
OURS = ModelsStatus("allow_list", ("gpt-4o-mini", "gpt-4o"))


@pytest.mark.parametrize(
    ("models", "observed", "recorded", "expected"),
    [
        pytest.param(MODELS_ALLOW, ObservedModels("deny_list", ()), None,
                     ModelsPlan(set_to=OURS, status=OURS), id="an allow list is set on a project without one"),
        pytest.param(MODELS_ALLOW, ObservedModels("allow_list", ("gpt-4o", "gpt-4o-mini")), OURS,
                     ModelsPlan(status=OURS), id="the same list in another order: nothing to do"),
        pytest.param(MODELS_ALLOW, ObservedModels("allow_list", ("gpt-4o",)), OURS,
                     ModelsPlan(set_to=OURS, drift=True, status=OURS), id="a list edited outside is drift, set back"),
        pytest.param(ProjectModels(deny=("gpt-4o",)), ObservedModels("allow_list", ("gpt-4o-mini", "gpt-4o")), OURS,
                     ModelsPlan(set_to=ModelsStatus("deny_list", ("gpt-4o",)),
                                status=ModelsStatus("deny_list", ("gpt-4o",))),
                     id="switching to a deny list replaces the allow list (not drift)"),
        pytest.param(None, None, OURS, ModelsPlan(delete=True),
                     id="removing spec.models deletes what the operator set"),
        pytest.param(None, None, None, ModelsPlan(), id="no spec.models and none recorded: nothing"),
    ],
)
def test_plan_models(models: ProjectModels | None, observed: ObservedModels | None, recorded: ModelsStatus | None,
                     expected: ModelsPlan) -> None:
    assert plan_models(models, observed, recorded) == expected


def test_models_are_read_only_when_asked_for_or_recorded() -> None:
    assert needs_models_read(None, None) is False
    assert needs_models_read(None, OURS) is True
    assert needs_models_read(MODELS_ALLOW, None) is True


@pytest.mark.parametrize(
    ("tiers", "observed", "recorded", "expected"),
    [
        pytest.param(ServiceTiers(default="fast"), ObservedTiers("standard", ()), None, TiersPlan(default="fast"),
                     id="only the default is managed: only it is sent"),
        pytest.param(ServiceTiers(enabled=("all",)), ObservedTiers("standard", ("flex",)), None,
                     TiersPlan(enabled="all"), id="enabled [all] is OpenAI's 'all'"),
        pytest.param(ServiceTiers(enabled=("fast", "flex")), ObservedTiers("scale", ("flex", "fast")), None,
                     TiersPlan(), id="same tiers in another order, unmanaged default: nothing to do"),
        pytest.param(ServiceTiers(default="standard", enabled=()), ObservedTiers("standard", ("flex",)),
                     ServiceTiersStatus("standard", ()), TiersPlan(enabled=(), drift=True),
                     id="tiers enabled outside are drift and switched off again"),
    ],
)
def test_plan_service_tiers(tiers: ServiceTiers, observed: ObservedTiers, recorded: ServiceTiersStatus | None,
                            expected: TiersPlan) -> None:
    assert plan_service_tiers(tiers, observed, recorded) == expected


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"members": [{"email": "a@example.com"}, {"email": "A@Example.com"}]}, "spec.members",
                     id="emails that differ only in case are duplicates"),
        pytest.param({"members": [{"email": "not-an-email"}]}, "spec.members[0].email", id="a malformed email"),
        pytest.param({"members": [{"email": "a@example.com", "role": "reader"}]}, "spec.members[0].role",
                     id="reader is an organisation role, not a project role"),
        pytest.param({"membersPolicy": "Exclusive"}, "spec.membersPolicy", id="Exclusive without members"),
        pytest.param({"models": {"allow": ["a"], "deny": ["b"]}}, "spec.models.allow", id="allow and deny together"),
        pytest.param({"models": {}}, "spec.models.allow", id="neither allow nor deny"),
        pytest.param({"models": {"deny": []}}, "spec.models.deny", id="an empty deny list"),
        pytest.param({"models": {"allow": ["gpt-4o", "gpt-4o"]}}, "spec.models.allow", id="a model listed twice"),
        pytest.param({"models": {"allow": ["-bad"]}}, "spec.models.allow[0]", id="an invalid model id"),
        pytest.param({"serviceTiers": {}}, "spec.serviceTiers.default", id="an empty serviceTiers does nothing"),
        pytest.param({"serviceTiers": {"enabled": ["all", "flex"]}}, "spec.serviceTiers.enabled",
                     id="all with other tiers"),
        pytest.param({"serviceTiers": {"default": "flex"}}, "spec.serviceTiers.default",
                     id="flex is not a default tier"),
    ],
)
def test_bad_access_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_project_spec(spec, name="p")
    assert info.value.field_path == field


def test_member_emails_are_normalised_to_lower_case() -> None:
    spec = parse_project_spec({"members": [{"email": "Ana.Smith@Example.COM", "role": "owner"}]}, name="p")
    assert spec.members == (member("ana.smith@example.com", "owner"),)
