"""Fault injection through the control API, observed with the official SDK."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from emulator_support import ClientFactory

from openai_emulator import EmulatorServer

pytestmark = pytest.mark.conformance
PROJECTS = "/v1/organization/projects"


async def add_fault(control: httpx.AsyncClient, **spec: object) -> dict[str, object]:
    r = await control.post("/_emulator/faults", json=spec)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def fault(control: httpx.AsyncClient, fault_id: object) -> dict[str, object]:
    faults = (await control.get("/_emulator/faults")).json()["faults"]
    return dict(next(f for f in faults if f["id"] == fault_id))


async def test_fixed_latency_on_one_route_only(admin: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    rule = await add_fault(control, route=PROJECTS, method="GET", latency_ms=200)
    started = time.monotonic()
    raw = await admin.admin.organization.projects.with_raw_response.list()
    assert time.monotonic() - started >= 0.2
    assert int(raw.headers["openai-processing-ms"]) >= 200
    started = time.monotonic()
    await admin.admin.organization.projects.create(name="fast")
    assert time.monotonic() - started < 0.2, "POST is not matched by a GET rule"
    assert (await fault(control, rule["id"]))["injected"] == 1


async def test_uniform_latency_stays_in_bounds(admin: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    await add_fault(control, route=PROJECTS, latency={"distribution": "uniform", "min_ms": 30, "max_ms": 60}, seed=7)
    for _ in range(3):
        raw = await admin.admin.organization.projects.with_raw_response.list()
        assert 30 <= int(raw.headers["openai-processing-ms"]) <= 200


async def test_5xx_then_recovery_after_times(
    admin: openai.AsyncOpenAI, control: httpx.AsyncClient, emu: EmulatorServer
) -> None:
    await add_fault(control, route=PROJECTS + "*", error_rate=1.0, error_status=503, times=1)
    with pytest.raises(openai.InternalServerError) as info:
        await admin.admin.organization.projects.list()
    assert info.value.status_code == 503
    await admin.admin.organization.projects.list()
    assert emu.call_count("GET", PROJECTS, 503) == 1
    assert emu.call_count("GET", PROJECTS, 200) == 1


async def test_error_rate_is_reproducible_with_a_seed(raw: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    runs = []
    for _ in range(2):
        await control.delete("/_emulator/faults")
        await add_fault(control, route=PROJECTS, error_rate=0.5, seed=1234)
        runs.append([(await raw.get("/organization/projects")).status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert 0 < runs[0].count(500) < 20


async def test_429_burst_with_retry_after(admin: openai.AsyncOpenAI, control: httpx.AsyncClient) -> None:
    await add_fault(control, route=PROJECTS, rate_limit_burst=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as info:
            await admin.admin.organization.projects.list()
        assert info.value.response.headers["retry-after"] == "3"
    await admin.admin.organization.projects.list()


async def test_sdk_honours_retry_after(sdk: ClientFactory, control: httpx.AsyncClient, emu: EmulatorServer) -> None:
    await add_fault(control, route=PROJECTS, rate_limit_burst=1, retry_after=1)
    client = sdk(max_retries=1)
    started = time.monotonic()
    await client.admin.organization.projects.list()
    assert time.monotonic() - started >= 0.9
    assert emu.call_count("GET", PROJECTS, 429) == 1
    assert emu.call_count("GET", PROJECTS, 200) == 1


async def test_dropped_connection(admin: openai.AsyncOpenAI, control: httpx.AsyncClient, emu: EmulatorServer) -> None:
    rule = await add_fault(control, route="/v1/organization/projects/*/service_accounts", drop_rate=1.0, times=1)
    p = await admin.admin.organization.projects.create(name="t")
    with pytest.raises(openai.APIConnectionError):
        await admin.admin.organization.projects.service_accounts.list(project_id=p.id)
    assert (await fault(control, rule["id"]))["expired"] is True
    await admin.admin.organization.projects.service_accounts.list(project_id=p.id)


async def test_data_plane_faults_and_rule_management(control: httpx.AsyncClient) -> None:
    rule = await add_fault(control, route="/v1/chat/completions", method="post", error_rate=1.0, error_status=502)
    assert rule["method"] == "POST"
    assert (await control.delete(f"/_emulator/faults/{rule['id']}")).status_code == 200
    assert (await control.get("/_emulator/faults")).json()["faults"] == []
    assert (await control.delete(f"/_emulator/faults/{rule['id']}")).status_code == 404
    for bad in ({"error_rate": 2}, {"error_status": 404}, {"latency": {"distribution": "zipf"}}, {"colour": 1}):
        r = await control.post("/_emulator/faults", json=bad)
        assert r.status_code == 400, bad
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


async def test_the_admin_rate_limit_refuses_with_retry_after_and_recovers(
    admin: openai.AsyncOpenAI, control: httpx.AsyncClient, emu: EmulatorServer
) -> None:
    r = await control.post("/_emulator/config", json={"admin_requests_per_second": 3})
    assert r.json()["admin_requests_per_second"] == 3
    refusing = admin.with_options(max_retries=0)
    for _ in range(3):
        await refusing.admin.organization.projects.list()
    with pytest.raises(openai.RateLimitError) as info:
        await refusing.admin.organization.projects.list()
    assert info.value.status_code == 429
    assert info.value.code == "rate_limit_exceeded"
    wait_ms = int(info.value.response.headers["retry-after-ms"])
    assert 0 < wait_ms <= 1000
    assert int(info.value.response.headers["Retry-After"]) == 1
    assert (await control.get("/_emulator/config")).json()["admin_requests_refused"] == 1
    await asyncio.sleep(wait_ms / 1000)
    await refusing.admin.organization.projects.list()  # the window moved on
    assert emu.call_count("GET", PROJECTS, 429) == 1
    r = await control.post("/_emulator/config", json={"admin_requests_per_second": None})
    assert r.json()["admin_requests_per_second"] is None
    for _ in range(10):
        await refusing.admin.organization.projects.list()


async def test_the_admin_rate_limit_must_be_positive(control: httpx.AsyncClient) -> None:
    r = await control.post("/_emulator/config", json={"admin_requests_per_second": 0})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "admin_requests_per_second"
