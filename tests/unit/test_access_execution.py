"""The OpenAIProject pass with a fake Admin API (no I/O), for members, models and service tiers: how
many calls a pass makes (one list per kind, and only the kinds it needs), how a refusal is reported
(that part's condition, the project stays Ready), and what status records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError, PermanentError, TransientError
from openai_operator.metrics import OperatorMetrics
from openai_operator.openai.models import (
    Invite,
    ModelPermissions,
    OrgUser,
    Project,
    ProjectUser,
    ServiceTierSettings,
)
from openai_operator.operations.projects import ProjectRef, reconcile_project
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REF = ProjectRef("team-a", "uid-1", 1)
PID = "proj_1"


@dataclass
class FakeAccessAdmin:
    """One project with users, an organisation, invites, model permissions and service tiers;
    ``fail[name]`` raises on that call (one error per call, then success)."""

    project_users: dict[str, ProjectUser] = field(default_factory=dict)
    org_users: dict[str, OrgUser] = field(default_factory=dict)
    invites: dict[str, Invite] = field(default_factory=dict)
    models: ModelPermissions | None = None
    tiers: ServiceTierSettings = field(default_factory=lambda: ServiceTierSettings("standard", ()))
    fail: dict[str, list[OperatorError]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail.get(name):
            raise self.fail[name].pop(0)

    async def get_project(self, project_id: str) -> Project:
        self._call("get_project")
        return Project(PID, "team-a", "active", NOW)

    async def list_project_users(self, project_id: str, *, page_size: int = 100) -> list[ProjectUser]:
        self._call("list_project_users")
        return list(self.project_users.values())

    async def add_project_user(self, project_id: str, user_id: str, role: str) -> ProjectUser:
        self._call("add_project_user")
        user = ProjectUser(user_id, self.org_users[user_id].email, role)
        self.project_users[user_id] = user
        return user

    async def update_project_user(self, project_id: str, user_id: str, role: str) -> ProjectUser:
        self._call("update_project_user")
        self.project_users[user_id] = ProjectUser(user_id, self.project_users[user_id].email, role)
        return self.project_users[user_id]

    async def remove_project_user(self, project_id: str, user_id: str) -> bool:
        self._call("remove_project_user")
        return self.project_users.pop(user_id, None) is not None

    async def list_org_users(self, *, emails: Sequence[str] = (), page_size: int = 100) -> list[OrgUser]:
        self._call("list_org_users")
        return [u for u in self.org_users.values() if not emails or u.email in emails]

    async def list_invites(self, *, page_size: int = 100) -> list[Invite]:
        self._call("list_invites")
        return list(self.invites.values())

    async def create_invite(self, email: str, *, role: str = "reader",
                            projects: Mapping[str, str] | None = None) -> Invite:
        self._call("create_invite")
        invite = Invite(f"invite-{len(self.invites) + 1}", email, role, "pending", NOW, dict(projects or {}))
        self.invites[invite.id] = invite
        return invite

    async def delete_invite(self, invite_id: str) -> bool:
        self._call("delete_invite")
        return self.invites.pop(invite_id, None) is not None

    async def get_model_permissions(self, project_id: str) -> ModelPermissions:
        self._call("get_model_permissions")
        return self.models or ModelPermissions("deny_list", ())

    async def set_model_permissions(self, project_id: str, mode: str, model_ids: Sequence[str]) -> ModelPermissions:
        self._call("set_model_permissions")
        self.models = ModelPermissions(mode, tuple(model_ids))
        return self.models

    async def delete_model_permissions(self, project_id: str) -> bool:
        self._call("delete_model_permissions")
        self.models = None
        return True

    async def get_service_tier_settings(self, project_id: str) -> ServiceTierSettings:
        self._call("get_service_tier_settings")
        return self.tiers

    async def update_service_tier_settings(self, project_id: str, *, default: str | None = None,
                                           enabled_tiers: str | Sequence[str] | None = None) -> ServiceTierSettings:
        self._call("update_service_tier_settings")
        enabled = self.tiers.enabled_tiers if enabled_tiers is None else \
            (enabled_tiers if isinstance(enabled_tiers, str) else tuple(enabled_tiers))
        self.tiers = ServiceTierSettings(default or self.tiers.default, enabled)
        return self.tiers


@dataclass
class FakeObjects:
    async def patch_project_status(self, name: str, status: dict[str, Any]) -> None:
        return None


def deps_with(admin: FakeAccessAdmin) -> Deps:
    config = OperatorConfig(admin_key=SecretValue("sk-admin-" + "a" * 40), fingerprint_key=b"k" * 32)
    return Deps(config=config, admin=admin, kube=None,  # type: ignore[arg-type]
                objects=FakeObjects(), metrics=OperatorMetrics(), vault_client_factory=None,  # type: ignore[arg-type]
                clock=lambda: NOW, instance_id="test1")


async def run(admin: FakeAccessAdmin, spec: dict[str, Any], status: dict[str, Any] | None = None) -> Any:
    status = {"projectId": PID, **(status or {})}
    return await reconcile_project(deps_with(admin), REF, spec_raw=spec, status_raw=status, keys=0)


def cond(outcome: Any, type: str) -> dict[str, Any]:
    return next(c for c in outcome.status["conditions"] if c["type"] == type)


def reasons(outcome: Any) -> list[str]:
    return [note.reason for note in outcome.notes]


ANA = OrgUser("user-ana", "ana@example.com", "reader")


async def test_a_project_without_access_fields_makes_no_access_calls() -> None:
    admin = FakeAccessAdmin()
    outcome = await run(admin, {})
    assert admin.calls == ["get_project"]
    for kind in ("MembersSynced", "ModelsSynced", "ServiceTiersSynced"):
        assert (cond(outcome, kind)["status"], cond(outcome, kind)["reason"]) == ("True", "NotConfigured")


async def test_the_steady_state_reads_each_kind_once_and_writes_nothing() -> None:
    admin = FakeAccessAdmin(project_users={"user-ana": ProjectUser("user-ana", "Ana@Example.com", "owner")},
                            models=ModelPermissions("allow_list", ("gpt-4o",)),
                            tiers=ServiceTierSettings("fast", "all"))
    spec = {"members": [{"email": "ana@example.com", "role": "owner"}], "models": {"allow": ["gpt-4o"]},
            "serviceTiers": {"default": "fast", "enabled": ["all"]}}
    outcome = await run(admin, spec)
    assert admin.calls == ["get_project", "list_project_users", "get_model_permissions", "get_service_tier_settings"]
    assert outcome.notes == []
    assert outcome.status["members"] == [{"email": "ana@example.com", "role": "owner", "state": "Active",
                                          "userId": "user-ana"}]
    assert outcome.status["serviceTiers"] == {"default": "fast", "enabled": ["all"]}


async def test_one_organisation_lookup_and_one_invite_listing_for_several_newcomers() -> None:
    admin = FakeAccessAdmin(org_users={"user-ana": ANA})
    spec = {"members": [{"email": "ana@example.com"}, {"email": "bo@example.com", "role": "owner"},
                        {"email": "cy@example.com"}]}
    outcome = await run(admin, spec)
    assert admin.calls == ["get_project", "list_project_users", "list_org_users", "list_invites",
                           "add_project_user", "create_invite", "create_invite"]
    states = {m["email"]: (m["state"], m.get("inviteId")) for m in outcome.status["members"]}
    assert states == {"ana@example.com": ("Active", None), "bo@example.com": ("Invited", "invite-1"),
                      "cy@example.com": ("Invited", "invite-2")}
    assert admin.invites["invite-1"].projects == {PID: "owner"}
    assert admin.invites["invite-1"].role == "reader"
    assert (cond(outcome, "MembersSynced")["status"], cond(outcome, "MembersSynced")["reason"]) == \
        ("False", "InvitePending")
    assert reasons(outcome).count("InviteSent") == 2


async def test_a_refused_member_is_failed_with_openais_message_and_the_project_stays_ready() -> None:
    admin = FakeAccessAdmin(org_users={"user-ana": ANA},
                            fail={"add_project_user": [PermanentError("user is deactivated")]})
    outcome = await run(admin, {"members": [{"email": "ana@example.com"}], "models": {"deny": ["gpt-4o"]}})
    member = outcome.status["members"][0]
    assert (member["state"], member["reason"]) == ("Failed", "MembersSyncFailed")
    assert "user is deactivated" in member["message"]
    assert cond(outcome, "MembersSynced")["reason"] == "MembersSyncFailed"
    assert cond(outcome, "Ready")["status"] == "True"
    assert cond(outcome, "ModelsSynced")["reason"] == "ModelsMirrored", "the other parts still run"
    assert "MembersSyncFailed" in reasons(outcome)


async def test_a_refused_model_list_is_reported_on_models_synced_only() -> None:
    admin = FakeAccessAdmin(fail={"set_model_permissions": [PermanentError("unknown model")]})
    outcome = await run(admin, {"models": {"allow": ["gpt-9"]}})
    assert (cond(outcome, "ModelsSynced")["status"], cond(outcome, "ModelsSynced")["reason"]) == \
        ("False", "ModelsMirrorFailed")
    assert cond(outcome, "Ready")["status"] == "True"
    assert outcome.status["models"] is None


async def test_removing_spec_models_deletes_without_reading() -> None:
    admin = FakeAccessAdmin(models=ModelPermissions("allow_list", ("gpt-4o",)))
    outcome = await run(admin, {}, {"models": {"mode": "allow_list", "models": ["gpt-4o"]}})
    assert admin.calls == ["get_project", "delete_model_permissions"]
    assert admin.models is None
    assert outcome.status["models"] is None
    assert "ModelPermissionsRemoved" in reasons(outcome)


async def test_a_member_leaving_the_spec_stays_recorded_until_it_is_removed() -> None:
    """A pass that fails before the removal must not forget the user is the operator's to remove."""
    admin = FakeAccessAdmin(project_users={"user-ana": ProjectUser("user-ana", "ana@example.com", "member")},
                            fail={"remove_project_user": [TransientError("busy")]})
    recorded = {"members": [{"email": "ana@example.com", "role": "member", "state": "Active", "userId": "user-ana"}]}
    outcome = await run(admin, {"members": []}, recorded)
    assert [m["email"] for m in outcome.status["members"]] == ["ana@example.com"]
    assert outcome.error is not None
    outcome = await run(admin, {"members": []}, {**recorded, "members": outcome.status["members"]})
    assert "user-ana" not in admin.project_users
    assert outcome.status["members"] == []
