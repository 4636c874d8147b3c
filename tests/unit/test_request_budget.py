"""The Admin API request budget: pacing, bursts, shared Retry-After holds, fairness (virtual time)."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from openai_operator.openai.budget import RequestBudget
from openai_operator.openai.client import AdminClient
from openai_operator.openai.errors import ApiTransientError
from openai_operator.openai.retry import RetryPolicy
from openai_operator.secretvalue import SecretValue


class VirtualTime:
    """A clock that moves only when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def _budget(rate: float | None, burst: int, time: VirtualTime) -> RequestBudget:
    return RequestBudget(rate, burst=burst, clock=time.clock, sleep=time.sleep)


async def test_a_burst_goes_at_once_then_requests_are_paced_at_the_rate() -> None:
    time = VirtualTime()
    budget = _budget(rate=4.0, burst=3, time=time)
    started = time.now
    at = []
    for _ in range(7):
        await budget.acquire()
        at.append(round(time.now - started, 6))
    assert at == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0]


async def test_a_quiet_spell_refills_the_bucket_up_to_the_burst_only() -> None:
    time = VirtualTime()
    budget = _budget(rate=2.0, burst=2, time=time)
    for _ in range(2):
        await budget.acquire()
    time.now += 60.0  # a long quiet spell: the bucket holds at most 2
    for _ in range(3):
        await budget.acquire()
    assert time.sleeps == [0.5]


async def test_concurrent_callers_together_stay_within_the_rate() -> None:
    time = VirtualTime()
    budget = _budget(rate=10.0, burst=1, time=time)
    started = time.now
    await asyncio.gather(*(budget.acquire() for _ in range(21)))
    assert time.now - started == pytest.approx(2.0)


async def test_a_hold_stops_every_request_even_without_a_rate() -> None:
    time = VirtualTime()
    budget = _budget(rate=None, burst=1, time=time)
    await budget.acquire()
    assert time.sleeps == []
    budget.hold(3.0)
    budget.hold(1.0)  # a shorter hold never shortens a longer one
    waited = await asyncio.gather(budget.acquire(), budget.acquire())
    assert waited == [3.0, 0.0]
    assert budget.waited_seconds == 3.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        RequestBudget(0)
    with pytest.raises(ValueError, match="burst"):
        RequestBudget(1.0, burst=0)


async def test_a_429_with_retry_after_holds_the_other_admin_calls_of_the_process() -> None:
    """One call's 429 + Retry-After makes the next, different call of another client wait too."""
    time = VirtualTime()
    answers = iter([
        httpx.Response(429, headers={"retry-after": "2"}, json={"error": {"message": "Rate limit reached"}}),
        httpx.Response(200, json={"object": "list", "data": [], "has_more": False}),
    ])
    sent_at: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append((request.url.path, time.now))
        return next(answers)

    budget = RequestBudget(None, clock=time.clock, sleep=time.sleep)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        def client(attempts: int) -> AdminClient:
            return AdminClient(http, admin_key=SecretValue("sk-admin-test"), base_url="https://api.test/v1",
                               budget=budget, retry=RetryPolicy(max_attempts=attempts), sleep=time.sleep,
                               clock=time.clock)

        with pytest.raises(ApiTransientError):
            await client(1).list_projects()  # refused, not retried: only the hold remains
        await client(4).list_service_accounts("proj_1")
    start = sent_at[0][1]
    assert [(path, at - start) for path, at in sent_at] == [
        ("/v1/organization/projects", 0.0),
        ("/v1/organization/projects/proj_1/service_accounts", 2.0),
    ]


async def test_a_retried_429_waits_its_retry_after_once() -> None:
    time = VirtualTime()
    answers = iter([
        httpx.Response(429, headers={"retry-after": "2"}, json={"error": {"message": "Rate limit reached"}}),
        httpx.Response(200, json={"object": "list", "data": [], "has_more": False}),
    ])
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _request: next(answers))) as http:
        client = AdminClient(http, admin_key=SecretValue("sk-admin-test"), base_url="https://api.test/v1",
                             sleep=time.sleep, clock=time.clock)
        await client.list_projects()
    assert time.sleeps == [2.0]


async def test_calls_queued_for_a_connection_leave_at_the_rate_not_in_a_burst() -> None:
    """Tokens are drawn when a call can go out. Drawn while calls still waited for a connection
    (two slow calls holding both), they all left together the moment the connections freed up."""
    time = VirtualTime()
    budget = _budget(rate=10.0, burst=1, time=time)
    release = asyncio.Event()
    sent: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.now)
        if len(sent) <= 2:
            await release.wait()  # the first two hold both connections for a while
        return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = AdminClient(http, admin_key=SecretValue("sk-admin-test"), base_url="https://api.test/v1",
                             budget=budget, sleep=time.sleep, clock=time.clock, max_in_flight=2)
        calls = [asyncio.ensure_future(client.list_projects()) for _ in range(10)]
        for _ in range(500):  # let the queued calls get as far as they can
            await asyncio.sleep(0)
        assert len(sent) == 2
        release.set()
        await asyncio.gather(*calls)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(sent)]
    assert len(sent) == 10
    assert min(gaps) >= 0.1, f"sends closer than the rate allows: {gaps}"
