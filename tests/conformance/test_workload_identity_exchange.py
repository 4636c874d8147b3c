"""The token exchange and its access tokens, driven by the official SDK's workload identity client.

``OpenAI(workload_identity={..., "provider": k8s_service_account_token_provider(path)})`` exchanges
the token file's JWT at the emulator (the SDK's exchange URL is redirected as the reference note
describes: ``sys.modules["openai._client"].WorkloadIdentityAuth`` is a partial with
``token_exchange_url``), then calls the data plane with the access token. Subject tokens are signed
here with generated test keys; iat/exp follow the emulator's clock.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import openai
import openai.auth
import pytest
from wif_support import AUDIENCE, ISSUER, TOKEN_EXCHANGE_PATH, TestKey, jwks, k8s_claims

from openai_emulator import EmulatorServer

pytestmark = pytest.mark.conformance

SUB = "system:serviceaccount:team:app"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass
class World:
    """One provider (an RS256 and an ES256 key), one project, one key-less service account, one rule."""

    emu: EmulatorServer
    admin: openai.AsyncOpenAI
    rsa: TestKey
    ec: TestKey
    provider_id: str
    project_id: str
    sa_id: str
    rule_id: str
    token_file: Path
    clients: list[openai.AsyncOpenAI]

    def claims(self, **overrides: Any) -> dict[str, Any]:
        return k8s_claims(self.emu.state.now()) | overrides

    def write(self, token: str) -> None:
        self.token_file.write_text(token)

    def workload(self, sa_id: str | None = None, provider_id: str | None = None) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(
            workload_identity={
                "identity_provider_id": provider_id or self.provider_id,
                "service_account_id": sa_id or self.sa_id,
                "provider": openai.auth.k8s_service_account_token_provider(self.token_file),
            },
            base_url=self.emu.base_url,
            max_retries=0,
        )
        self.clients.append(client)
        return client

    async def exchange(self, token: str, **overrides: str) -> httpx.Response:
        body = {"grant_type": GRANT, "subject_token_type": JWT_TYPE, "subject_token": token,
                "identity_provider_id": self.provider_id, "service_account_id": self.sa_id} | overrides  # fmt: skip
        async with httpx.AsyncClient(base_url=self.emu.root_url, timeout=10) as c:
            return await c.post(TOKEN_EXCHANGE_PATH, json=body)

    @property
    def rules(self) -> Any:
        return self.admin.admin.organization.workload_identity_providers.federation_rules


@pytest.fixture
def exchange_at_emulator(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sys.modules["openai._client"],
        "WorkloadIdentityAuth",
        functools.partial(openai.auth.WorkloadIdentityAuth, token_exchange_url=emu.root_url + TOKEN_EXCHANGE_PATH),
    )


@pytest.fixture
async def world(
    emu: EmulatorServer, admin: openai.AsyncOpenAI, tmp_path: Path, exchange_at_emulator: None
) -> AsyncIterator[World]:
    rsa, ec = TestKey("RS256"), TestKey("ES256")
    orgp = admin.admin.organization.projects
    project = await orgp.create(name="keyless")
    sa = await orgp.service_accounts.create(
        project_id=project.id, name="k8s.team.app", create_service_account_only=True
    )
    provider = await admin.admin.organization.workload_identity_providers.create(
        name="cluster", issuer=ISSUER + "/", audience=AUDIENCE, type="oidc",
        verification={"type": "uploaded_jwks", "jwks": jwks(rsa, ec)},
    )  # fmt: skip
    rule = await admin.admin.organization.workload_identity_providers.federation_rules.create(
        provider.id, attribute_matchers={"sub": SUB}, project_id=project.id, service_account_id=sa.id
    )
    w = World(emu, admin, rsa, ec, provider.id, project.id, sa.id, rule.id, tmp_path / "token", [])
    w.write(rsa.sign(w.claims()))
    yield w
    for client in w.clients:
        await client.close()


def _exchanges(emu: EmulatorServer, status: int | None = None) -> int:
    return emu.call_count("POST", TOKEN_EXCHANGE_PATH, status, kind="oauth")


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_workload_exchanges_and_completes_a_chat(
    world: World, alg: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = world.rsa if alg == "RS256" else world.ec
    world.write(key.sign(world.claims()))
    client = world.workload()
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert [m.id async for m in client.models.list()]
    assert _exchanges(world.emu, 200) == 1  # the token is cached across calls
    response = await world.exchange(key.sign(world.claims()))
    body = response.json()
    assert set(body) == {"access_token", "issued_token_type", "token_type", "expires_in"}
    assert not body["access_token"].startswith("sk-")
    assert body["token_type"] == "Bearer"
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["access_token"] not in caplog.text
    async with httpx.AsyncClient(base_url=world.emu.root_url, timeout=10) as c:
        assert body["access_token"] not in (await c.get("/_emulator/state")).text


async def test_usage_is_charged_to_the_project_under_the_service_account_id(world: World) -> None:
    client = world.workload()
    await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "bill me"}])
    _, by_project, by_key = world.emu.state.ledger()
    assert by_project[world.project_id] > 0
    assert by_key[world.sa_id] == pytest.approx(by_project[world.project_id])
    start = world.emu.state.now() - 86_400
    costs = await world.admin.admin.organization.usage.costs(start_time=start, group_by=["project_id", "api_key_id"])
    rows = [r for bucket in costs.data for r in bucket.results]
    assert {(r.project_id, r.api_key_id) for r in rows} == {(world.project_id, world.sa_id)}


async def test_expires_in_is_the_shorter_of_an_hour_and_the_subject_token(world: World) -> None:
    now = world.emu.state.now()
    short = await world.exchange(world.rsa.sign(k8s_claims(now, ttl=600)))
    assert 598 <= short.json()["expires_in"] <= 600  # exp - now, now a second or two later than the signing
    long = await world.exchange(world.rsa.sign(k8s_claims(now, ttl=7200)))
    assert long.json()["expires_in"] == 3600


def _bad_tokens(w: World) -> dict[str, Callable[[], str]]:
    other = TestKey()
    return {
        "wrong iss": lambda: w.rsa.sign(w.claims(iss="https://other.example.com")),
        "wrong aud": lambda: w.rsa.sign(w.claims(aud=["https://kubernetes.default.svc.cluster.local"])),
        "unknown kid": lambda: other.sign(w.claims()),
        "no kid": lambda: w.rsa.sign(w.claims(), kid=""),
        "bad signature": lambda: other.sign(w.claims(), kid=w.rsa.kid),
        "expired": lambda: w.rsa.sign(w.claims(exp=w.emu.state.now() - 1)),
        "issued in the future": lambda: w.rsa.sign(w.claims(iat=w.emu.state.now() + 600)),
        "no sub": lambda: w.rsa.sign({k: v for k, v in w.claims().items() if k != "sub"}),
        "alg none": lambda: jwt.encode(w.claims(), None, algorithm="none", headers={"kid": w.rsa.kid}),
        "not a jwt": lambda: "not-a-jwt",
        "alg other than the key's": lambda: jwt.encode(w.claims(), w.rsa.private, algorithm="PS256",
                                                       headers={"kid": w.rsa.kid}),
    }


async def test_bad_subject_tokens_are_refused_as_invalid_subject_token(world: World) -> None:
    for what, make in _bad_tokens(world).items():
        world.write(make())
        client = world.workload()
        with pytest.raises(openai.OAuthError) as info:
            await client.models.list()
        assert info.value.error == "invalid_subject_token", what
        assert info.value.status_code == 401, what
    assert _exchanges(world.emu, 200) == 0


async def test_a_string_aud_and_the_id_token_type_are_accepted(world: World) -> None:
    response = await world.exchange(world.rsa.sign(world.claims(aud=AUDIENCE)))
    assert response.status_code == 200
    id_token = "urn:ietf:params:oauth:token-type:id_token"
    response = await world.exchange(world.rsa.sign(world.claims()), subject_token_type=id_token)
    assert response.status_code == 200


async def test_no_matching_rule_and_two_matching_rules_are_refused(world: World) -> None:
    world.write(world.rsa.sign(world.claims(sub="system:serviceaccount:team:other")))
    with pytest.raises(openai.OAuthError) as info:
        await world.workload().models.list()
    assert (info.value.error, info.value.status_code) == ("invalid_grant", 400)

    world.write(world.rsa.sign(world.claims()))
    twin = await world.rules.create(
        world.provider_id, attribute_matchers={"sub": SUB}, project_id=world.project_id, service_account_id=world.sa_id
    )
    with pytest.raises(openai.OAuthError) as info:
        await world.workload().models.list()
    assert info.value.error == "invalid_grant"
    assert "exactly one must match" in info.value.message
    await world.rules.update(twin.id, workload_identity_provider_id=world.provider_id, enabled=False)
    assert [m.id async for m in world.workload().models.list()]  # a disabled rule does not count


async def test_a_disabled_provider_and_an_unknown_provider_are_refused(world: World) -> None:
    await world.admin.admin.organization.workload_identity_providers.update(world.provider_id, enabled=False)
    with pytest.raises(openai.OAuthError) as info:
        await world.workload().models.list()
    assert info.value.error == "invalid_grant"
    with pytest.raises(openai.OAuthError):
        await world.workload(provider_id="wip_unknown").models.list()


async def test_a_trailing_star_matches_a_prefix(world: World) -> None:
    await world.rules.update(
        world.rule_id, workload_identity_provider_id=world.provider_id,
        attribute_matchers={"sub": "system:serviceaccount:team:*", "aud": AUDIENCE},
    )  # fmt: skip
    world.write(world.rsa.sign(world.claims(sub="system:serviceaccount:team:worker")))
    assert [m.id async for m in world.workload().models.list()]
    world.write(world.rsa.sign(world.claims(sub="system:serviceaccount:teamb:worker")))
    with pytest.raises(openai.OAuthError):
        await world.workload().models.list()


async def test_attribute_transformations_feed_openai_matchers(world: World) -> None:
    wip = world.admin.admin.organization.workload_identity_providers
    await wip.update(world.provider_id, attribute_transformations=[
        {"attribute": "openai.namespace", "expression": 'assertion["kubernetes.io"].namespace'},
        {"attribute": "openai.subject", "expression": "assertion.sub"},
    ])  # fmt: skip
    await world.rules.update(
        world.rule_id, workload_identity_provider_id=world.provider_id,
        attribute_matchers={"openai.namespace": "team", "openai.subject": "system:serviceaccount:team:*"},
    )  # fmt: skip
    world.write(world.rsa.sign(world.claims(sub="system:serviceaccount:team:worker")))
    assert [m.id async for m in world.workload().models.list()]
    other = k8s_claims(world.emu.state.now(), namespace="elsewhere")
    assert (await world.exchange(world.rsa.sign(other))).json()["error"] == "invalid_grant"
    # A raw claim named like an attribute does not count: openai.* comes from transformations only.
    await wip.update(world.provider_id, attribute_transformations=[])
    forged = world.claims() | {"openai.namespace": "team", "openai.subject": SUB}
    assert (await world.exchange(world.rsa.sign(forged))).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("expression", "why"),
    [("assertion.aud", "gave list"), ("assertion.missing", "failed: KeyError"), ("null", "gave NoneType")],
)
async def test_a_transformation_without_a_scalar_result_fails_the_exchange(
    world: World, expression: str, why: str
) -> None:
    await world.admin.admin.organization.workload_identity_providers.update(
        world.provider_id, attribute_transformations=[{"attribute": "openai.x", "expression": expression}]
    )
    response = await world.exchange(world.rsa.sign(world.claims()))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert why in response.json()["error_description"]


async def test_restricted_permissions_narrow_the_token(world: World) -> None:
    await world.rules.update(
        world.rule_id, workload_identity_provider_id=world.provider_id,
        permissions={"type": "restricted", "scopes": ["api.model.read"]},
    )  # fmt: skip
    response = await world.exchange(world.rsa.sign(world.claims()))
    assert response.json()["scope"] == "api.model.read"
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    async with httpx.AsyncClient(base_url=world.emu.base_url, headers=headers, timeout=10) as c:
        assert (await c.get("/models")).status_code == 200
        chat = await c.post("/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user"}]})
        assert chat.status_code == 401
        assert "Missing scopes: model.request" in chat.json()["error"]["message"]


async def test_the_access_token_is_refused_by_the_admin_api(world: World) -> None:
    token = (await world.exchange(world.rsa.sign(world.claims()))).json()["access_token"]
    async with httpx.AsyncClient(base_url=world.emu.base_url, timeout=10) as c:
        for path in ("/organization/projects", "/organization/workload_identity_providers", "/organization/costs"):
            response = await c.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, path
            assert token not in response.text


async def test_an_expired_access_token_is_refused_by_the_admin_api_without_echoing_it(world: World) -> None:
    now = world.emu.state.now()
    token = (await world.exchange(world.rsa.sign(k8s_claims(now, ttl=700)))).json()["access_token"]
    world.emu.clock.advance(701)
    async with httpx.AsyncClient(base_url=world.emu.base_url, timeout=10) as c:
        response = await c.get("/organization/projects", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "cannot be used with the Admin API" in response.json()["error"]["message"]
    assert token[-8:] not in response.text


async def _data_plane_status(world: World, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.emu.base_url, timeout=10) as c:
        return await c.get("/models", headers={"Authorization": f"Bearer {token}"})


async def test_the_access_token_stops_working_when_it_expires(world: World) -> None:
    now = world.emu.state.now()
    token = (await world.exchange(world.rsa.sign(k8s_claims(now, ttl=900)))).json()["access_token"]
    assert (await _data_plane_status(world, token)).status_code == 200
    world.emu.clock.advance(901)
    response = await _data_plane_status(world, token)
    assert response.status_code == 401
    assert "expired or revoked" in response.json()["error"]["message"]
    assert token[-6:] not in response.text
    assert token[:12] not in response.text


@pytest.mark.parametrize("what", ["rule deleted", "rule disabled", "provider disabled", "service account deleted"])
async def test_the_access_token_dies_with_its_mapping(world: World, what: str) -> None:
    client = world.workload()
    assert [m.id async for m in client.models.list()]
    token = (await world.exchange(world.rsa.sign(world.claims()))).json()["access_token"]
    wip = world.admin.admin.organization.workload_identity_providers
    if what == "rule deleted":
        await world.rules.delete(world.rule_id, workload_identity_provider_id=world.provider_id)
    elif what == "rule disabled":
        await world.rules.update(world.rule_id, workload_identity_provider_id=world.provider_id, enabled=False)
    elif what == "provider disabled":
        await wip.update(world.provider_id, enabled=False)
    else:
        await world.admin.admin.organization.projects.service_accounts.delete(world.sa_id, project_id=world.project_id)
    assert (await _data_plane_status(world, token)).status_code == 401
    # The SDK drops its cached token on the 401, exchanges again, and that exchange is refused.
    with pytest.raises(openai.OAuthError) as info:
        await client.models.list()
    assert info.value.error == "invalid_grant"


async def test_malformed_exchange_requests(world: World) -> None:
    token = world.rsa.sign(world.claims())
    cases = [
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"}, 400, "invalid_request"),
        ({"service_account_id": ""}, 400, "invalid_request"),
    ]
    for overrides, status, error in cases:
        response = await world.exchange(token, **overrides)
        assert (response.status_code, response.json()["error"]) == (status, error), overrides
        assert response.json()["error_description"]
    async with httpx.AsyncClient(base_url=world.emu.root_url, timeout=10) as c:
        missing = await c.post(TOKEN_EXCHANGE_PATH, json={"grant_type": GRANT, "subject_token": token})
        assert missing.status_code == 400
        assert missing.json()["error"] == "invalid_request"
        assert "subject_token_type" in missing.json()["error_description"]
        form = await c.post(TOKEN_EXCHANGE_PATH, data={"grant_type": GRANT, "subject_token": token})
        assert (form.status_code, form.json()["error"]) == (400, "invalid_request")


async def test_the_state_dump_shows_mappings_and_counts_tokens_without_values(world: World) -> None:
    token = (await world.exchange(world.rsa.sign(world.claims()))).json()["access_token"]
    async with httpx.AsyncClient(base_url=world.emu.root_url, timeout=10) as c:
        response = await c.get("/_emulator/state")
    assert token not in response.text
    dumped = response.json()["workload_identity"]
    assert dumped["live_access_tokens"] == 1
    (provider,) = dumped["providers"]
    assert provider["kids"] == [world.rsa.kid, world.ec.kid]
    assert [(r["id"], r["service_account_id"]) for r in provider["rules"]] == [(world.rule_id, world.sa_id)]
