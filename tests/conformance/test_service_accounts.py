"""Service accounts and project API keys through the official SDK."""

from __future__ import annotations

import httpx
import openai
import pytest
from emulator_support import Minter, Recorder

from openai_emulator import EmulatorServer

pytestmark = pytest.mark.conformance


async def test_create_returns_the_key_once_with_real_shape(admin: openai.AsyncOpenAI, recorder: Recorder) -> None:
    orgp = admin.admin.organization.projects
    p = await orgp.create(name="team")
    sa = await orgp.service_accounts.create(project_id=p.id, name="k8s.team-ns.my-key.r1")
    assert sa.name == "k8s.team-ns.my-key.r1"
    assert sa.role == "member"
    assert sa.api_key is not None
    value = sa.api_key.value
    assert value.startswith("sk-svcacct-")
    assert len(value) == len("sk-svcacct-") + 156
    key = await orgp.api_keys.retrieve(sa.api_key.id, project_id=p.id)
    assert key.redacted_value == value[:8] + "*" * (len(value) - 12) + value[-4:]
    assert key.owner.type == "service_account"
    assert key.owner.service_account is not None
    assert key.owner.service_account.id == sa.id
    assert key.owner_project_access == "active"
    # The secret is only ever in the create response.
    for seen in recorder.seen:
        if seen.template != "/organization/projects/{project_id}/service_accounts" or seen.method != "POST":
            assert value not in repr(seen.body)


async def test_create_only_and_expiry(admin: openai.AsyncOpenAI, emu: EmulatorServer) -> None:
    orgp = admin.admin.organization.projects
    p = await orgp.create(name="team")
    bare = await orgp.service_accounts.create(project_id=p.id, name="bare", create_service_account_only=True)
    assert bare.api_key is None
    assert bare.role == "none"
    expiring = await orgp.service_accounts.create(project_id=p.id, name="exp", expires_in_seconds=3600)
    assert expiring.api_key is not None
    assert expiring.api_key.expires_at == pytest.approx(emu.state.now() + 3600, abs=5)
    with pytest.raises(openai.BadRequestError):
        await orgp.service_accounts.create(
            project_id=p.id, name="both", create_service_account_only=True, expires_in_seconds=60
        )


async def test_retrieve_update_delete_and_paging(admin: openai.AsyncOpenAI, emu: EmulatorServer) -> None:
    sas = admin.admin.organization.projects.service_accounts
    p = await admin.admin.organization.projects.create(name="team")
    ids = [(await sas.create(project_id=p.id, name=f"k8s.ns.key{i}.r1")).id for i in range(25)]
    listed = [s.id async for s in sas.list(project_id=p.id, limit=10)]
    assert listed == ids
    assert emu.call_count("GET", "/v1/organization/projects/{project_id}/service_accounts") == 3
    got = await sas.retrieve(ids[0], project_id=p.id)
    assert got.id == ids[0]
    updated = await sas.update(ids[0], project_id=p.id, name="renamed", role="owner")
    assert updated.name == "renamed"
    assert updated.role == "owner"
    deleted = await sas.delete(ids[0], project_id=p.id)
    assert deleted.deleted
    assert deleted.id == ids[0]
    with pytest.raises(openai.NotFoundError):
        await sas.retrieve(ids[0], project_id=p.id)
    assert emu.state.counts()[p.id]["service_accounts"] == 24


async def test_deleting_while_paging_neither_skips_nor_repeats(admin: openai.AsyncOpenAI) -> None:
    sas = admin.admin.organization.projects.service_accounts
    p = await admin.admin.organization.projects.create(name="team")
    ids = [(await sas.create(project_id=p.id, name=f"n{i}")).id for i in range(6)]
    seen = []
    async for sa in sas.list(project_id=p.id, limit=2):
        seen.append(sa.id)
        await sas.delete(sa.id, project_id=p.id)
    assert seen == ids


async def test_extra_key_for_a_service_account(admin: openai.AsyncOpenAI) -> None:
    orgp = admin.admin.organization.projects
    p = await orgp.create(name="team")
    sa = await orgp.service_accounts.create(project_id=p.id, name="sa", create_service_account_only=True)
    made = await orgp.service_accounts.api_keys.create(
        sa.id, project_id=p.id, name="ci", scopes=["api.model.read"], expires_in_seconds=600
    )
    assert made.value.startswith("sk-svcacct-")
    assert made.name == "ci"
    assert made.expires_at is not None
    keys = [k async for k in orgp.api_keys.list(project_id=p.id, owner_project_access="any")]
    assert [k.id for k in keys] == [made.id]


async def test_api_key_update_and_delete(admin: openai.AsyncOpenAI, mint: Minter, emu: EmulatorServer) -> None:
    keys = admin.admin.organization.projects.api_keys
    pid, sa_id, value = await mint()
    key_id = emu.state.authenticate(value).id  # type: ignore[union-attr]
    updated = await keys.update(key_id, project_id=pid, scopes=["api.all.read"], expires_in_seconds=7200)
    assert updated.expires_at == pytest.approx(emu.state.now() + 7200, abs=5)
    assert emu.state.projects[pid].api_keys[key_id].scopes == ["api.all.read"]
    with pytest.raises(openai.BadRequestError):
        await keys.update(key_id, project_id=pid)
    gone = await keys.delete(key_id, project_id=pid)
    assert gone.deleted
    # Deleting the key leaves the service account in place, as the newest SDK documents.
    assert (await admin.admin.organization.projects.service_accounts.retrieve(sa_id, project_id=pid)).id == sa_id
    with pytest.raises(openai.NotFoundError):
        await keys.retrieve(key_id, project_id=pid)


async def test_legacy_rule_refuses_service_account_key_delete(
    admin: openai.AsyncOpenAI, mint: Minter, emu: EmulatorServer, control: httpx.AsyncClient
) -> None:
    r = await control.post("/_emulator/config", json={"reject_service_account_key_delete": True})
    assert r.json()["reject_service_account_key_delete"] is True
    pid, _sa, value = await mint()
    key_id = emu.state.authenticate(value).id  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError):
        await admin.admin.organization.projects.api_keys.delete(key_id, project_id=pid)
    assert emu.state.authenticate(value) is not None


async def test_owner_project_access_filter_and_user_keys(admin: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    orgp = admin.admin.organization.projects
    p = await orgp.create(name="team")
    user_key = (await control.post(f"/_emulator/projects/{p.id}/user_keys", json={"name": "mine"})).json()
    assert user_key["value"].startswith("sk-proj-")
    active = [k async for k in orgp.api_keys.list(project_id=p.id)]
    assert [k.id for k in active] == [user_key["id"]]
    assert active[0].owner.type == "user"
    assert active[0].owner.user is not None
    bare = await orgp.service_accounts.create(project_id=p.id, name="bare", create_service_account_only=True)
    await orgp.service_accounts.api_keys.create(bare.id, project_id=p.id)
    inactive = [k async for k in orgp.api_keys.list(project_id=p.id, owner_project_access="inactive")]
    assert len(inactive) == 1
    assert inactive[0].owner_project_access == "inactive"
    assert len([k async for k in orgp.api_keys.list(project_id=p.id, owner_project_access="any")]) == 2
