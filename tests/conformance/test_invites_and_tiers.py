"""Invites (``/organization/invites``), accepting them through ``/_emulator``, project service-tier
settings (SDK 3.57 only) and the data plane's refusal of a model the project may not call.

Driven with the official SDK; every response is checked against the spec's schema (the SDK's own
model for service-tier settings, which the spec file does not have yet).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from emulator_support import ClientFactory, Minter

from openai_emulator import EmulatorServer, new_admin_key

CHAT = [{"role": "user", "content": "hi"}]


async def test_an_invite_is_pending_until_accepted_then_the_user_is_in_its_projects(
    admin: openai.AsyncOpenAI, control: httpx.AsyncClient
) -> None:
    org = admin.admin.organization
    project = await org.projects.create(name="team")
    invite = await org.invites.create(email="new@example.com", role="reader",
                                      projects=[{"id": project.id, "role": "owner"}])
    assert (invite.object, invite.status, invite.role) == ("organization.invite", "pending", "reader")
    assert [(p.id, p.role) for p in invite.projects] == [(project.id, "owner")]
    assert invite.expires_at is not None
    assert invite.expires_at > invite.created_at
    assert invite.accepted_at is None
    assert (await org.invites.retrieve(invite.id)).status == "pending"

    accepted = (await control.post(f"/_emulator/invites/{invite.id}/accept", json={"name": "New"})).json()
    assert accepted["invite"]["status"] == "accepted"
    after = await org.invites.retrieve(invite.id)
    assert after.status == "accepted"
    assert after.accepted_at is not None
    users = [u async for u in org.users.list(emails=["new@example.com"])]
    assert [(u.email, u.role) for u in users] == [("new@example.com", "reader")]
    members = [u async for u in org.projects.users.list(project.id)]
    assert ("new@example.com", "owner") in [(u.email, u.role) for u in members]
    with pytest.raises(openai.BadRequestError):
        await org.invites.delete(invite.id)  # an accepted invite cannot be deleted


async def test_an_invite_expires_on_the_emulator_clock_and_can_then_be_sent_again(
    admin: openai.AsyncOpenAI, control: httpx.AsyncClient
) -> None:
    org = admin.admin.organization
    invite = await org.invites.create(email="late@example.com", role="reader", projects=[])
    with pytest.raises(openai.BadRequestError):  # one pending invite per address
        await org.invites.create(email="LATE@example.com", role="reader", projects=[])
    assert invite.expires_at is not None
    await control.post("/_emulator/clock", json={"set": invite.expires_at})
    assert (await org.invites.retrieve(invite.id)).status == "expired"
    refused = await control.post(f"/_emulator/invites/{invite.id}/accept", json={})
    assert refused.status_code == 400
    assert "expired" in refused.json()["error"]["message"]
    again = await org.invites.create(email="late@example.com", role="reader", projects=[])
    assert again.status == "pending"
    assert again.id != invite.id
    deleted = await org.invites.delete(invite.id)
    assert (deleted.object, deleted.id, deleted.deleted) == ("organization.invite.deleted", invite.id, True)
    with pytest.raises(openai.NotFoundError):
        await org.invites.retrieve(invite.id)


async def test_an_invite_can_be_accepted_by_email_and_the_state_dump_shows_invites(
    admin: openai.AsyncOpenAI, control: httpx.AsyncClient
) -> None:
    org = admin.admin.organization
    missing = await control.post("/_emulator/invites/accept", json={"email": "nobody@example.com"})
    assert missing.status_code == 404
    invite = await org.invites.create(email="Mail@Example.com", role="owner", projects=[])
    accepted = (await control.post("/_emulator/invites/accept", json={"email": "mail@example.com"})).json()
    assert (accepted["invite"]["id"], accepted["user"]["role"]) == (invite.id, "owner")
    dumped = (await control.get("/_emulator/state")).json()["invites"]
    assert [(i["id"], i["status"]) for i in dumped] == [(invite.id, "accepted")]


async def test_invites_are_listed_in_pages_and_default_to_the_default_project(
    admin: openai.AsyncOpenAI, control: httpx.AsyncClient
) -> None:
    org = admin.admin.organization
    made = [await org.invites.create(email=f"u{i}@example.com", role="reader") for i in range(5)]
    page = await org.invites.list(limit=2)
    assert [i.id for i in page.data] == [m.id for m in made[:2]]
    assert page.has_more
    assert [i.id async for i in org.invites.list(limit=2)] == [m.id for m in made]
    default_project = next(p for p in (await control.get("/_emulator/state")).json()["projects"] if p["is_default"])
    assert [(p.id, p.role) for p in made[0].projects] == [(default_project["id"], "member")]


async def test_invites_refuse_org_members_bad_roles_and_unknown_projects(admin: openai.AsyncOpenAI) -> None:
    org = admin.admin.organization
    with pytest.raises(openai.BadRequestError):
        await org.invites.create(email="owner@example.com", role="reader")  # already in the organisation
    with pytest.raises(openai.BadRequestError):
        await org.invites.create(email="x@example.com", role="member")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        await org.invites.create(email="not-an-email", role="reader")
    with pytest.raises(openai.NotFoundError):
        await org.invites.create(email="x@example.com", role="reader", projects=[{"id": "proj_nope", "role": "member"}])


async def test_service_tier_settings_update_atomically_and_keep_omitted_fields(admin: openai.AsyncOpenAI) -> None:
    org = admin.admin.organization
    project = await org.projects.create(name="tiers")
    tiers = org.projects.service_tier_settings
    first = await tiers.retrieve(project.id)
    assert (first.object, first.default, first.enabled_tiers) == ("project.service_tier_settings", "standard", [])
    changed = await tiers.update(project.id, enabled_tiers=["flex", "fast"])
    assert (changed.default, changed.enabled_tiers) == ("standard", ["flex", "fast"])
    changed = await tiers.update(project.id, default="fast")
    assert (changed.default, changed.enabled_tiers) == ("fast", ["flex", "fast"])
    changed = await tiers.update(project.id, enabled_tiers="all")
    assert (await tiers.retrieve(project.id)).enabled_tiers == "all" == changed.enabled_tiers
    with pytest.raises(openai.BadRequestError):
        await tiers.update(project.id, enabled_tiers=["standard"])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError):
        await tiers.update(project.id)  # at least one field
    await org.projects.archive(project.id)
    with pytest.raises(openai.BadRequestError):
        await tiers.update(project.id, default="standard")


async def test_a_model_outside_the_allow_list_is_refused_with_openais_403_body(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter
) -> None:
    pid, _sa, value = await mint()
    perms = admin.admin.organization.projects.model_permissions
    await perms.update(pid, mode="allow_list", model_ids=["gpt-4o-mini"])
    client = sdk(api_key=value)
    with pytest.raises(openai.PermissionDeniedError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    assert info.value.status_code == 403
    assert info.value.body == {
        "message": f"Project `{pid}` does not have access to model `gpt-4o`",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    await perms.update(pid, mode="deny_list", model_ids=["gpt-4o-mini"])
    await client.chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]


async def test_invites_and_service_tiers_survive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    admin_key = new_admin_key()
    async with EmulatorServer(admin_key=admin_key, state_file=state_file) as first:
        client = openai.AsyncOpenAI(api_key="unused", admin_api_key=admin_key, base_url=first.base_url, max_retries=0)
        org = client.admin.organization
        project = await org.projects.create(name="persisted")
        invite = await org.invites.create(email="kept@example.com", role="owner",
                                          projects=[{"id": project.id, "role": "member"}])
        await org.projects.service_tier_settings.update(project.id, default="scale", enabled_tiers=["ultrafast"])
        await client.close()
    async with EmulatorServer(admin_key=admin_key, state_file=state_file) as second:
        client = openai.AsyncOpenAI(api_key="unused", admin_api_key=admin_key, base_url=second.base_url, max_retries=0)
        org = client.admin.organization
        again = await org.invites.retrieve(invite.id)
        assert (again.email, again.role, again.status, again.expires_at) == (
            "kept@example.com", "owner", "pending", invite.expires_at)
        tiers = await org.projects.service_tier_settings.retrieve(project.id)
        assert (tiers.default, tiers.enabled_tiers) == ("scale", ["ultrafast"])
        await client.close()
