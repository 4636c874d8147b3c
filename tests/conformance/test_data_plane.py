"""The data plane with keys the emulator minted, driven by the official SDK."""

from __future__ import annotations

import httpx
import openai
import pytest
from emulator_support import ClientFactory, Minter

from openai_emulator import EmulatorServer

pytestmark = pytest.mark.conformance
CHAT = [{"role": "user", "content": "Say hello"}]


async def test_minted_key_works_then_fails_after_service_account_delete(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter
) -> None:
    pid, sa_id, value = await mint()
    client = sdk(api_key=value)
    models = await client.models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]
    assert (await client.models.retrieve("gpt-4o-mini")).owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("gpt-0")
    first = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    again = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert first.choices[0].message.content == again.choices[0].message.content, "replies are deterministic"
    assert first.usage is not None
    assert first.usage.total_tokens > 0
    await admin.admin.organization.projects.service_accounts.delete(sa_id, project_id=pid)
    with pytest.raises(openai.AuthenticationError) as info:
        await client.models.list()
    assert info.value.code == "invalid_api_key"
    assert value not in str(info.value), "the error must not echo the key"
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]


async def test_key_delete_and_expiry_revoke(
    admin: openai.AsyncOpenAI,
    sdk: ClientFactory,
    mint: Minter,
    emu: EmulatorServer,
    control: httpx.AsyncClient,
) -> None:
    pid, sa_id, value = await mint()
    key_id = emu.state.authenticate(value).id  # type: ignore[union-attr]
    await admin.admin.organization.projects.api_keys.delete(key_id, project_id=pid)
    with pytest.raises(openai.AuthenticationError):
        await sdk(api_key=value).models.list()
    extra = await admin.admin.organization.projects.service_accounts.api_keys.create(
        sa_id, project_id=pid, expires_in_seconds=120
    )
    client = sdk(api_key=extra.value)
    await client.models.list()
    r = await control.post("/_emulator/clock", json={"advance_seconds": 121})
    assert r.status_code == 200
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()


async def test_archived_project_keys_stop_working(admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter) -> None:
    pid, _sa, value = await mint()
    client = sdk(api_key=value)
    await client.models.list()
    await admin.admin.organization.projects.archive(pid)
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()


@pytest.mark.parametrize("scopes", [["api.all.read"], ["api.model.read"]])
async def test_read_only_key_can_list_models_but_not_chat(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter, emu: EmulatorServer, scopes: list[str]
) -> None:
    pid, _sa, value = await mint()
    key_id = emu.state.authenticate(value).id  # type: ignore[union-attr]
    await admin.admin.organization.projects.api_keys.update(key_id, project_id=pid, scopes=scopes)
    client = sdk(api_key=value)
    assert (await client.models.list()).data
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert "Missing scopes: model.request" in info.value.message


async def test_scope_error_status_can_be_403(
    admin: openai.AsyncOpenAI,
    sdk: ClientFactory,
    mint: Minter,
    emu: EmulatorServer,
    control: httpx.AsyncClient,
) -> None:
    await control.post("/_emulator/config", json={"scope_error_status": 403})
    pid, sa_id, _value = await mint()
    ro = await admin.admin.organization.projects.service_accounts.api_keys.create(
        sa_id, project_id=pid, scopes=["api.all.read"]
    )
    with pytest.raises(openai.PermissionDeniedError):
        await sdk(api_key=ro.value).chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]


async def test_project_key_on_admin_endpoint_gets_missing_scopes(sdk: ClientFactory, mint: Minter) -> None:
    _pid, _sa, value = await mint()
    as_admin = sdk(admin_api_key=value)
    with pytest.raises(openai.AuthenticationError) as info:
        await as_admin.admin.organization.projects.list()
    assert "Missing scopes: api.management.read" in info.value.message
    with pytest.raises(openai.AuthenticationError) as info:
        await as_admin.admin.organization.usage.costs(start_time=0)
    assert "Missing scopes: api.usage.read" in info.value.message


async def test_wrong_admin_key_is_401_invalid_api_key(sdk: ClientFactory) -> None:
    client = sdk(admin_api_key="sk-admin-wrong")
    with pytest.raises(openai.AuthenticationError) as info:
        await client.admin.organization.projects.list()
    assert info.value.code == "invalid_api_key"
    assert info.value.request_id is not None


async def test_admin_key_is_refused_on_the_data_plane(sdk: ClientFactory, emu: EmulatorServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        await sdk(api_key=emu.admin_key).models.list()


async def test_model_permissions_restrict_the_data_plane(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter
) -> None:
    pid, _sa, value = await mint()
    perms = admin.admin.organization.projects.model_permissions
    assert (await perms.retrieve(pid)).mode == "deny_list"
    await perms.update(pid, mode="allow_list", model_ids=["gpt-4o-mini"])
    client = sdk(api_key=value)
    assert [m.id for m in (await client.models.list()).data] == ["gpt-4o-mini"]
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    assert (await perms.delete(pid)).deleted
    await client.chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]


async def test_unknown_model_is_404(sdk: ClientFactory, mint: Minter) -> None:
    _pid, _sa, value = await mint()
    with pytest.raises(openai.NotFoundError):
        await sdk(api_key=value).chat.completions.create(model="gpt-0", messages=CHAT)  # type: ignore[arg-type]
