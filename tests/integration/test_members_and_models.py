"""spec.members, spec.models and spec.serviceTiers on the real test bed (apiserver + emulator).

Members are added, re-roled and removed; a person not in the organisation is invited (scoped to the
project), shown as Invited, and Active with the right role once the emulator accepts the invite; an
invite that expires is sent once more, then reported. ``Exclusive`` removes a user added by hand,
the default leaves it. A model outside ``spec.models.allow`` is refused to the project's key (the
value an OpenAIKey delivered to its Secret) by the data plane, and removing the list restores access.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from harness import Emulator, OperatorProcess
from scenario import apply, condition, get, key_manifest, project_manifest, secret_value, wait_ready
from support import wait_for
from testbed import Kubectl

pytestmark = pytest.mark.integration

PROJECT_RESYNC = 5  # the harness's OPENAI_OPERATOR_PROJECT_RESYNC_INTERVAL, in seconds
WAIT = 30 + 2 * PROJECT_RESYNC


def admin(emulator: Emulator, method: str, path: str, **kwargs: Any) -> Any:
    """A call to the emulator's Admin API, as someone working in the dashboard would make it."""
    response = httpx.request(method, f"{emulator.base_url}/organization{path}", timeout=10,
                             headers={"Authorization": f"Bearer {emulator.admin_key}"}, **kwargs)
    response.raise_for_status()
    return response.json()


def control(emulator: Emulator, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{emulator.control}{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def org_user(emulator: Emulator, email: str) -> str:
    """Add someone to the organisation (as the dashboard would); their user id."""
    return str(control(emulator, "POST", "/users", json={"email": email})["id"])


def users_upstream(emulator: Emulator, project_id: str) -> dict[str, str]:
    """Project users as OpenAI has them: email → role."""
    return {u["email"]: u["role"] for u in emulator.project(project_id)["users"]}


def members_status(kubectl: Kubectl, name: str) -> dict[str, dict[str, Any]]:
    status = get(kubectl, "openaiproject", name).get("status", {})
    return {m["email"]: m for m in status.get("members", [])}


def reasons(kubectl: Kubectl, name: str) -> set[str]:
    events = get(kubectl, "events", "--field-selector", f"involvedObject.name={name}")["items"]
    return {e["reason"] for e in events}


def wait_condition(kubectl: Kubectl, name: str, type: str, status: str, reason: str) -> dict[str, Any]:
    """Until ``type`` is ``status``/``reason`` for the object's current generation; the object."""
    def done() -> dict[str, Any] | None:
        obj = get(kubectl, "openaiproject", name)
        found = condition(obj, type)
        current = found.get("observedGeneration") == obj.get("metadata", {}).get("generation")
        return obj if current and (found.get("status"), found.get("reason")) == (status, reason) else None
    return wait_for(done, timeout=WAIT, what=f"{name}: {type}={status}/{reason}")


def chat(emulator: Emulator, key: str, model: str) -> tuple[int, Any]:
    """Status (and error body) of one chat completion with ``key`` through the official SDK."""
    with openai.OpenAI(api_key=key, base_url=emulator.base_url, max_retries=0, timeout=10) as client:
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError as error:
            return error.status_code, error.body
    return 200, None


@pytest.fixture
def name(kubectl: Kubectl) -> Iterator[str]:
    value = f"m-{secrets.token_hex(3)}"
    yield value
    kubectl("delete", "openaiproject", value, "--wait=false", check=False)


@pytest.fixture
def tag() -> str:
    """A suffix that keeps this test's email addresses apart from other tests' (one organisation)."""
    return secrets.token_hex(3)


def test_members_are_added_re_roled_and_removed_and_exclusive_removes_a_hand_added_user(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, name: str, tag: str
) -> None:
    ana, ben, hand = (f"{who}-{tag}@example.com" for who in ("ana", "ben", "hand"))
    for email in (ana, ben, hand):
        org_user(emulator, email)
    apply(kubectl, project_manifest(name, members=[{"email": ana.upper(), "role": "owner"}, {"email": ben}]))
    project_id = wait_ready(kubectl, "openaiproject", name)["status"]["projectId"]
    admin(emulator, "POST", f"/projects/{project_id}/users", json={"email": hand, "role": "member"})
    wait_condition(kubectl, name, "MembersSynced", "True", "MembersSynced")
    upstream = users_upstream(emulator, project_id)
    assert (upstream[ana], upstream[ben]) == ("owner", "member")
    members = members_status(kubectl, name)
    assert {e: (m["role"], m["state"]) for e, m in members.items()} == {ana: ("owner", "Active"),
                                                                       ben: ("member", "Active")}

    apply(kubectl, project_manifest(name, members=[{"email": ben, "role": "owner"}]))
    wait_for(lambda: ana not in (u := users_upstream(emulator, project_id)) and u.get(ben) == "owner",
             timeout=WAIT, what="ana removed and ben made owner")
    wait_condition(kubectl, name, "MembersSynced", "True", "MembersSynced")
    assert set(members_status(kubectl, name)) == {ben}
    assert users_upstream(emulator, project_id)[hand] == "member", "the default policy leaves hand-added users"

    ben_id = next(u["id"] for u in emulator.project(project_id)["users"] if u["email"] == ben)
    admin(emulator, "POST", f"/projects/{project_id}/users/{ben_id}", json={"role": "member"})
    wait_for(lambda: users_upstream(emulator, project_id)[ben] == "owner", timeout=WAIT,
             what="ben's role, changed by hand, set back to owner")

    emulator.reset_calls()
    wait_for(lambda: sum(c["count"] for c in emulator.admin_calls() if c["method"] == "GET"
                         and c["route"] == "/v1/organization/projects/{project_id}/users") >= 2,
             timeout=WAIT, what="two resyncs in the steady state")
    steady = [c for c in emulator.admin_calls()
              if "users" in c["route"] or "invites" in c["route"]]
    assert all(c["method"] == "GET" and c["route"].endswith("/projects/{project_id}/users") for c in steady), steady

    apply(kubectl, project_manifest(name, members=[{"email": ben, "role": "owner"}], membersPolicy="Exclusive"))
    wait_for(lambda: set(users_upstream(emulator, project_id)) == {ben}, timeout=WAIT,
             what="Exclusive to leave only ben in the project")
    assert {"MemberAdded", "MemberRoleChanged", "MemberRemoved", "DriftRepaired"} <= reasons(kubectl, name)


def test_an_unknown_email_is_invited_and_joins_with_its_role_once_accepted(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, name: str, tag: str
) -> None:
    carol = f"carol-{tag}@example.com"
    apply(kubectl, project_manifest(name, members=[{"email": carol, "role": "owner"}]))
    project_id = wait_ready(kubectl, "openaiproject", name)["status"]["projectId"]
    obj = wait_condition(kubectl, name, "MembersSynced", "False", "InvitePending")
    assert carol in condition(obj, "MembersSynced")["message"]
    member = members_status(kubectl, name)[carol]
    assert (member["state"], member["role"], member["invitesSent"]) == ("Invited", "owner", 1)
    invite = next(i for i in control(emulator, "GET", "/invites")["invites"] if i["id"] == member["inviteId"])
    assert (invite["email"], invite["role"], invite["status"]) == (carol, "reader", "pending")
    assert invite["projects"] == [{"id": project_id, "role": "owner"}]
    assert "inviteExpiresAt" in member
    assert carol not in users_upstream(emulator, project_id)

    control(emulator, "POST", f"/invites/{invite['id']}/accept", json={"name": "Carol"})
    wait_condition(kubectl, name, "MembersSynced", "True", "MembersSynced")
    member = members_status(kubectl, name)[carol]
    assert member["state"] == "Active"
    assert member["userId"] == next(u["id"] for u in emulator.project(project_id)["users"] if u["email"] == carol)
    assert users_upstream(emulator, project_id)[carol] == "owner"
    assert {"InviteSent", "MemberAdded"} <= reasons(kubectl, name)


@pytest.fixture
def short_invites(emulator: Emulator) -> Iterator[int]:
    """Invites expire after a few seconds instead of 7 days (the emulator's clock is left alone)."""
    ttl = 8
    before = control(emulator, "GET", "/config")["invite_ttl_seconds"]
    control(emulator, "POST", "/config", json={"invite_ttl_seconds": ttl})
    yield ttl
    control(emulator, "POST", "/config", json={"invite_ttl_seconds": before})


def test_an_expired_invite_is_sent_once_more_then_reported(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, name: str, tag: str, short_invites: int
) -> None:
    dave = f"dave-{tag}@example.com"
    apply(kubectl, project_manifest(name, members=[{"email": dave}]))
    first = wait_for(lambda: (m := members_status(kubectl, name).get(dave)) and m.get("inviteId") and m,
                     timeout=WAIT, what="dave's first invite")
    second = wait_for(lambda: (m := members_status(kubectl, name).get(dave)) and m.get("invitesSent") == 2 and m,
                      timeout=WAIT + short_invites, what="dave's invite sent again after it expired")
    assert second["inviteId"] != first["inviteId"]
    obj = wait_condition(kubectl, name, "MembersSynced", "False", "InviteExpired")
    member = members_status(kubectl, name)[dave]
    assert (member["state"], member["reason"], member["invitesSent"]) == ("Failed", "InviteExpired", 2)
    assert dave in condition(obj, "MembersSynced")["message"]
    assert {"InviteSent", "InviteResent", "InviteExpired"} <= reasons(kubectl, name)
    invites = [i for i in control(emulator, "GET", "/invites")["invites"] if i["email"] == dave]
    assert [i["status"] for i in invites] == ["expired"], "the first expired invite was replaced, none sent after"


def test_a_model_outside_the_allow_list_is_refused_to_the_projects_key_until_the_list_is_removed(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, name: str
) -> None:
    policy = {"allowedNamespaces": {"names": [namespace]}}
    apply(kubectl, project_manifest(name, keyPolicy=policy, models={"allow": ["gpt-4o-mini"]},
                                    serviceTiers={"default": "fast", "enabled": ["flex"]}))
    project_id = wait_ready(kubectl, "openaiproject", name)["status"]["projectId"]
    obj = wait_condition(kubectl, name, "ModelsSynced", "True", "ModelsMirrored")
    assert obj["status"]["models"] == {"mode": "allow_list", "models": ["gpt-4o-mini"]}
    apply(kubectl, key_manifest("limited", namespace, name))
    wait_ready(kubectl, "openaikey", "limited", "-n", namespace)
    value = secret_value(kubectl, namespace, "limited")
    assert value is not None

    status, body = chat(emulator, value, "gpt-4o")
    assert status == 403
    assert body == {"message": f"Project `{project_id}` does not have access to model `gpt-4o`",
                    "type": "invalid_request_error", "param": None, "code": "model_not_found"}
    assert chat(emulator, value, "gpt-4o-mini")[0] == 200

    tiers = wait_condition(kubectl, name, "ServiceTiersSynced", "True", "ServiceTiersMirrored")["status"]
    assert tiers["serviceTiers"] == {"default": "fast", "enabled": ["flex"]}
    assert emulator.project(project_id)["service_tier_settings"] == {
        "object": "project.service_tier_settings", "default": "fast", "enabled_tiers": ["flex"]}
    admin(emulator, "POST", f"/projects/{project_id}/service_tier_settings", json={"enabled_tiers": "all"})
    wait_for(lambda: emulator.project(project_id)["service_tier_settings"]["enabled_tiers"] == ["flex"],
             timeout=WAIT, what="the service tiers, changed by hand, set back")

    admin(emulator, "POST", f"/projects/{project_id}/model_permissions",
          json={"mode": "allow_list", "model_ids": ["gpt-4o-mini", "gpt-4o"]})
    wait_for(lambda: emulator.project(project_id)["model_permissions"]["model_ids"] == ["gpt-4o-mini"],
             timeout=WAIT, what="the allow list, widened by hand, set back")
    assert chat(emulator, value, "gpt-4o")[0] == 403

    apply(kubectl, project_manifest(name, keyPolicy=policy, models={"deny": ["gpt-4o-mini"]}))
    wait_for(lambda: emulator.project(project_id)["model_permissions"]["mode"] == "deny_list", timeout=WAIT,
             what="the deny list")
    assert chat(emulator, value, "gpt-4o-mini")[0] == 403
    assert chat(emulator, value, "gpt-4o")[0] == 200

    apply(kubectl, project_manifest(name, keyPolicy=policy))
    obj = wait_condition(kubectl, name, "ModelsSynced", "True", "NotConfigured")
    assert "models" not in obj["status"]
    assert emulator.project(project_id)["model_permissions"] is None
    assert chat(emulator, value, "gpt-4o-mini")[0] == 200
    assert {"ModelsMirrored", "DriftRepaired", "ModelPermissionsRemoved", "ServiceTiersMirrored"} <= \
        reasons(kubectl, name)
    kubectl("delete", "openaikey", "limited", "-n", namespace, "--timeout=60s")
