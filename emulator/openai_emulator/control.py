"""Control endpoints, outside ``/v1``, for tests and demos. JSON in, JSON out; no authentication
(the emulator is a local test double; bind it to loopback).

``GET  /_emulator/health``
    ``{"ok": true}``.
``GET  /_emulator/state``
    A dump for assertions. Secrets appear only redacted::

        {"now": int, "org_id": str, "admin_key": {"id": str, "redacted_value": str},
         "options": {...},
         "projects": [{"id", "name", "status", "is_default", "live_service_accounts": int,
                       "live_api_keys": int, "month_to_date_usd": float,
                       "spend_limit": {"threshold_amount", "currency", "interval", "enforcing"} | null,
                       "service_accounts": [{"id", "name", "role", "created_at",
                                             "api_keys": [{"id", "name", "redacted_value", "scopes",
                                                           "created_at", "expires_at", "last_used_at"}]}],
                       "user_keys": [{...same key fields..., "owner_id"}],
                       "rate_limits": [{"id", "model", "max_requests_per_1_minute", ...}],
                       "users": [<organization.project.user>...],
                       "model_permissions": <project.model_permissions> | null,
                       "service_tier_settings": <project.service_tier_settings>}],
         "invites": [<organization.invite>...],
         "calls": [{"kind": "admin"|"data"|"oauth", "method", "route", "status", "count"}],
         "faults": [{...rule..., "matched", "injected"}],
         "totals": {"projects", "service_accounts", "api_keys", "cost_records", "usage_records",
                    "audit_events"},
         "workload_identity": {"providers": [{"id", "name", "issuer", "audience", "enabled",
                                              "verification_type", "kids": [str],
                                              "rules": [{"id", "project_id", "service_account_id",
                                                         "enabled", "attribute_matchers",
                                                         "permissions"}]}],
                               "live_access_tokens": int}}

    Access tokens appear only as a count, never by value.

``GET  /_emulator/calls`` / ``DELETE /_emulator/calls``
    ``{"calls": [...as above...]}``; DELETE resets the counters. Optional query filters
    ``kind``, ``method``, ``route`` (a route template such as
    ``/v1/organization/projects/{project_id}/service_accounts``) and ``status``.
``GET|POST|DELETE /_emulator/faults``, ``DELETE /_emulator/faults/{id}``
    POST adds a rule and returns it with its ``id``::

        {"route": "/v1/organization/projects*",   # glob on the route template or the path
         "method": "POST",                         # or "*"
         "latency_ms": 50,                         # fixed latency, or:
         "latency": {"distribution": "fixed"|"uniform"|"normal"|"exponential",
                     "ms", "min_ms", "max_ms", "mean_ms", "stddev_ms"},
         "error_rate": 0.2, "error_status": 503,   # 5xx with probability error_rate
         "rate_limit_burst": 3, "retry_after": 2,  # the next 3 matches get 429 + Retry-After: 2
         "drop_rate": 0.1,                         # close the connection without answering
         "times": 5,                               # expire after 5 matching requests (null: never)
         "seed": 42}                               # deterministic random choices

    GET lists ``{"faults": [...]}`` with ``matched``/``injected`` counters; DELETE clears them all.
``GET|POST /_emulator/clock``
    POST ``{"advance_seconds": 3600}`` or ``{"set": <unix time>}`` or
    ``{"to": "next_day"|"next_month"}`` (jumps to one second after the next UTC boundary).
    Answers ``{"now": int, "offset": float}``.
``GET /_emulator/spend``
    The ledger of this month (UTC, emulator clock) so far, unrounded, deleted keys included:
    ``{"period_start": int, "projects": {project_id: usd}, "api_keys": {api_key_id: usd}}``.
``POST /_emulator/spend``
    Records spend as if the data plane had been used:
    ``{"project_id", "amount_usd": float, "api_key_id"?: str, "line_item"?: str,
    "day"?: "YYYY-MM-DD" | <unix time>}`` (default: now). Answers
    ``{"recorded": {...}, "month_to_date_usd": float}``.
``POST /_emulator/reset``
    Forget everything (projects, keys, spend, faults, counters, clock offset); the admin key stays.
``GET|POST /_emulator/config``
    ``{"reject_service_account_key_delete": bool, "scope_error_status": 401|403,
    "invite_ttl_seconds": int, "admin_requests_per_second": int|null}`` (how long new invites stay
    pending, default 7 days; the organisation's Admin API rate limit, see ``admin_limit``); the
    answer also carries ``admin_requests_refused``.
``POST /_emulator/users``
    Add an organisation user (project users must exist in the organisation):
    ``{"email", "name"?, "role"?: "owner"|"reader"}`` → the ``organization.user`` object.
``POST /_emulator/invites/{invite_id}/accept``
    What the invitee accepting the email does: ``{"name"?: str}`` → ``{"invite": <organization.invite>,
    "user": <organization.user>}``. The user joins the organisation with the invite's role and each
    of its ``projects`` with the role given there. 400 unless the invite is pending (accepted or
    expired on the emulator clock: ``POST /_emulator/clock`` lets an invite expire).
``POST /_emulator/invites/accept``
    The same by address: ``{"email", "name"?}`` accepts the pending invite of that email (404 if none).
``GET /_emulator/invites``
    ``{"invites": [<organization.invite>...]}`` (every invite, any status).
``POST /_emulator/projects/{project_id}/user_keys``
    Mint a user-owned ``sk-proj-`` key, which the Admin API itself cannot do:
    ``{"user_id"?: str (default: the org owner), "name"?: str, "scopes"?: [str]}`` →
    ``{"id", "value", "redacted_value", "project_id"}``.
"""

from __future__ import annotations

import calendar
import math
from datetime import date
from typing import Any

from aiohttp import web

from . import render
from .clock import DAY, day_start, next_month_start
from .context import CTX, EmulatorContext
from .errors import ApiError, bad_request, invalid_type, not_found
from .keys import redact
from .state import CostRecord, EmulatorState
from .wire import Field, json_body, json_response, read_body

routes = web.RouteTableDef()
C = "/_emulator"
MAX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z


def _ctx(request: web.Request) -> EmulatorContext:
    return request.app[CTX]


def calls_json(ctx: EmulatorContext) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "method": method, "route": route, "status": status, "count": count}
        for (kind, method, route, status), count in sorted(ctx.calls.items())
    ]


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "redacted_value": key.redacted_value,
        "scopes": list(key.scopes),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
    }


def dump(ctx: EmulatorContext) -> dict[str, Any]:
    state = ctx.state
    counts = state.counts()
    projects = []
    for p in state.projects.values():
        keys_by_owner: dict[str, list[dict[str, Any]]] = {}
        user_keys = []
        for key in p.api_keys.values():
            if key.owner_type == "service_account":
                keys_by_owner.setdefault(key.owner_id, []).append(_key_json(key))
            else:
                user_keys.append(_key_json(key) | {"owner_id": key.owner_id})
        projects.append(
            {
                "id": p.id,
                "name": p.name,
                "status": p.status,
                "is_default": p.is_default,
                "live_service_accounts": counts[p.id]["service_accounts"],
                "live_api_keys": counts[p.id]["api_keys"],
                "month_to_date_usd": round(state.month_to_date_usd(p.id), 10),
                "spend_limit": None
                if p.spend_limit is None
                else {
                    "threshold_amount": p.spend_limit.threshold_amount,
                    "currency": p.spend_limit.currency,
                    "interval": p.spend_limit.interval,
                    "enforcing": state.spend_limit_reached(p),
                },
                "service_accounts": [
                    render.service_account(sa) | {"api_keys": keys_by_owner.get(sa.id, [])}
                    for sa in p.service_accounts.values()
                ],
                "user_keys": user_keys,
                "rate_limits": [render.rate_limit(rl) for rl in p.rate_limits.values()],
                "users": [render.project_user(state, pu) for pu in p.users.values()],
                "model_permissions": None
                if p.model_permissions is None
                else render.model_permissions(p.model_permissions),
                "service_tier_settings": render.service_tier_settings(p.service_tiers),
            }
        )
    return {
        "now": state.now(),
        "org_id": state.org_id,
        "admin_key": {"id": state.admin_key_id, "redacted_value": redact(state.admin_key)},
        "options": _options_json(ctx),
        "projects": projects,
        "invites": [render.invite(state, i) for i in state.list_invites()],
        "calls": calls_json(ctx),
        "faults": [r.to_json() for r in ctx.faults.rules.values()],
        "totals": {
            "projects": len(state.projects),
            "service_accounts": sum(c["service_accounts"] for c in counts.values()),
            "api_keys": sum(c["api_keys"] for c in counts.values()),
            "cost_records": len(state.costs),
            "usage_records": len(state.usage),
            "audit_events": len(state.audit),
        },
        "workload_identity": _wif_json(state),
    }


def _wif_json(state: EmulatorState) -> dict[str, Any]:
    wif = state.wif
    providers = []
    for p in wif.providers.values():
        keys = p.verification.get("jwks", {}).get("keys", []) if p.verification.get("type") == "uploaded_jwks" else []
        providers.append(
            {
                "id": p.id,
                "name": p.name,
                "issuer": p.issuer,
                "audience": p.audience,
                "enabled": p.enabled,
                "verification_type": p.verification.get("type"),
                "kids": [k.get("kid") for k in keys],
                "rules": [
                    {
                        "id": r.id,
                        "project_id": r.project_id,
                        "service_account_id": r.service_account_id,
                        "enabled": r.enabled,
                        "attribute_matchers": dict(r.attribute_matchers),
                        "permissions": r.permissions.to_json(),
                    }
                    for r in wif.rules.values()
                    if r.provider_id == p.id
                ],
            }
        )
    live = sum(1 for v in wif.tokens if wif.authenticate(v) is not None)
    return {"providers": providers, "live_access_tokens": live}


@routes.get(C + "/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"ok": True})


@routes.get(C + "/state")
async def state_dump(request: web.Request) -> web.Response:
    return json_response(dump(_ctx(request)))


@routes.get(C + "/calls")
async def get_calls(request: web.Request) -> web.Response:
    rows = calls_json(_ctx(request))
    for name in ("kind", "method", "route", "status"):
        wanted = request.query.get(name)
        if wanted is not None:
            rows = [r for r in rows if str(r[name]) == wanted]
    return json_response({"calls": rows})


@routes.delete(C + "/calls")
async def reset_calls(request: web.Request) -> web.Response:
    _ctx(request).calls.clear()
    return json_response({"calls": []})


@routes.get(C + "/faults")
async def list_faults(request: web.Request) -> web.Response:
    return json_response({"faults": [r.to_json() for r in _ctx(request).faults.rules.values()]})


@routes.post(C + "/faults")
async def add_fault(request: web.Request) -> web.Response:
    spec = await json_body(request)
    if not isinstance(spec, dict):
        raise bad_request("Expected a JSON object describing one fault rule.")
    return json_response(_ctx(request).faults.add(spec).to_json())


@routes.delete(C + "/faults")
async def clear_faults(request: web.Request) -> web.Response:
    _ctx(request).faults.clear()
    return json_response({"faults": []})


@routes.delete(C + "/faults/{fault_id}")
async def delete_fault(request: web.Request) -> web.Response:
    rules = _ctx(request).faults.rules
    fault_id = request.match_info["fault_id"]
    if rules.pop(fault_id, None) is None:
        raise not_found("fault", fault_id)
    return json_response({"id": fault_id, "deleted": True})


def _clock_json(ctx: EmulatorContext) -> dict[str, Any]:
    return {"now": ctx.clock.now_int(), "offset": ctx.clock.offset}


@routes.get(C + "/clock")
async def get_clock(request: web.Request) -> web.Response:
    return json_response(_clock_json(_ctx(request)))


@routes.post(C + "/clock")
async def move_clock(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    body = await read_body(
        request,
        {
            "advance_seconds": Field("any"),
            "set": Field("any"),
            "to": Field("str", enum=("next_day", "next_month")),
        },
    )
    if len(body) != 1:
        raise bad_request("Give exactly one of 'advance_seconds', 'set' or 'to'.")
    if "advance_seconds" in body:
        seconds = _number(body["advance_seconds"], "advance_seconds")
        _timestamp(ctx.clock.now() + seconds, "advance_seconds")
        ctx.clock.advance(seconds)
    elif "set" in body:
        ctx.clock.set(_timestamp(_number(body["set"], "set"), "set"))
    elif body["to"] == "next_day":
        ctx.clock.set(day_start(ctx.clock.now()) + DAY + 1)
    else:
        ctx.clock.set(next_month_start(ctx.clock.now()) + 1)
    return json_response(_clock_json(ctx))


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(name, "a number", value)
    if not math.isfinite(value) or abs(value) > MAX_TIME:
        raise bad_request(f"Invalid '{name}': out of range.", param=name)
    return float(value)


def _timestamp(value: float, name: str) -> float:
    """A Unix time the calendar helpers can handle (between 1970 and 9999)."""
    if not 0 <= value <= MAX_TIME:
        raise bad_request(f"Invalid '{name}': the clock must stay between 1970 and 9999.", param=name)
    return value


@routes.get(C + "/spend")
async def get_spend(request: web.Request) -> web.Response:
    first, by_project, by_key = _ctx(request).state.ledger()
    return json_response({"period_start": first, "projects": by_project, "api_keys": by_key})


@routes.post(C + "/spend")
async def add_spend(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    state = ctx.state
    body = await read_body(
        request,
        {
            "project_id": Field("str", required=True),
            "amount_usd": Field("any", required=True),
            "api_key_id": Field("str", nullable=True),
            "line_item": Field("str", nullable=True),
            "day": Field("any", nullable=True),
        },
    )
    amount = _number(body["amount_usd"], "amount_usd")
    p = state.get_project(body["project_id"])
    day = body.get("day")
    if day is None:
        ts = state.now()
    elif isinstance(day, str):
        try:
            d = date.fromisoformat(day)
        except ValueError:
            raise bad_request("Invalid 'day': expected YYYY-MM-DD.", param="day") from None
        ts = calendar.timegm((d.year, d.month, d.day, 12, 0, 0))
    else:
        ts = int(_timestamp(_number(day, "day"), "day"))
    record = CostRecord(
        ts=ts,
        project_id=p.id,
        api_key_id=body.get("api_key_id"),
        line_item=body.get("line_item") or "emulator, adjustment",
        amount_usd=amount,
    )
    state.add_cost(record)
    return json_response(
        {
            "recorded": {
                "ts": record.ts,
                "project_id": record.project_id,
                "api_key_id": record.api_key_id,
                "line_item": record.line_item,
                "amount_usd": record.amount_usd,
            },
            "month_to_date_usd": round(state.month_to_date_usd(p.id), 10),
        }
    )


@routes.post(C + "/reset")
async def reset(request: web.Request) -> web.Response:
    _ctx(request).reset()
    return json_response({"ok": True})


def _options_json(ctx: EmulatorContext) -> dict[str, Any]:
    state = ctx.state
    return {
        "reject_service_account_key_delete": state.options.reject_service_account_key_delete,
        "scope_error_status": state.options.scope_error_status,
        "invite_ttl_seconds": state.options.invite_ttl_seconds,
        "admin_requests_per_second": ctx.admin_limit.per_second,
        "admin_requests_refused": ctx.admin_limit.refused,
    }


@routes.get(C + "/config")
async def get_config(request: web.Request) -> web.Response:
    return json_response(_options_json(_ctx(request)))


@routes.post(C + "/config")
async def set_config(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    state = ctx.state
    body = await read_body(
        request,
        {
            "reject_service_account_key_delete": Field("bool"),
            "scope_error_status": Field("int"),
            "invite_ttl_seconds": Field("int"),
            "admin_requests_per_second": Field("int", nullable=True),
        },
    )
    if "invite_ttl_seconds" in body:
        if body["invite_ttl_seconds"] < 1:
            raise bad_request("'invite_ttl_seconds' must be at least 1.", param="invite_ttl_seconds")
        state.options.invite_ttl_seconds = body["invite_ttl_seconds"]
    limit = body.get("admin_requests_per_second")
    if limit is not None and not 1 <= limit <= 100_000:
        raise bad_request("'admin_requests_per_second' must be between 1 and 100000, or null.",
                          param="admin_requests_per_second")
    if "scope_error_status" in body:
        if body["scope_error_status"] not in (401, 403):
            raise bad_request("'scope_error_status' must be 401 or 403.", param="scope_error_status")
        state.options.scope_error_status = body["scope_error_status"]
    if "reject_service_account_key_delete" in body:
        state.options.reject_service_account_key_delete = body["reject_service_account_key_delete"]
    if "admin_requests_per_second" in body:
        ctx.admin_limit.set(limit)
    return json_response(_options_json(ctx))


@routes.post(C + "/users")
async def add_user(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "email": Field("str", required=True),
            "name": Field("str"),
            "role": Field("str", enum=("owner", "reader")),
        },
    )
    user = _ctx(request).state.add_org_user(
        body["email"], body.get("name") or body["email"], body.get("role") or "reader"
    )
    return json_response(render.org_user(user))


@routes.post(C + "/invites/accept")
async def accept_invite_by_email(request: web.Request) -> web.Response:
    state = _ctx(request).state
    body = await read_body(request, {"email": Field("str", required=True), "name": Field("str")})
    now, email = state.now(), body["email"].lower()
    pending = [i for i in state.list_invites() if i.email.lower() == email and i.status(now) == "pending"]
    if not pending:
        raise ApiError(404, f"No pending invite for '{body['email']}'.", param="email", code="not_found")
    user = state.accept_invite(pending[-1].id, body.get("name"))
    return json_response({"invite": render.invite(state, pending[-1]), "user": render.org_user(user)})


@routes.post(C + "/invites/{invite_id}/accept")
async def accept_invite(request: web.Request) -> web.Response:
    state = _ctx(request).state
    body = await read_body(request, {"name": Field("str")})
    invite_id = request.match_info["invite_id"]
    user = state.accept_invite(invite_id, body.get("name"))
    return json_response({"invite": render.invite(state, state.get_invite(invite_id)), "user": render.org_user(user)})


@routes.get(C + "/invites")
async def list_invites(request: web.Request) -> web.Response:
    state = _ctx(request).state
    return json_response({"invites": [render.invite(state, i) for i in state.list_invites()]})


@routes.post(C + "/projects/{project_id}/user_keys")
async def mint_user_key(request: web.Request) -> web.Response:
    state = _ctx(request).state
    body = await read_body(request, {"user_id": Field("str"), "name": Field("str"), "scopes": Field("str_list")})
    key = state.create_user_key(
        request.match_info["project_id"],
        body.get("user_id") or state.owner.id,
        body.get("name") or "User Key",
        body.get("scopes") or [],
    )
    return json_response(
        {"id": key.id, "value": key.value, "redacted_value": key.redacted_value, "project_id": key.project_id}
    )
