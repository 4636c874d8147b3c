"""No route answers junk with a 5xx; predefined roles use the "next"-cursor envelope; the threaded
server works for synchronous code."""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai
import pytest

from openai_emulator import EmulatorServer, ThreadedEmulator, new_admin_key

pytestmark = pytest.mark.conformance

JUNK_BODIES: list[Any] = [
    None,
    {},
    [],
    "text",
    7,
    {"name": {"nested": True}},
    {"threshold_amount": 10**30, "currency": "USD", "interval": "month"},
    {"max_requests_per_1_minute": 10**30},
    {"expires_in_seconds": -5},
    {"scopes": [None]},
    {"model": "gpt-4o-mini", "messages": [1, "x"]},
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": {"odd": 1}}]},
    {"set": 1e300},
    {"advance_seconds": -1e12},
    {"project_id": "nope", "amount_usd": 1},
    {"route": 5},
    {"latency": {"distribution": "fixed", "ms": 1e12}},
]
RAW_BODIES = [b'{"name": NaN}', b"[" * 5000, b'{"name": "x"}' * 2, b"\x00\x01"]


async def test_no_route_answers_junk_with_a_server_error(emu: EmulatorServer) -> None:
    async with httpx.AsyncClient(base_url=emu.root_url, timeout=10) as c:
        pid = (
            await c.post(
                "/v1/organization/projects",
                json={"name": "fuzz"},
                headers={"Authorization": f"Bearer {emu.admin_key}"},
            )
        ).json()["id"]
        sa = (
            await c.post(
                f"/v1/organization/projects/{pid}/service_accounts",
                json={"name": "fuzz"},
                headers={"Authorization": f"Bearer {emu.admin_key}"},
            )
        ).json()
        data_key = sa["api_key"]["value"]
        templates = sorted({r.resource.canonical for r in emu_routes(emu) if r.resource is not None})
        assert len(templates) > 40
        seen = 0
        for template in templates:
            if template == "/_emulator/reset":
                continue
            path = re.sub(r"\{project_id\}", pid, template)
            path = re.sub(r"\{service_account_id\}", sa["id"], path)
            path = re.sub(r"\{[^}]+\}", "junk", path)
            key = data_key if template.startswith(("/v1/models", "/v1/chat")) else emu.admin_key
            headers = {"Authorization": f"Bearer {key}"}
            for method in ("GET", "POST", "DELETE"):
                bodies: list[dict[str, Any]] = [{"json": b} for b in JUNK_BODIES] if method == "POST" else [{}]
                bodies += [{"content": raw} for raw in RAW_BODIES] if method == "POST" else []
                for extra in bodies:
                    r = await c.request(method, path, headers=headers, params={"limit": "5"}, **extra)
                    seen += 1
                    assert r.status_code < 500, (method, path, extra, r.text)
                    assert r.headers["x-request-id"]
                    if r.status_code >= 400 and (method, template) == ("POST", "/oauth/token"):  # OAuth-style errors
                        assert set(r.json()) == {"error", "error_description"}
                    elif r.status_code >= 400:
                        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert seen > 500


def emu_routes(emu: EmulatorServer) -> list[Any]:
    assert emu._runner is not None
    return list(emu._runner.app.router.routes())


async def test_predefined_roles_use_the_next_cursor_envelope(admin: openai.AsyncOpenAI) -> None:
    roles = [r.name async for r in admin.admin.organization.roles.list(limit=1)]
    assert roles == ["owner", "reader"]
    page = await admin.admin.organization.roles.list(limit=1)
    assert page.has_more
    assert page.next == page.data[0].id
    p = await admin.admin.organization.projects.create(name="roles")
    assert [r.name async for r in admin.admin.organization.projects.roles.list(p.id)] == ["owner", "member"]


def test_threaded_emulator_serves_sync_clients() -> None:
    admin_key = new_admin_key()
    with ThreadedEmulator(admin_key=admin_key) as emu:
        client = openai.OpenAI(api_key="unused", admin_api_key=admin_key, base_url=emu.base_url, max_retries=0)
        p = client.admin.organization.projects.create(name="sync")
        sa = client.admin.organization.projects.service_accounts.create(project_id=p.id, name="k8s.x.y.r1")
        assert sa.api_key is not None
        data = openai.OpenAI(api_key=sa.api_key.value, base_url=emu.base_url, max_retries=0)
        assert data.models.list().data
        client.admin.organization.projects.service_accounts.delete(sa.id, project_id=p.id)
        with pytest.raises(openai.AuthenticationError):
            data.models.list()
        state = httpx.get(emu.root_url + "/_emulator/state", timeout=5).json()
        assert next(x for x in state["projects"] if x["id"] == p.id)["live_service_accounts"] == 0
        client.close()
        data.close()
