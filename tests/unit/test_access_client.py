"""The AdminClient's project-access calls against httpx.MockTransport (no network): the wire shapes
of users, invites, model permissions and service tiers, paging, and creates that are not retried blind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from openai_operator.errors import TransientError
from openai_operator.openai import AdminClient, RetryPolicy
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

BASE = "https://openai.test/v1"


class Script:
    def __init__(self) -> None:
        self.steps: list[httpx.Response | Exception] = []
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def client(script: Script) -> AsyncIterator[AdminClient]:
    async def no_sleep(_: float) -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(script.handle)) as http:
        yield AdminClient(http, admin_key=SecretValue("sk-admin-" + "x" * 40), base_url=BASE,
                          retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1.0), sleep=no_sleep,
                          rand=lambda: 1.0)


INVITE = {"object": "organization.invite", "id": "invite-1", "email": "a@example.com", "role": "reader",
          "status": "pending", "created_at": 1764000000, "expires_at": 1764604800, "accepted_at": None,
          "projects": [{"id": "proj_1", "role": "owner"}]}


async def test_org_users_are_filtered_by_email_and_paged(script: Script, client: AdminClient) -> None:
    user = {"object": "organization.user", "id": "user-1", "email": "a@example.com", "role": "reader",
            "added_at": 1}
    script.steps = [ok({"object": "list", "data": [user], "last_id": "user-1", "has_more": True}),
                    ok({"object": "list", "data": [user | {"id": "user-2"}], "last_id": "user-2", "has_more": False})]
    users = await client.list_org_users(emails=["a@example.com", "b@example.com"])
    assert [u.id for u in users] == ["user-1", "user-2"]
    first, second = script.requests
    assert first.url.params.get_list("emails[]") == ["a@example.com", "b@example.com"]
    assert second.url.params["after"] == "user-1"


async def test_an_invite_is_created_scoped_to_projects_and_parsed(script: Script, client: AdminClient) -> None:
    script.steps = [ok(INVITE)]
    invite = await client.create_invite("a@example.com", role="reader", projects={"proj_1": "owner"})
    assert json.loads(script.requests[0].content) == {"email": "a@example.com", "role": "reader",
                                                      "projects": [{"id": "proj_1", "role": "owner"}]}
    assert (invite.id, invite.status, dict(invite.projects)) == ("invite-1", "pending", {"proj_1": "owner"})
    assert invite.expires_at is not None
    assert int(invite.expires_at.timestamp()) == 1764604800


@pytest.mark.parametrize("call", ["create_invite", "add_project_user"])
async def test_creates_whose_fate_is_unknown_are_not_retried(script: Script, client: AdminClient, call: str) -> None:
    """A lost answer might mean the invite was sent (or the user added): a blind retry would duplicate or hide it."""
    script.steps = [httpx.ReadTimeout("lost")]
    attempt = client.create_invite("a@example.com") if call == "create_invite" else \
        client.add_project_user("proj_1", "user-1", "member")
    with pytest.raises(TransientError):
        await attempt
    assert len(script.requests) == 1


async def test_service_tiers_send_only_the_fields_given(script: Script, client: AdminClient) -> None:
    body = {"object": "project.service_tier_settings", "default": "standard", "enabled_tiers": "all"}
    script.steps = [ok(body), ok(body | {"enabled_tiers": ["flex"]})]
    updated = await client.update_service_tier_settings("proj_1", enabled_tiers="all")
    assert updated.enabled_tiers == "all"
    assert json.loads(script.requests[0].content) == {"enabled_tiers": "all"}
    assert (await client.get_service_tier_settings("proj_1")).enabled_tiers == ("flex",)
    with pytest.raises(ValueError, match="default or enabled_tiers"):
        await client.update_service_tier_settings("proj_1")


async def test_model_permissions_round_trip(script: Script, client: AdminClient) -> None:
    body = {"object": "project.model_permissions", "mode": "allow_list", "model_ids": ["gpt-4o-mini"]}
    script.steps = [ok(body), ok(body), ok({"object": "project.model_permissions.deleted", "deleted": True})]
    assert (await client.set_model_permissions("proj_1", "allow_list", ["gpt-4o-mini"])).model_ids == ("gpt-4o-mini",)
    assert (await client.get_model_permissions("proj_1")).mode == "allow_list"
    assert await client.delete_model_permissions("proj_1") is True
    assert [(r.method, r.url.path) for r in script.requests] == [
        ("POST", "/v1/organization/projects/proj_1/model_permissions"),
        ("GET", "/v1/organization/projects/proj_1/model_permissions"),
        ("DELETE", "/v1/organization/projects/proj_1/model_permissions"),
    ]
