"""Workload identity federation over HTTP: the Admin API for providers and federation rules
(``/v1/organization/workload_identity_providers``) and the token exchange at the host root
(``POST /oauth/token``, as ``auth.openai.com`` serves it).

The Admin API answers like the rest of the Admin API (the middleware authenticates with the admin
key; refusals use the ``{"error": {...}}`` envelope). The exchange needs no ``Authorization``
header and answers refusals OAuth-style, ``{"error": code, "error_description": text}``, which the
SDK raises as ``openai.OAuthError`` (400/401/403). The domain rules live in ``wif.py``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .context import CTX
from .wif import ISSUED_TOKEN_TYPE, FederationRule, OAuthFailure, Provider, WorkloadIdentityFederation
from .wire import Field, json_response, q_enum, q_limit, q_str, read_body

routes = web.RouteTableDef()
P = "/v1/organization/workload_identity_providers"
R = P + "/{provider_id}/federation_rules"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret

PROVIDER_CREATE = {
    "name": Field("str", required=True),
    "issuer": Field("str", required=True),
    "audience": Field("str", required=True),
    "type": Field("str", required=True, enum=("oidc",)),
    "description": Field("str", nullable=True),
    "enabled": Field("bool"),
    "verification": Field("object"),
    "attribute_transformations": Field("any"),
}
PROVIDER_UPDATE = {
    "name": Field("str"),
    "issuer": Field("str"),
    "audience": Field("str"),
    "description": Field("str", nullable=True),
    "enabled": Field("bool"),
    "verification": Field("object"),
    "attribute_transformations": Field("any"),
}
RULE_CREATE = {
    "attribute_matchers": Field("object", required=True),
    "project_id": Field("str", required=True),
    "service_account_id": Field("str", required=True),
    "name": Field("str", nullable=True),
    "description": Field("str", nullable=True),
    "enabled": Field("bool"),
    "permissions": Field("object"),
}
RULE_UPDATE = {
    "attribute_matchers": Field("object"),
    "enabled": Field("bool"),
    "permissions": Field("object"),
    "name": Field("str", nullable=True),
    "description": Field("str", nullable=True),
    # Immutable: accepted only unchanged (wif.update_rule refuses a different value).
    "project_id": Field("str"),
    "service_account_id": Field("str"),
}


def _wif(request: web.Request) -> WorkloadIdentityFederation:
    return request.app[CTX].state.wif


def render_provider(p: Provider) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "organization.workload_identity_provider",
        "type": p.type,
        "name": p.name,
        "description": p.description,
        "issuer": p.issuer,
        "audience": p.audience,
        "enabled": p.enabled,
        "attribute_transformations": [dict(t) for t in p.attribute_transformations],
        "verification": dict(p.verification),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def render_rule(r: FederationRule) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "organization.workload_identity_federation_rule",
        "workload_identity_provider_id": r.provider_id,
        "project_id": r.project_id,
        "service_account_id": r.service_account_id,
        "name": r.name,
        "description": r.description,
        "enabled": r.enabled,
        "attribute_matchers": dict(r.attribute_matchers),
        "permissions": r.permissions.to_json(),
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _page(request: web.Request, items: list[Any], render: Any) -> web.Response:
    """``after``/``limit`` (1 to 100, default 20)/``order`` (``asc`` default, creation order)."""
    state = request.app[CTX].state
    limit = q_limit(request, 20, 100)
    descending = q_enum(request, "order", ("asc", "desc"), "asc") == "desc"
    if descending:
        items = list(reversed(items))
    page = state.page(items, lambda i: i.id, after=q_str(request, "after"), descending=descending)
    data = [render(i) for i in page[:limit]]
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(page) > limit,
        }
    )


# ---------------------------------------------------------------- providers


@routes.post(P)
async def create_provider(request: web.Request) -> web.Response:
    body = await read_body(request, PROVIDER_CREATE)
    return json_response(render_provider(_wif(request).create_provider(body)))


@routes.get(P)
async def list_providers(request: web.Request) -> web.Response:
    return _page(request, _wif(request).list_providers(), render_provider)


@routes.get(P + "/{provider_id}")
async def retrieve_provider(request: web.Request) -> web.Response:
    return json_response(render_provider(_wif(request).get_provider(request.match_info["provider_id"])))


@routes.post(P + "/{provider_id}")
async def update_provider(request: web.Request) -> web.Response:
    body = await read_body(request, PROVIDER_UPDATE)
    return json_response(render_provider(_wif(request).update_provider(request.match_info["provider_id"], body)))


@routes.delete(P + "/{provider_id}")
async def delete_provider(request: web.Request) -> web.Response:
    provider = _wif(request).delete_provider(request.match_info["provider_id"])
    return json_response({"id": provider.id, "object": "organization.workload_identity_provider.deleted",
                          "deleted": True})  # fmt: skip


# ---------------------------------------------------------------- federation rules


@routes.post(R)
async def create_rule(request: web.Request) -> web.Response:
    body = await read_body(request, RULE_CREATE)
    return json_response(render_rule(_wif(request).create_rule(request.match_info["provider_id"], body)))


@routes.get(R)
async def list_rules(request: web.Request) -> web.Response:
    rules = _wif(request).list_rules(request.match_info["provider_id"], q_str(request, "service_account_id"))
    return _page(request, rules, render_rule)


@routes.get(R + "/{rule_id}")
async def retrieve_rule(request: web.Request) -> web.Response:
    rule = _wif(request).get_rule(request.match_info["provider_id"], request.match_info["rule_id"])
    return json_response(render_rule(rule))


@routes.post(R + "/{rule_id}")
async def update_rule(request: web.Request) -> web.Response:
    body = await read_body(request, RULE_UPDATE)
    rule = _wif(request).update_rule(request.match_info["provider_id"], request.match_info["rule_id"], body)
    return json_response(render_rule(rule))


@routes.delete(R + "/{rule_id}")
async def delete_rule(request: web.Request) -> web.Response:
    rule = _wif(request).delete_rule(request.match_info["provider_id"], request.match_info["rule_id"])
    return json_response({"id": rule.id, "object": "organization.workload_identity_federation_rule.deleted",
                          "deleted": True})  # fmt: skip


# ---------------------------------------------------------------- the token exchange


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _oauth_error(failure: OAuthFailure) -> web.Response:
    return json_response(failure.body(), failure.status, {"Cache-Control": "no-store"})


@routes.post(TOKEN_PATH)
async def token_exchange(request: web.Request) -> web.Response:
    """RFC 8693 token exchange with a JSON body (all five fields required)."""
    raw = await request.read()
    try:
        body = json.loads(raw, parse_constant=_reject_constant) if raw.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return _oauth_error(OAuthFailure(400, "invalid_request", "The request body must be a JSON object."))
    try:
        token, expires_in = _wif(request).exchange(body)
    except OAuthFailure as failure:
        return _oauth_error(failure)
    out: dict[str, Any] = {
        "access_token": token.value,
        "issued_token_type": ISSUED_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }
    if token.scopes:
        out["scope"] = " ".join(token.scopes)
    return json_response(out, headers={"Cache-Control": "no-store"})
