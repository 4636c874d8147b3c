"""Rate limits, hard spend limits, costs and completions usage, all from recorded data-plane use."""

from __future__ import annotations

import httpx
import openai
import pytest
from emulator_support import ClientFactory, Minter

from openai_emulator import EmulatorServer
from openai_emulator.clock import DAY, day_start

pytestmark = pytest.mark.conformance
CHAT = [{"role": "user", "content": "Count to three"}]


async def test_rate_limits_list_update_and_enforce(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter, control: httpx.AsyncClient
) -> None:
    pid, _sa, value = await mint()
    rls = admin.admin.organization.projects.rate_limits
    limits = [r async for r in rls.list_rate_limits(pid, limit=3)]
    row = next(r for r in limits if r.model == "gpt-4o-mini")
    updated = await rls.update_rate_limit(row.id, project_id=pid, max_requests_per_1_minute=2)
    assert updated.max_requests_per_1_minute == 2
    with pytest.raises(openai.BadRequestError):
        await rls.update_rate_limit(row.id, project_id=pid, max_requests_per_1_minute=10**9)
    with pytest.raises(openai.NotFoundError):
        await rls.update_rate_limit("rl-nope", project_id=pid, max_requests_per_1_minute=1)
    client = sdk(api_key=value)
    for _ in range(2):
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert int(info.value.response.headers["retry-after"]) >= 1
    await control.post("/_emulator/clock", json={"advance_seconds": 61})
    await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]


async def test_spend_limit_crud_and_enforcement(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter, control: httpx.AsyncClient
) -> None:
    pid, _sa, value = await mint()
    spend = admin.admin.organization.projects.spend_limit
    with pytest.raises(openai.NotFoundError):
        await spend.retrieve(pid)
    limit = await spend.update(pid, threshold_amount=500, currency="USD", interval="month")
    assert limit.threshold_amount == 500
    assert limit.enforcement.status == "inactive"
    client = sdk(api_key=value)
    await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    r = await control.post("/_emulator/spend", json={"project_id": pid, "amount_usd": 5.0})
    assert r.json()["month_to_date_usd"] >= 5.0
    assert (await spend.retrieve(pid)).enforcement.status == "enforcing"
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert info.value.code == "insufficient_quota"
    await control.post("/_emulator/clock", json={"to": "next_month"})
    assert (await spend.retrieve(pid)).enforcement.status == "inactive"
    await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert (await spend.delete(pid)).deleted
    with pytest.raises(openai.NotFoundError):
        await spend.retrieve(pid)


async def test_costs_come_from_recorded_calls(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter, emu: EmulatorServer
) -> None:
    pid, _sa, value = await mint()
    other_pid, _sa2, other_value = await mint()
    for _ in range(3):
        await sdk(api_key=value).chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    await sdk(api_key=other_value).chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    key_id = emu.state.authenticate(value).id  # type: ignore[union-attr]
    usage = admin.admin.organization.usage
    start = day_start(emu.state.now()) - 2 * DAY
    by_project = await usage.costs(start_time=start, group_by=["project_id"])
    assert len(by_project.data) == 3, "one bucket per day from start_time to now"
    assert by_project.data[0].end_time - by_project.data[0].start_time == DAY
    today = {r.project_id: r.amount.value for r in by_project.data[-1].results}  # type: ignore[union-attr]
    expected = sum(c.amount_usd for c in emu.state.costs if c.project_id == pid)
    assert today[pid] == pytest.approx(expected)
    assert today[other_pid] > 0
    by_key = await usage.costs(start_time=start, group_by=["api_key_id", "line_item"], project_ids=[pid])
    rows = by_key.data[-1].results
    assert {r.api_key_id for r in rows} == {key_id}  # type: ignore[union-attr]
    assert {r.line_item for r in rows} == {"gpt-4o, input_tokens", "gpt-4o, output_tokens"}  # type: ignore[union-attr]
    completions = await usage.completions(start_time=start, group_by=["project_id", "model"], bucket_width="1d")
    mine = [r for r in completions.data[-1].results if r.project_id == pid]  # type: ignore[union-attr]
    assert mine[0].num_model_requests == 3  # type: ignore[union-attr]
    assert mine[0].model == "gpt-4o"  # type: ignore[union-attr]


async def test_costs_paging_and_control_spend_on_a_given_day(
    admin: openai.AsyncOpenAI, emu: EmulatorServer, control: httpx.AsyncClient
) -> None:
    p = await admin.admin.organization.projects.create(name="spendy")
    now = emu.state.now()
    first = day_start(now) - 4 * DAY
    for i in range(5):
        r = await control.post(
            "/_emulator/spend",
            json={"project_id": p.id, "amount_usd": 1.25 * (i + 1), "day": first + i * DAY},
        )
        assert r.status_code == 200
    usage = admin.admin.organization.usage
    page1 = await usage.costs(start_time=first, end_time=first + 5 * DAY, limit=2, project_ids=[p.id])
    assert len(page1.data) == 2
    assert page1.has_more
    assert page1.next_page
    amounts = [r.amount.value for b in page1.data for r in b.results]  # type: ignore[union-attr]
    page = page1
    while page.has_more:
        page = await usage.costs(
            start_time=first, end_time=first + 5 * DAY, limit=2, project_ids=[p.id], page=page.next_page
        )
        amounts += [r.amount.value for b in page.data for r in b.results]  # type: ignore[union-attr]
    assert amounts == pytest.approx([1.25, 2.5, 3.75, 5.0, 6.25])


async def test_token_and_daily_limits_and_rate_limit_headers(
    admin: openai.AsyncOpenAI, sdk: ClientFactory, mint: Minter, control: httpx.AsyncClient
) -> None:
    pid, _sa, value = await mint()
    rls = admin.admin.organization.projects.rate_limits
    await rls.update_rate_limit("rl-gpt-4o", project_id=pid, max_tokens_per_1_minute=30)
    await rls.update_rate_limit("rl-gpt-4o-mini", project_id=pid, max_requests_per_1_day=2)
    client = sdk(api_key=value)
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    used = raw.parse().usage
    assert used is not None
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 30 - used.total_tokens
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    assert info.value.body["type"] == "tokens"  # type: ignore[index]
    first = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    second = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert int(first.headers["x-ratelimit-remaining-requests"]) - 1 == int(
        second.headers["x-ratelimit-remaining-requests"]
    )
    await control.post("/_emulator/clock", json={"advance_seconds": 120})
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert "requests per day" in info.value.message
    await control.post("/_emulator/clock", json={"advance_seconds": 86_400})
    await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
