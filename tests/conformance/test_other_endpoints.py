"""Spend alerts, project users, usage endpoints and audit logs through the official SDK."""

from __future__ import annotations

import httpx
import openai
import pytest
from emulator_support import ClientFactory, Minter

from openai_emulator import EmulatorServer

pytestmark = pytest.mark.conformance
CHANNEL = {"type": "email", "recipients": ["ops@example.com"], "subject_prefix": "[budget]"}


async def test_project_and_org_spend_alerts_crud(admin: openai.AsyncOpenAI) -> None:
    p = await admin.admin.organization.projects.create(name="team")
    alerts = admin.admin.organization.projects.spend_alerts
    made = [
        await alerts.create(p.id, threshold_amount=t, currency="USD", interval="month", notification_channel=CHANNEL)  # type: ignore[arg-type]
        for t in (1000, 2000, 3000)
    ]
    assert made[0].notification_channel.recipients == ["ops@example.com"]
    assert [a.id async for a in alerts.list(p.id, limit=2)] == [a.id for a in made]
    assert [a.id async for a in alerts.list(p.id, limit=2, order="desc")] == [a.id for a in reversed(made)]
    got = await alerts.retrieve(made[1].id, project_id=p.id)
    assert got.threshold_amount == 2000
    updated = await alerts.update(
        made[1].id,
        project_id=p.id,
        threshold_amount=2500,
        currency="USD",
        interval="month",
        notification_channel=CHANNEL,  # type: ignore[arg-type]
    )
    assert updated.threshold_amount == 2500
    assert (await alerts.delete(made[1].id, project_id=p.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await alerts.retrieve(made[1].id, project_id=p.id)
    org_alerts = admin.admin.organization.spend_alerts
    org = await org_alerts.create(
        threshold_amount=10_000, currency="USD", interval="month", notification_channel=CHANNEL
    )  # type: ignore[arg-type]
    assert org.object == "organization.spend_alert"
    assert [a.id async for a in org_alerts.list()] == [org.id]
    assert (await org_alerts.delete(org.id)).deleted


async def test_project_users_must_exist_in_the_org(admin: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    p = await admin.admin.organization.projects.create(name="team")
    users = admin.admin.organization.projects.users
    with pytest.raises(openai.BadRequestError):
        await users.create(p.id, role="member", email="stranger@example.com")
    alice = (await control.post("/_emulator/users", json={"email": "alice@example.com", "name": "Alice"})).json()
    added = await users.create(p.id, role="member", email="alice@example.com")
    assert added.id == alice["id"]
    with pytest.raises(openai.BadRequestError):
        await users.create(p.id, role="member", user_id=alice["id"])
    assert (await users.retrieve(alice["id"], project_id=p.id)).email == "alice@example.com"
    assert (await users.update(alice["id"], project_id=p.id, role="owner")).role == "owner"
    listed = [u.id async for u in users.list(p.id)]
    assert alice["id"] in listed
    assert (await users.delete(alice["id"], project_id=p.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await users.retrieve(alice["id"], project_id=p.id)
    org_users = [u.email async for u in admin.admin.organization.users.list()]
    assert "alice@example.com" in org_users


async def test_usage_endpoints_answer_with_buckets(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter, emu: EmulatorServer
) -> None:
    pid, _sa, value = await mint()
    await sdk(api_key=value).chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "hi"}],  # type: ignore[list-item]
    )
    usage = admin.admin.organization.usage
    start = emu.state.now() - 3 * 3600
    hourly = await usage.completions(start_time=start, bucket_width="1h", group_by=["api_key_id"], project_ids=[pid])
    assert len(hourly.data) in (3, 4)
    rows = [r for b in hourly.data for r in b.results]
    assert len(rows) == 1
    assert rows[0].num_model_requests == 1  # type: ignore[union-attr]
    assert (await usage.completions(start_time=start, models=["gpt-4o"])).data[-1].results == []
    for call in (usage.embeddings, usage.moderations, usage.images, usage.vector_stores):
        assert (await call(start_time=start)).object == "page"


async def test_audit_logs_record_what_the_operator_does(
    admin: openai.AsyncOpenAI, mint: Minter, emu: EmulatorServer
) -> None:
    pid, sa_id, value = await mint()
    key_id = emu.state.authenticate(value).id  # type: ignore[union-attr]
    await admin.admin.organization.projects.api_keys.update(key_id, project_id=pid, scopes=["api.all.read"])
    await admin.admin.organization.projects.rate_limits.update_rate_limit(
        "rl-gpt-4o", project_id=pid, max_requests_per_1_minute=10
    )
    await admin.admin.organization.projects.service_accounts.delete(sa_id, project_id=pid)
    await admin.admin.organization.projects.archive(pid)
    logs = [e async for e in admin.admin.organization.audit_logs.list(project_ids=[pid], limit=2)]
    types = [e.type for e in logs]
    assert types == [
        "project.archived",
        "service_account.deleted",
        "api_key.deleted",
        "rate_limit.updated",
        "api_key.updated",
        "api_key.created",
        "service_account.created",
        "project.created",
    ]
    created = await admin.admin.organization.audit_logs.list(
        event_types=["service_account.created"], resource_ids=[sa_id]
    )
    assert [e.type for e in created.data] == ["service_account.created"]
    assert created.data[0].actor is not None
    assert created.data[0].actor.type == "api_key"
    since = logs[0].effective_at + 1
    assert (await admin.admin.organization.audit_logs.list(effective_at={"gte": since})).data == []
