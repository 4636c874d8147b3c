"""AdminClient against the project's OpenAI emulator, in-process on a loopback port.

These exercise the client end to end over real HTTP: the credential lifecycle the operator runs
(create project, create service account, verify its key, revoke it, see it rejected), paging over
real list and costs envelopes, and retries against injected faults. Sleeping is recorded rather
than awaited where a test checks retry timing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from openai_emulator import EmulatorServer, new_admin_key
from openai_emulator.clock import DAY, day_start
from openai_operator.errors import PermanentError, TransientError
from openai_operator.openai import (
    AdminClient,
    AdminKeyError,
    ApiNotFoundError,
    KeyRejectedError,
    RetryPolicy,
)
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.integration


@dataclass
class Sleeps:
    """Recorded, not slept; the client's clock is virtual and moves only by these sleeps, so a
    Retry-After of 2 s is waited as exactly 2 s however long the requests themselves took."""

    delays: list[float] = field(default_factory=list)
    now: float = 1000.0

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(admin_key=new_admin_key()) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(emu: EmulatorServer, http: httpx.AsyncClient, sleeps: Sleeps) -> AdminClient:
    return AdminClient(
        http,
        admin_key=SecretValue(emu.admin_key),
        base_url=emu.base_url,
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=5),
        sleep=sleeps,
        clock=sleeps.clock,
    )


@pytest.fixture
async def control(emu: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emu.root_url + "/_emulator") as c:
        yield c


async def test_credential_lifecycle(client: AdminClient) -> None:
    """Create project and service account, verify the key, revoke it, and see it rejected."""
    project = await client.create_project("team-a")
    assert project.name == "team-a"
    assert not project.archived
    assert project.id in {p.id for p in await client.list_projects()}

    created = await client.create_service_account(project.id, "k8s.team-a.app.r1", expires_in_seconds=3600)
    sa, key = created.service_account, created.api_key
    assert key is not None
    assert sa.name == "k8s.team-a.app.r1"
    assert key.expires_at is not None
    await client.verify_key(key.value)

    assert [a.id for a in await client.list_service_accounts(project.id)] == [sa.id]
    assert (await client.get_service_account(project.id, sa.id)).id == sa.id
    (listed,) = [k for k in await client.list_project_api_keys(project.id) if k.id == key.id]
    assert (listed.owner_type, listed.owner_id) == ("service_account", sa.id)
    assert listed.redacted_value == key.redacted_value

    assert await client.delete_service_account(project.id, sa.id) is True
    with pytest.raises(KeyRejectedError):
        await client.verify_key(key.value)
    assert await client.delete_service_account(project.id, sa.id) is False
    with pytest.raises(ApiNotFoundError):
        await client.get_service_account(project.id, sa.id)


async def test_extra_key_for_a_service_account(client: AdminClient) -> None:
    """A second key minted for an existing account works and carries its scopes."""
    project = await client.create_project("team-b")
    created = await client.create_service_account(project.id, "k8s.team-b.app.r1")
    extra = await client.create_service_account_key(
        project.id, created.service_account.id, name="extra", scopes=["api.all.read"], expires_in_seconds=600
    )
    await client.verify_key(extra.value)
    assert created.api_key is not None
    assert extra.value != created.api_key.value


async def test_project_rename_and_archive(client: AdminClient) -> None:
    """Renaming and archiving round-trip; archived projects are listed only when asked."""
    project = await client.create_project("old")
    assert (await client.rename_project(project.id, "new")).name == "new"
    archived = await client.archive_project(project.id)
    assert archived.archived
    assert project.id not in {p.id for p in await client.list_projects()}
    assert project.id in {p.id for p in await client.list_projects(include_archived=True)}


async def test_paging_service_accounts(client: AdminClient) -> None:
    """A small page size forces several pages; every account comes back exactly once."""
    project = await client.create_project("many")
    names = [f"k8s.many.app{i}.r1" for i in range(7)]
    for name in names:
        await client.create_service_account(project.id, name)
    accounts = await client.list_service_accounts(project.id, page_size=2)
    assert sorted(a.name for a in accounts) == sorted(names)
    assert len({a.id for a in accounts}) == 7


async def test_costs_paging(client: AdminClient, emu: EmulatorServer, control: httpx.AsyncClient) -> None:
    """Costs recorded on five days come back over several pages, typed and grouped by project."""
    project = await client.create_project("spendy")
    first = day_start(emu.state.now()) - 4 * DAY
    for i in range(5):
        r = await control.post(
            "/spend", json={"project_id": project.id, "amount_usd": 1.25 * (i + 1), "day": first + i * DAY}
        )
        assert r.status_code == 200
    buckets = await client.costs(
        start_time=first, end_time=first + 5 * DAY, group_by=["project_id"], project_ids=[project.id], limit=2
    )
    assert len(buckets) == 5
    assert [b.start.timestamp() for b in buckets] == [first + i * DAY for i in range(5)]
    amounts = [r.amount_usd for b in buckets for r in b.results]
    assert amounts == pytest.approx([1.25, 2.5, 3.75, 5.0, 6.25])
    assert {r.project_id for b in buckets for r in b.results} == {project.id}
    assert emu.call_count("GET", "/v1/organization/costs") == 3


async def test_spend_limit_and_rate_limits(client: AdminClient) -> None:
    """Spend limit CRUD (404 as 'none') and rate-limit modify round-trip."""
    project = await client.create_project("limited")
    assert await client.get_spend_limit(project.id) is None
    limit = await client.set_spend_limit(project.id, 50_000)
    assert limit.threshold_usd == 500.0
    assert await client.get_spend_limit(project.id) == limit
    assert await client.delete_spend_limit(project.id) is True
    assert await client.delete_spend_limit(project.id) is False

    limits = await client.list_rate_limits(project.id)
    assert limits
    target = limits[0]
    updated = await client.modify_rate_limit(project.id, target.id, max_requests_per_1_minute=7)
    assert updated.max_requests_per_1_minute == 7


async def test_spend_alerts_round_trip(client: AdminClient) -> None:
    """Spend alerts: create, list, update in place (same id), delete (then 404 counts as gone)."""
    project = await client.create_project("alerted")
    created = await client.create_spend_alert(project.id, 5_000, ["ops@example.com"])
    assert (created.threshold_cents, created.recipients, created.channel_type) == (5_000, ("ops@example.com",), "email")
    assert await client.list_spend_alerts(project.id) == [created]
    updated = await client.update_spend_alert(project.id, created.id, 8_000, ["ops@example.com", "fin@example.com"])
    assert (updated.id, updated.threshold_cents) == (created.id, 8_000)
    assert await client.list_spend_alerts(project.id) == [updated]
    assert await client.delete_spend_alert(project.id, created.id) is True
    assert await client.delete_spend_alert(project.id, created.id) is False
    assert await client.list_spend_alerts(project.id) == []


async def test_retry_after_from_injected_rate_limit(
    client: AdminClient, control: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    """Two injected 429s with Retry-After are waited out (as recorded delays) and the call succeeds."""
    r = await control.post(
        "/faults",
        json={"route": "/v1/organization/projects", "method": "GET", "rate_limit_burst": 2, "retry_after": 2},
    )
    assert r.status_code == 200
    assert await client.list_projects() is not None
    assert sleeps.delays == [2.0, 2.0]


async def test_create_not_retried_on_injected_500(
    client: AdminClient, emu: EmulatorServer, control: httpx.AsyncClient
) -> None:
    """A 500 on a create is surfaced, not retried, so no duplicate account can appear."""
    project = await client.create_project("careful")
    route = "/v1/organization/projects/{project_id}/service_accounts"
    await control.post(
        "/faults", json={"route": route, "method": "POST", "error_rate": 1.0, "error_status": 500, "times": 1}
    )
    with pytest.raises(TransientError):
        await client.create_service_account(project.id, "k8s.careful.app.r1")
    assert emu.call_count("POST", route) == 1


async def test_wrong_admin_key(emu: EmulatorServer, http: httpx.AsyncClient) -> None:
    """A wrong admin key is a permanent AdminKeyError, and the message does not contain it."""
    wrong = new_admin_key()
    client = AdminClient(http, admin_key=SecretValue(wrong), base_url=emu.base_url)
    with pytest.raises(AdminKeyError) as info:
        await client.list_projects()
    assert isinstance(info.value, PermanentError)
    assert wrong not in str(info.value)
