"""Bad requests get the spec's error envelope with the right status, never a 500 or a traceback.

Every response here also passes through the recorder, which validates it against the spec's
``ErrorResponse`` schema and checks ``x-request-id``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from emulator_support import SpecChecker

from openai_emulator import EmulatorServer

pytestmark = pytest.mark.conformance
P = "/organization/projects"


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert "Traceback" not in r.text
    return dict(body["error"])


async def test_malformed_json_and_non_object_bodies(raw: httpx.AsyncClient) -> None:
    err = error_of(await raw.post(P, content=b'{"name": "x"', headers={"content-type": "application/json"}), 400)
    assert "could not parse the JSON body" in err["message"]
    error_of(await raw.post(P, content=b"\xff\xfe", headers={"content-type": "application/json"}), 400)
    error_of(await raw.post(P, json=["name"]), 400)
    error_of(await raw.post(P, json="name"), 400)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "name", "missing_required_parameter"),
        ({"name": 5}, "name", "invalid_type"),
        ({"name": None}, "name", "invalid_type"),
        ({"name": "x", "residency": 3}, "residency", "invalid_type"),
        ({"name": "x", "colour": "blue"}, "colour", "unknown_parameter"),
    ],
)
async def test_project_body_validation(raw: httpx.AsyncClient, body: dict[str, Any], param: str, code: str) -> None:
    err = error_of(await raw.post(P, json=body), 400)
    assert err["param"] == param
    assert err["code"] == code


async def test_wrong_types_on_nested_resources(raw: httpx.AsyncClient) -> None:
    pid = (await raw.post(P, json={"name": "t"})).json()["id"]
    sa_path = f"{P}/{pid}/service_accounts"
    error_of(await raw.post(sa_path, json={"name": "a", "create_service_account_only": "yes"}), 400)
    error_of(await raw.post(sa_path, json={"name": "a", "expires_in_seconds": "60"}), 400)
    error_of(await raw.post(sa_path, json={"name": "a", "expires_in_seconds": 0}), 400)
    error_of(await raw.post(sa_path, json={"name": ["a"]}), 400)
    sa = (await raw.post(sa_path, json={"name": "a"})).json()
    err = error_of(await raw.post(f"{sa_path}/{sa['id']}", json={"role": "admin"}), 400)
    assert err["code"] == "invalid_value"
    error_of(await raw.post(f"{sa_path}/{sa['id']}/api_keys", json={"scopes": "api.all.read"}), 400)
    key_path = f"{P}/{pid}/api_keys/{sa['api_key']['id']}"
    error_of(await raw.post(key_path, json={"scopes": [1, 2]}), 400)
    error_of(await raw.post(key_path, json={"expires_in_seconds": True}), 400)
    rl = f"{P}/{pid}/rate_limits/rl-gpt-4o-mini"
    error_of(await raw.post(rl, json={"max_requests_per_1_minute": "10"}), 400)
    error_of(await raw.post(rl, json={"max_requests_per_1_minute": -1}), 400)
    spend = f"{P}/{pid}/spend_limit"
    error_of(await raw.post(spend, json={"threshold_amount": "5", "currency": "USD", "interval": "month"}), 400)
    error_of(await raw.post(spend, json={"threshold_amount": 0, "currency": "USD", "interval": "month"}), 400)
    error_of(await raw.post(spend, json={"threshold_amount": 5, "currency": "EUR", "interval": "month"}), 400)
    error_of(await raw.post(spend, json={"threshold_amount": 5, "currency": "USD"}), 400)
    alerts = f"{P}/{pid}/spend_alerts"
    channel = {"type": "email", "recipients": "ops@example.com"}
    error_of(
        await raw.post(
            alerts,
            json={
                "threshold_amount": 1,
                "currency": "USD",
                "interval": "month",
                "notification_channel": channel,
            },
        ),
        400,
    )
    error_of(await raw.post(f"{P}/{pid}/model_permissions", json={"mode": "maybe", "model_ids": []}), 400)
    error_of(await raw.post(f"{P}/{pid}/users", json={"role": "member", "user_id": 7}), 400)


async def test_unknown_ids_are_404(raw: httpx.AsyncClient) -> None:
    pid = (await raw.post(P, json={"name": "t"})).json()["id"]
    for path in (
        f"{P}/proj_nope",
        f"{P}/proj_nope/service_accounts",
        f"{P}/{pid}/service_accounts/svc_acct_nope",
        f"{P}/{pid}/api_keys/key_nope",
        f"{P}/{pid}/users/user-nope",
        f"{P}/{pid}/spend_alerts/alert_nope",
        f"{P}/{pid}/spend_limit",
    ):
        err = error_of(await raw.get(path), 404)
        assert err["message"]
    error_of(await raw.delete(f"{P}/{pid}/service_accounts/svc_acct_nope"), 404)
    error_of(await raw.delete(f"{P}/{pid}/api_keys/key_nope"), 404)
    error_of(await raw.post(f"{P}/{pid}/rate_limits/rl-nope", json={"max_requests_per_1_minute": 1}), 404)


async def test_bad_query_parameters(raw: httpx.AsyncClient) -> None:
    for params in (
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"include_archived": "maybe"},
        {"after": "x"},
    ):
        error_of(await raw.get(P, params=params), 400)
    error_of(await raw.get("/organization/costs"), 400)
    error_of(await raw.get("/organization/costs", params={"start_time": "yesterday"}), 400)
    error_of(await raw.get("/organization/costs", params={"start_time": 0, "bucket_width": "1h"}), 400)
    error_of(await raw.get("/organization/costs", params={"start_time": 0, "group_by": "colour"}), 400)
    error_of(await raw.get("/organization/costs", params={"start_time": 0, "page": "page_garbage"}), 400)
    error_of(await raw.get("/organization/costs", params={"start_time": 10, "end_time": 5}), 400)


async def test_invalid_urls_and_methods(raw: httpx.AsyncClient) -> None:
    err = error_of(await raw.get("/organization/nothing"), 404)
    assert err["message"] == "Invalid URL (GET /v1/organization/nothing)"
    error_of(await raw.delete(P), 404)
    error_of(await raw.put(P, json={}), 404)


async def test_missing_and_wrong_admin_key(raw: httpx.AsyncClient) -> None:
    err = error_of(await raw.get(P, headers={"Authorization": ""}), 401)
    assert "didn't provide an API key" in err["message"]
    err = error_of(await raw.get(P, headers={"Authorization": "Bearer sk-admin-nope"}), 401)
    assert err["code"] == "invalid_api_key"


async def test_archived_project_refuses_every_change(raw: httpx.AsyncClient) -> None:
    pid = (await raw.post(P, json={"name": "t"})).json()["id"]
    sa = (await raw.post(f"{P}/{pid}/service_accounts", json={"name": "a"})).json()
    assert (await raw.post(f"{P}/{pid}/archive")).json()["status"] == "archived"
    for method, path, body in (
        ("POST", f"{P}/{pid}", {"name": "n"}),
        ("GET", f"{P}/{pid}/service_accounts", None),
        ("POST", f"{P}/{pid}/service_accounts", {"name": "b"}),
        ("DELETE", f"{P}/{pid}/service_accounts/{sa['id']}", None),
        ("POST", f"{P}/{pid}/rate_limits/rl-gpt-4o", {"max_requests_per_1_minute": 1}),
        ("POST", f"{P}/{pid}/spend_limit", {"threshold_amount": 5, "currency": "USD", "interval": "month"}),
        ("GET", f"{P}/{pid}/users", None),
    ):
        error_of(await raw.request(method, path, json=body), 400)


@pytest.mark.parametrize("style", ["single", "repeated", "brackets"])
async def test_query_arrays_in_all_encodings(
    raw: httpx.AsyncClient, control: httpx.AsyncClient, emu: EmulatorServer, style: str
) -> None:
    ids = [(await raw.post(P, json={"name": n})).json()["id"] for n in "abc"]
    for pid in ids:
        assert (await control.post("/_emulator/spend", json={"project_id": pid, "amount_usd": 1.0})).status_code == 200
    wanted = ids[:1] if style == "single" else ids[:2]

    def name(n: str) -> str:
        return f"{n}[]" if style == "brackets" else n

    params = [("start_time", str(emu.state.now() - 3600)), (name("group_by"), "project_id")]
    params += [(name("project_ids"), pid) for pid in wanted]
    r = await raw.get("/organization/costs", params=params)
    assert r.status_code == 200
    assert {row["project_id"] for b in r.json()["data"] for row in b["results"]} == set(wanted)
    r = await raw.get("/organization/audit_logs", params=[(name("project_ids"), pid) for pid in wanted])
    assert {e["project"]["id"] for e in r.json()["data"]} == set(wanted)


def test_the_spec_checker_itself_rejects_non_conforming_bodies(spec_checker: SpecChecker) -> None:
    """Guards the guard: a wrong body must be reported, or every other test here proves nothing."""
    template, ref = spec_checker.schema_ref("POST", "/organization/projects/proj_x/archive", 200)
    assert template == "/organization/projects/{project_id}/archive"
    assert spec_checker.errors(ref, {"id": "p", "object": "organization.project", "created_at": 1}) == []
    assert spec_checker.errors(ref, {"id": "p", "object": "project", "created_at": 1})
    assert spec_checker.errors(ref, {"id": "p", "object": "organization.project", "created_at": "today"})
    _t, ref = spec_checker.schema_ref("GET", "/organization/projects/proj_x/service_accounts", 200)
    assert spec_checker.errors(ref, {"object": "list", "data": [{"id": "s"}], "has_more": False})
    _t, ref = spec_checker.schema_ref("GET", "/organization/costs", 429)
    assert spec_checker.errors(ref, {"error": {"message": "m", "type": "t"}}), "param and code are required"
