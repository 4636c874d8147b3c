"""Workload identity providers and federation rules through the official SDK's admin resources.

Success bodies are checked against the SDK's response models (the spec has no such operations);
errors against the spec's ``ErrorResponse`` envelope, by the recorder.
"""

from __future__ import annotations

import httpx
import openai
import pytest
from emulator_support import Recorder
from wif_support import AUDIENCE, ISSUER, TestKey, jwks

from openai_emulator import EmulatorServer

pytestmark = pytest.mark.conformance

P = "/organization/workload_identity_providers"


async def _provider(admin: openai.AsyncOpenAI, name: str = "cluster", **extra: object) -> str:
    wip = admin.admin.organization.workload_identity_providers
    created = await wip.create(
        name=name,
        issuer=ISSUER,
        audience=AUDIENCE,
        type="oidc",
        verification={"type": "uploaded_jwks", "jwks": jwks(TestKey())},
        **extra,  # type: ignore[arg-type]
    )
    return created.id


async def _service_account(admin: openai.AsyncOpenAI) -> tuple[str, str]:
    orgp = admin.admin.organization.projects
    project = await orgp.create(name="wif")
    sa = await orgp.service_accounts.create(
        project_id=project.id, name="k8s.team.app", create_service_account_only=True
    )
    return project.id, sa.id


async def test_provider_create_retrieve_update_delete(admin: openai.AsyncOpenAI, recorder: Recorder) -> None:
    wip = admin.admin.organization.workload_identity_providers
    key = TestKey("ES256")
    created = await wip.create(
        name="cluster-a",
        issuer=ISSUER,
        audience=AUDIENCE,
        type="oidc",
        description="the test cluster",
        verification={"type": "uploaded_jwks", "jwks": jwks(key)},
    )
    assert created.id.startswith("wip_")
    assert created.object == "organization.workload_identity_provider"
    assert created.enabled is True
    assert created.attribute_transformations == []
    assert created.verification.type == "uploaded_jwks"
    assert created.verification.jwks == jwks(key)  # type: ignore[union-attr]
    got = await wip.retrieve(created.id)
    assert got == created

    second = TestKey()
    updated = await wip.update(
        created.id, description=None, enabled=False, verification={"type": "uploaded_jwks", "jwks": jwks(key, second)}
    )
    assert updated.description is None
    assert updated.enabled is False
    assert updated.name == "cluster-a"  # partial: omitted fields are kept
    assert updated.issuer == ISSUER
    assert [k["kid"] for k in updated.verification.jwks["keys"]] == [key.kid, second.kid]  # type: ignore[union-attr,index]
    assert updated.updated_at >= created.updated_at

    deleted = await wip.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        created.id,
        True,
        "organization.workload_identity_provider.deleted",
    )
    with pytest.raises(openai.NotFoundError):
        await wip.retrieve(created.id)
    assert ("POST", P + "/{provider_id}", 200) in recorder.operations()


async def test_provider_validation_names_the_field(admin: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    wip = admin.admin.organization.workload_identity_providers
    base = {"name": "c", "issuer": ISSUER, "audience": AUDIENCE, "type": "oidc"}
    cases = [
        ({k: v for k, v in base.items() if k != "issuer"}, "issuer"),
        (base | {"type": "saml"}, "type"),
        (base | {"audience": ""}, "audience"),
        (base | {"issuer": "not a url"}, "issuer"),
        (base | {"verification": {"type": "uploaded_jwks", "jwks": {"keys": [{"kty": "RSA"}]}}},
         "verification.jwks.keys[0].kid"),
        (base | {"verification": {"type": "uploaded_jwks", "jwks": {"keys": [TestKey().jwk() | {"d": "x"}]}}},
         "verification.jwks.keys[0]"),
        (base | {"verification": {"type": "magic"}}, "verification.type"),
        (base | {"attribute_transformations": [{"attribute": "openai.subject", "expression": "assertion.sub =="}]},
         "attribute_transformations[0].expression"),
        (base | {"attribute_transformations": [{"attribute": "openai.subject", "expression": "claims.sub"}]},
         "attribute_transformations[0].expression"),
        (base | {"attribute_transformations": [{"attribute": "subject", "expression": "assertion.sub"}]},
         "attribute_transformations[0].attribute"),
        (base | {"attribute_transformations": [{"attribute": "openai.s", "expression": "assertion.sub"}] * 2},
         "attribute_transformations[1].attribute"),
        (base | {"attribute_transformations": [{"attribute": f"openai.a{i}", "expression": "assertion.sub"}
                                               for i in range(21)]}, "attribute_transformations"),
        (base | {"colour": "blue"}, "colour"),
    ]  # fmt: skip
    for body, param in cases:
        response = await raw.post(P, json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["param"] == param, (body, error)
        assert error["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as info:
        await wip.create(
            name="c", issuer=ISSUER, audience=AUDIENCE, type="oidc",
            attribute_transformations=[{"attribute": "openai.subject", "expression": "assertion.sub +"}],
        )  # fmt: skip
    assert "not a valid CEL expression" in info.value.message
    made = await wip.create(
        name="c", issuer=ISSUER, audience=AUDIENCE, type="oidc",
        attribute_transformations=[
            {"attribute": "openai.namespace", "expression": 'assertion["kubernetes.io"].namespace'}
        ],
    )  # fmt: skip
    assert [(t.attribute, t.expression) for t in made.attribute_transformations] == [
        ("openai.namespace", 'assertion["kubernetes.io"].namespace')
    ]
    pid = await _provider(admin)
    response = await raw.post(f"{P}/{pid}", json={"type": "oidc"})  # type is not updatable
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "type"


async def test_several_providers_may_share_an_issuer(admin: openai.AsyncOpenAI) -> None:
    first = await _provider(admin, "cluster-1")
    second = await _provider(admin, "cluster-2")
    wip = admin.admin.organization.workload_identity_providers
    assert (await wip.retrieve(first)).issuer == (await wip.retrieve(second)).issuer == ISSUER


async def test_provider_paging_order_and_limit_bounds(
    admin: openai.AsyncOpenAI, emu: EmulatorServer, raw: httpx.AsyncClient
) -> None:
    wip = admin.admin.organization.workload_identity_providers
    ids = [await _provider(admin, f"c{i}") for i in range(7)]
    assert [p.id async for p in wip.list(limit=3)] == ids
    assert emu.call_count("GET", "/v1" + P) == 3
    assert [p.id async for p in wip.list(limit=2, order="desc")] == ids[::-1]
    page = await wip.list(limit=100)
    assert (page.has_more, len(page.data)) == (False, 7)
    for bad in ("0", "101", "x"):
        response = await raw.get(P, params={"limit": bad})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "limit"
    response = await raw.get(P, params={"order": "sideways"})
    assert response.json()["error"]["param"] == "order"


async def test_fifty_providers_per_org_then_a_clear_400(admin: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    body = {"name": "c", "issuer": ISSUER, "audience": AUDIENCE, "type": "oidc"}
    for _ in range(50):
        assert (await raw.post(P, json=body)).status_code == 200
    response = await raw.post(P, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "workload_identity_provider_limit_exceeded"
    assert "maximum of 50 workload identity providers" in error["message"]
    with pytest.raises(openai.BadRequestError):
        await admin.admin.organization.workload_identity_providers.create(
            name="c", issuer=ISSUER, audience=AUDIENCE, type="oidc"
        )


async def test_rule_create_retrieve_update_delete(admin: openai.AsyncOpenAI) -> None:
    pid = await _provider(admin)
    project_id, sa_id = await _service_account(admin)
    rules = admin.admin.organization.workload_identity_providers.federation_rules
    rule = await rules.create(
        pid,
        attribute_matchers={"sub": "system:serviceaccount:team:app"},
        project_id=project_id,
        service_account_id=sa_id,
        name="team/app",
    )
    assert rule.id.startswith("wifr_")
    assert rule.object == "organization.workload_identity_federation_rule"
    assert rule.workload_identity_provider_id == pid
    assert rule.permissions.type == "service_account_default"
    assert rule.enabled is True
    assert rule.description is None
    assert await rules.retrieve(rule.id, workload_identity_provider_id=pid) == rule

    updated = await rules.update(
        rule.id,
        workload_identity_provider_id=pid,
        permissions={"type": "restricted", "scopes": ["api.model.read"]},
        attribute_matchers={"sub": "system:serviceaccount:team:*"},
        enabled=False,
        name=None,
    )
    assert updated.permissions.type == "restricted"
    assert updated.permissions.scopes == ["api.model.read"]  # type: ignore[union-attr]
    assert updated.attribute_matchers == {"sub": "system:serviceaccount:team:*"}  # replaced, not merged
    assert (updated.enabled, updated.name) == (False, None)
    assert (updated.project_id, updated.service_account_id) == (project_id, sa_id)

    deleted = await rules.delete(rule.id, workload_identity_provider_id=pid)
    assert (deleted.deleted, deleted.object) == (True, "organization.workload_identity_federation_rule.deleted")
    with pytest.raises(openai.NotFoundError):
        await rules.retrieve(rule.id, workload_identity_provider_id=pid)


async def test_rule_project_and_service_account_are_immutable(
    admin: openai.AsyncOpenAI, raw: httpx.AsyncClient
) -> None:
    pid = await _provider(admin)
    project_id, sa_id = await _service_account(admin)
    other_project, other_sa = await _service_account(admin)
    rules = admin.admin.organization.workload_identity_providers.federation_rules
    rule = await rules.create(
        pid, attribute_matchers={"sub": "system:serviceaccount:team:app"}, project_id=project_id,
        service_account_id=sa_id,
    )  # fmt: skip
    for name, value in (("project_id", other_project), ("service_account_id", other_sa)):
        response = await raw.post(f"{P}/{pid}/federation_rules/{rule.id}", json={name: value})
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["param"], error["code"]) == (name, "immutable_parameter")
    got = await rules.retrieve(rule.id, workload_identity_provider_id=pid)
    assert (got.project_id, got.service_account_id) == (project_id, sa_id)


async def test_rule_validation(admin: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    pid = await _provider(admin)
    project_id, sa_id = await _service_account(admin)
    base = {"attribute_matchers": {"sub": "x"}, "project_id": project_id, "service_account_id": sa_id}
    cases = [
        (base | {"attribute_matchers": {}}, 400, "attribute_matchers"),
        (base | {"attribute_matchers": {"sub": "*"}}, 400, "attribute_matchers.sub"),
        (base | {"attribute_matchers": {"sub": "a*b"}}, 400, "attribute_matchers.sub"),
        (base | {"attribute_matchers": {"sub": ["a"]}}, 400, "attribute_matchers.sub"),
        (base | {"attribute_matchers": {"sub": None}}, 400, "attribute_matchers.sub"),
        (base | {"permissions": {"type": "restricted", "scopes": []}}, 400, "permissions.scopes"),
        (base | {"permissions": {"type": "everything"}}, 400, "permissions.type"),
        ({k: v for k, v in base.items() if k != "project_id"}, 400, "project_id"),
        (base | {"service_account_id": "svc_acct_missing"}, 404, "service_account_id"),
        (base | {"project_id": "proj_missing"}, 404, "project_id"),
    ]
    for body, status, param in cases:
        response = await raw.post(f"{P}/{pid}/federation_rules", json=body)
        assert response.status_code == status, body
        assert response.json()["error"]["param"] == param, body
    assert (await raw.post(f"{P}/wip_missing/federation_rules", json=base)).status_code == 404
    ok = await raw.post(f"{P}/{pid}/federation_rules", json=base | {"attribute_matchers": {"sub": "a*", "n": 3}})
    assert ok.status_code == 200


async def test_provider_with_rules_cannot_be_deleted(admin: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    pid = await _provider(admin)
    project_id, sa_id = await _service_account(admin)
    rules = admin.admin.organization.workload_identity_providers.federation_rules
    rule = await rules.create(pid, attribute_matchers={"sub": "x"}, project_id=project_id, service_account_id=sa_id)
    response = await raw.delete(f"{P}/{pid}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "workload_identity_provider_has_rules"
    await rules.delete(rule.id, workload_identity_provider_id=pid)
    assert (await admin.admin.organization.workload_identity_providers.delete(pid)).deleted


async def test_fifty_rules_per_provider_paging_and_filter(
    admin: openai.AsyncOpenAI, emu: EmulatorServer, raw: httpx.AsyncClient
) -> None:
    pid = await _provider(admin)
    project_id, sa_id = await _service_account(admin)
    other_sa = (
        await admin.admin.organization.projects.service_accounts.create(
            project_id=project_id, name="k8s.team.other", create_service_account_only=True
        )
    ).id
    rules = admin.admin.organization.workload_identity_providers.federation_rules
    made = []
    for i in range(50):
        body = {"attribute_matchers": {"sub": f"system:serviceaccount:ns{i}:app"}, "project_id": project_id,
                "service_account_id": other_sa if i % 10 == 0 else sa_id}  # fmt: skip
        response = await raw.post(f"{P}/{pid}/federation_rules", json=body)
        assert response.status_code == 200
        made.append(response.json()["id"])
    response = await raw.post(
        f"{P}/{pid}/federation_rules",
        json={"attribute_matchers": {"sub": "x"}, "project_id": project_id, "service_account_id": sa_id},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Workload identity provider '{pid}' already has the maximum of 50 federation rules. "
            "Delete a rule, or create the rule on another provider for the same issuer.",
            "type": "invalid_request_error",
            "param": "workload_identity_provider_id",
            "code": "federation_rule_limit_exceeded",
        }
    }
    assert [r.id async for r in rules.list(pid, limit=20)] == made
    assert emu.call_count("GET", "/v1" + P + "/{provider_id}/federation_rules") == 3
    assert [r.id async for r in rules.list(pid, service_account_id=other_sa)] == made[::10]
    # Another provider for the same issuer takes the 51st mapping.
    spill = await _provider(admin, "cluster-overflow")
    extra = await rules.create(spill, attribute_matchers={"sub": "x"}, project_id=project_id, service_account_id=sa_id)
    assert extra.workload_identity_provider_id == spill


async def test_a_duplicate_rule_is_accepted(admin: openai.AsyncOpenAI) -> None:
    pid = await _provider(admin)
    project_id, sa_id = await _service_account(admin)
    rules = admin.admin.organization.workload_identity_providers.federation_rules
    matchers = {"sub": "system:serviceaccount:team:app"}
    one = await rules.create(pid, attribute_matchers=matchers, project_id=project_id, service_account_id=sa_id)
    two = await rules.create(pid, attribute_matchers=matchers, project_id=project_id, service_account_id=sa_id)
    assert one.id != two.id
    assert [r.id async for r in rules.list(pid)] == [one.id, two.id]


async def test_rules_survive_an_emulator_restart(tmp_path: object) -> None:
    from pathlib import Path

    state_file = Path(str(tmp_path)) / "state.json"
    async with EmulatorServer(state_file=state_file) as first:
        wif = first.state.wif
        provider = wif.create_provider({"name": "c", "issuer": ISSUER, "audience": AUDIENCE, "type": "oidc"})
        project = first.state.create_project("p")
        sa, _ = first.state.create_service_account(project.id, "sa", only=True, expires_in_seconds=None)
        rule = wif.create_rule(
            provider.id, {"attribute_matchers": {"sub": "x"}, "project_id": project.id, "service_account_id": sa.id}
        )
    async with EmulatorServer(state_file=state_file) as second:
        assert second.state.wif.get_rule(provider.id, rule.id).attribute_matchers == {"sub": "x"}
