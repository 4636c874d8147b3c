"""Admin API routes (``/v1/organization/...``): parse input, call the domain model, render output.

Authentication and fault injection happen in the middleware (``app.py``); these handlers only see
requests made with the admin key. Every success is HTTP 200, creates included, as in the spec.
"""

from __future__ import annotations

from aiohttp import web

from . import render, reports
from .context import CTX
from .errors import ApiError, bad_request
from .state import (
    ORG_INVITE_ROLES,
    ORG_ROLES,
    PROJECT_MEMBER_ROLES,
    PROJECT_ROLES,
    RATE_LIMIT_FIELDS,
    SERVICE_TIER_DEFAULTS,
    EmulatorState,
    Role,
)
from .wire import Field, check_object, json_response, q_bool, q_enum, q_int, q_limit, q_list, q_str, read_body

routes = web.RouteTableDef()
P = "/v1/organization/projects"


def _state(request: web.Request) -> EmulatorState:
    return request.app[CTX].state


def _pid(request: web.Request) -> str:
    return request.match_info["project_id"]


# ---------------------------------------------------------------- projects


@routes.get(P)
async def list_projects(request: web.Request) -> web.Response:
    state = _state(request)
    limit = q_limit(request, 20, 100)
    include_archived = q_bool(request, "include_archived") or False
    items = state.page(state.list_projects(include_archived), lambda p: p.id, after=q_str(request, "after"))
    return json_response(render.cursor_list(items, render.project, limit=limit))


@routes.post(P)
async def create_project(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "name": Field("str", required=True),
            "residency": Field("str", nullable=True),
            "geography": Field("str", nullable=True),
            "external_key_id": Field("str", nullable=True),
        },
    )
    if body.get("residency") is not None and body.get("geography") is not None:
        raise bad_request("Do not provide both 'geography' and 'residency'.", param="geography")
    residency = body.get("residency") or body.get("geography")
    p = _state(request).create_project(body["name"], body.get("external_key_id"), residency)
    return json_response(render.project(p))


@routes.get(P + "/{project_id}")
async def retrieve_project(request: web.Request) -> web.Response:
    return json_response(render.project(_state(request).get_project(_pid(request))))


@routes.post(P + "/{project_id}")
async def modify_project(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "name": Field("str", nullable=True),
            "external_key_id": Field("str", nullable=True),
            "geography": Field("str", nullable=True),
        },
    )
    p = _state(request).update_project(_pid(request), body.get("name"), body.get("external_key_id"), body.keys())
    return json_response(render.project(p))


@routes.post(P + "/{project_id}/archive")
async def archive_project(request: web.Request) -> web.Response:
    await read_body(request, {})
    return json_response(render.project(_state(request).archive_project(_pid(request))))


# ---------------------------------------------------------------- service accounts


SA = P + "/{project_id}/service_accounts"


@routes.get(SA)
async def list_service_accounts(request: web.Request) -> web.Response:
    state = _state(request)
    limit = q_limit(request, 20, 100)
    items = state.page(state.list_service_accounts(_pid(request)), lambda s: s.id, after=q_str(request, "after"))
    return json_response(render.cursor_list(items, render.service_account, limit=limit))


@routes.post(SA)
async def create_service_account(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "name": Field("str", required=True),
            "create_service_account_only": Field("bool", nullable=True),
            "expires_in_seconds": Field("int", nullable=True),
        },
    )
    sa, key = _state(request).create_service_account(
        _pid(request),
        body["name"],
        only=bool(body.get("create_service_account_only")),
        expires_in_seconds=body.get("expires_in_seconds"),
    )
    return json_response(render.service_account_created(sa, key))


@routes.get(SA + "/{service_account_id}")
async def retrieve_service_account(request: web.Request) -> web.Response:
    sa = _state(request).get_service_account(_pid(request), request.match_info["service_account_id"])
    return json_response(render.service_account(sa))


@routes.post(SA + "/{service_account_id}")
async def update_service_account(request: web.Request) -> web.Response:
    body = await read_body(request, {"name": Field("str"), "role": Field("str", enum=("member", "owner"))})
    sa = _state(request).update_service_account(
        _pid(request), request.match_info["service_account_id"], body.get("name"), body.get("role")
    )
    return json_response(render.service_account(sa))


@routes.delete(SA + "/{service_account_id}")
async def delete_service_account(request: web.Request) -> web.Response:
    sa = _state(request).delete_service_account(_pid(request), request.match_info["service_account_id"])
    return json_response(render.deleted("organization.project.service_account.deleted", sa.id))


@routes.post(SA + "/{service_account_id}/api_keys")
async def create_service_account_key(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "name": Field("str"),
            "scopes": Field("str_list"),
            "expires_in_seconds": Field("int", nullable=True),
        },
    )
    key = _state(request).create_service_account_key(
        _pid(request),
        request.match_info["service_account_id"],
        body.get("name"),
        body.get("scopes"),
        body.get("expires_in_seconds"),
    )
    return json_response(render.new_key(key))


# ---------------------------------------------------------------- project API keys


KEYS = P + "/{project_id}/api_keys"


@routes.get(KEYS)
async def list_api_keys(request: web.Request) -> web.Response:
    state = _state(request)
    limit = q_limit(request, 20, 100)
    access = q_enum(request, "owner_project_access", ("active", "inactive", "any"))
    items = state.page(state.list_keys(_pid(request), access), lambda k: k.id, after=q_str(request, "after"))
    return json_response(render.cursor_list(items, lambda k: render.api_key(state, k), limit=limit))


@routes.get(KEYS + "/{api_key_id}")
async def retrieve_api_key(request: web.Request) -> web.Response:
    state = _state(request)
    return json_response(render.api_key(state, state.get_key(_pid(request), request.match_info["api_key_id"])))


@routes.post(KEYS + "/{api_key_id}")
async def update_api_key(request: web.Request) -> web.Response:
    body = await read_body(request, {"scopes": Field("str_list"), "expires_in_seconds": Field("int")})
    state = _state(request)
    key = state.update_key(
        _pid(request), request.match_info["api_key_id"], body.get("scopes"), body.get("expires_in_seconds")
    )
    return json_response(render.api_key(state, key))


@routes.delete(KEYS + "/{api_key_id}")
async def delete_api_key(request: web.Request) -> web.Response:
    key = _state(request).delete_key(_pid(request), request.match_info["api_key_id"])
    return json_response(render.deleted("organization.project.api_key.deleted", key.id))


# ---------------------------------------------------------------- rate limits


@routes.get(P + "/{project_id}/rate_limits")
async def list_rate_limits(request: web.Request) -> web.Response:
    state = _state(request)
    limit = q_limit(request, 100, 100)
    items = state.page(
        state.list_rate_limits(_pid(request)),
        lambda r: r.id,
        after=q_str(request, "after"),
        before=q_str(request, "before"),
    )
    return json_response(render.cursor_list(items, render.rate_limit, limit=limit))


@routes.post(P + "/{project_id}/rate_limits/{rate_limit_id}")
async def update_rate_limit(request: web.Request) -> web.Response:
    body = await read_body(request, {name: Field("int") for name in RATE_LIMIT_FIELDS})
    rl = _state(request).update_rate_limit(_pid(request), request.match_info["rate_limit_id"], body)
    return json_response(render.rate_limit(rl))


# ---------------------------------------------------------------- spend limit


SPEND_LIMIT_BODY = {
    "threshold_amount": Field("int", required=True),
    "currency": Field("str", required=True, enum=("USD",)),
    "interval": Field("str", required=True, enum=("month",)),
}


@routes.get(P + "/{project_id}/spend_limit")
async def get_spend_limit(request: web.Request) -> web.Response:
    limit, reached = _state(request).get_spend_limit(_pid(request))
    return json_response(render.spend_limit(limit, reached))


@routes.post(P + "/{project_id}/spend_limit")
async def set_spend_limit(request: web.Request) -> web.Response:
    body = await read_body(request, SPEND_LIMIT_BODY)
    limit, reached = _state(request).set_spend_limit(
        _pid(request), body["threshold_amount"], body["currency"], body["interval"]
    )
    return json_response(render.spend_limit(limit, reached))


@routes.delete(P + "/{project_id}/spend_limit")
async def delete_spend_limit(request: web.Request) -> web.Response:
    _state(request).delete_spend_limit(_pid(request))
    return json_response(render.deleted("project.spend_limit.deleted", None))


# ---------------------------------------------------------------- spend alerts (project and organization)


ALERT_BODY = {
    "threshold_amount": Field("int", required=True),
    "currency": Field("str", required=True, enum=("USD",)),
    "interval": Field("str", required=True, enum=("month",)),
    "notification_channel": Field("object", required=True),
}
CHANNEL_BODY = {
    "type": Field("str", required=True, enum=("email",)),
    "recipients": Field("str_list", required=True),
    "subject_prefix": Field("str", nullable=True),
}


async def _alert_body(request: web.Request) -> dict[str, object]:
    body = await read_body(request, ALERT_BODY)
    channel = check_object(body["notification_channel"], CHANNEL_BODY, prefix="notification_channel.")
    body["notification_channel"] = {
        "type": channel["type"],
        "recipients": list(channel["recipients"]),
        "subject_prefix": channel.get("subject_prefix"),
    }
    return body


def _alert_scope(request: web.Request) -> tuple[str | None, str]:
    pid = request.match_info.get("project_id")
    return pid, ("project" if pid else "organization")


async def list_spend_alerts(request: web.Request) -> web.Response:
    state = _state(request)
    pid, scope = _alert_scope(request)
    limit = q_limit(request, 20, 100, lo=0)
    order = q_enum(request, "order", ("asc", "desc"), "asc")
    alerts = state.list_spend_alerts(pid)
    descending = order == "desc"
    if descending:
        alerts.reverse()
    items = state.page(
        alerts,
        lambda a: a.id,
        after=q_str(request, "after"),
        before=q_str(request, "before"),
        descending=descending,
    )
    return json_response(render.cursor_list(items, lambda a: render.spend_alert(a, scope=scope), limit=limit))


async def create_spend_alert(request: web.Request) -> web.Response:
    pid, scope = _alert_scope(request)
    alert = _state(request).put_spend_alert(pid, None, await _alert_body(request))
    return json_response(render.spend_alert(alert, scope=scope))


async def retrieve_spend_alert(request: web.Request) -> web.Response:
    pid, scope = _alert_scope(request)
    alert = _state(request).get_spend_alert(pid, request.match_info["alert_id"])
    return json_response(render.spend_alert(alert, scope=scope))


async def update_spend_alert(request: web.Request) -> web.Response:
    pid, scope = _alert_scope(request)
    body = await _alert_body(request)
    alert = _state(request).put_spend_alert(pid, request.match_info["alert_id"], body)
    return json_response(render.spend_alert(alert, scope=scope))


async def delete_spend_alert(request: web.Request) -> web.Response:
    pid, scope = _alert_scope(request)
    alert = _state(request).delete_spend_alert(pid, request.match_info["alert_id"])
    return json_response(render.deleted(f"{scope}.spend_alert.deleted", alert.id))


for _base in (P + "/{project_id}/spend_alerts", "/v1/organization/spend_alerts"):
    routes.get(_base)(list_spend_alerts)
    routes.post(_base)(create_spend_alert)
    routes.get(_base + "/{alert_id}")(retrieve_spend_alert)
    routes.post(_base + "/{alert_id}")(update_spend_alert)
    routes.delete(_base + "/{alert_id}")(delete_spend_alert)


# ---------------------------------------------------------------- model permissions


@routes.get(P + "/{project_id}/model_permissions")
async def get_model_permissions(request: web.Request) -> web.Response:
    return json_response(render.model_permissions(_state(request).get_model_permissions(_pid(request))))


@routes.post(P + "/{project_id}/model_permissions")
async def set_model_permissions(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "mode": Field("str", required=True, enum=("allow_list", "deny_list")),
            "model_ids": Field("str_list", required=True),
        },
    )
    mp = _state(request).set_model_permissions(_pid(request), body["mode"], body["model_ids"])
    return json_response(render.model_permissions(mp))


@routes.delete(P + "/{project_id}/model_permissions")
async def delete_model_permissions(request: web.Request) -> web.Response:
    _state(request).delete_model_permissions(_pid(request))
    return json_response(render.deleted("project.model_permissions.deleted", None))


# ---------------------------------------------------------------- service tier settings (SDK 3.57)


@routes.get(P + "/{project_id}/service_tier_settings")
async def get_service_tier_settings(request: web.Request) -> web.Response:
    return json_response(render.service_tier_settings(_state(request).get_service_tiers(_pid(request))))


@routes.post(P + "/{project_id}/service_tier_settings")
async def update_service_tier_settings(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {"default": Field("str", enum=SERVICE_TIER_DEFAULTS), "enabled_tiers": Field("any")},
    )
    tiers = body.get("enabled_tiers")
    if tiers is not None and not (
        tiers == "all" or (isinstance(tiers, list) and all(isinstance(t, str) for t in tiers))
    ):
        raise bad_request("Invalid 'enabled_tiers': expected 'all' or an array of tiers.", param="enabled_tiers")
    st = _state(request).set_service_tiers(_pid(request), body.get("default"), tiers)
    return json_response(render.service_tier_settings(st))


# ---------------------------------------------------------------- invites


INVITES = "/v1/organization/invites"


@routes.get(INVITES)
async def list_invites(request: web.Request) -> web.Response:
    state = _state(request)
    limit = q_limit(request, 20, 100)
    items = state.page(state.list_invites(), lambda i: i.id, after=q_str(request, "after"))
    return json_response(render.cursor_list(items, lambda i: render.invite(state, i), limit=limit))


@routes.post(INVITES)
async def create_invite(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "email": Field("str", required=True),
            "role": Field("str", required=True, enum=ORG_INVITE_ROLES),
            "projects": Field("any"),
        },
    )
    raw = body.get("projects")
    projects: list[dict[str, str]] | None = None
    if raw is not None:
        if not isinstance(raw, list):
            raise bad_request("Invalid type for 'projects': expected an array of objects.", param="projects")
        projects = [check_object(item, PROJECT_GRANT, prefix=f"projects[{i}].") for i, item in enumerate(raw)]
    state = _state(request)
    return json_response(render.invite(state, state.create_invite(body["email"], body["role"], projects)))


PROJECT_GRANT = {"id": Field("str", required=True), "role": Field("str", required=True, enum=PROJECT_MEMBER_ROLES)}


@routes.get(INVITES + "/{invite_id}")
async def retrieve_invite(request: web.Request) -> web.Response:
    state = _state(request)
    return json_response(render.invite(state, state.get_invite(request.match_info["invite_id"])))


@routes.delete(INVITES + "/{invite_id}")
async def delete_invite(request: web.Request) -> web.Response:
    invite = _state(request).delete_invite(request.match_info["invite_id"])
    return json_response(render.deleted("organization.invite.deleted", invite.id))


# ---------------------------------------------------------------- project users and organization users


USERS = P + "/{project_id}/users"


@routes.get(USERS)
async def list_project_users(request: web.Request) -> web.Response:
    state = _state(request)
    limit = q_limit(request, 20, 100)
    items = state.page(state.list_project_users(_pid(request)), lambda u: u.user_id, after=q_str(request, "after"))
    return json_response(render.cursor_list(items, lambda u: render.project_user(state, u), limit=limit))


@routes.post(USERS)
async def add_project_user(request: web.Request) -> web.Response:
    body = await read_body(
        request,
        {
            "role": Field("str", required=True, enum=("owner", "member")),
            "user_id": Field("str", nullable=True),
            "email": Field("str", nullable=True),
        },
    )
    state = _state(request)
    pu = state.add_project_user(_pid(request), body.get("user_id"), body.get("email"), body["role"])
    return json_response(render.project_user(state, pu))


@routes.get(USERS + "/{user_id}")
async def retrieve_project_user(request: web.Request) -> web.Response:
    state = _state(request)
    return json_response(
        render.project_user(state, state.get_project_user(_pid(request), request.match_info["user_id"]))
    )


@routes.post(USERS + "/{user_id}")
async def update_project_user(request: web.Request) -> web.Response:
    body = await read_body(request, {"role": Field("str", required=True, enum=("owner", "member"))})
    state = _state(request)
    pu = state.update_project_user(_pid(request), request.match_info["user_id"], body["role"])
    return json_response(render.project_user(state, pu))


@routes.delete(USERS + "/{user_id}")
async def remove_project_user(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"]
    _state(request).remove_project_user(_pid(request), user_id)
    return json_response(render.deleted("organization.project.user.deleted", user_id))


@routes.get("/v1/organization/users")
async def list_org_users(request: web.Request) -> web.Response:
    state = _state(request)
    limit = q_limit(request, 20, 100)
    emails = {e.lower() for e in q_list(request, "emails")}
    users = [u for u in state.org_users.values() if not emails or u.email.lower() in emails]
    items = state.page(users, lambda u: u.id, after=q_str(request, "after"))
    return json_response(render.cursor_list(items, render.org_user, limit=limit))


@routes.get("/v1/organization/users/{user_id}")
async def retrieve_org_user(request: web.Request) -> web.Response:
    return json_response(render.org_user(_state(request).get_org_user(request.match_info["user_id"])))


# ---------------------------------------------------------------- predefined roles ("next"-cursor lists)


def _roles_page(request: web.Request, roles: tuple[Role, ...]) -> web.Response:
    limit = q_limit(request, 1000, 1000)
    order = q_enum(request, "order", ("asc", "desc"), "asc")
    items = list(roles) if order == "asc" else list(reversed(roles))
    after = q_str(request, "after")
    if after is not None:
        ids = [r.id for r in items]
        if after not in ids:
            raise bad_request(f"Invalid 'after': no role with id '{after}'.", param="after")
        items = items[ids.index(after) + 1 :]
    return json_response(render.next_list(items, render.role, limit=limit))


@routes.get("/v1/organization/roles")
async def list_org_roles(request: web.Request) -> web.Response:
    return _roles_page(request, ORG_ROLES)


@routes.get("/v1/projects/{project_id}/roles")
async def list_project_roles(request: web.Request) -> web.Response:
    _state(request).get_project(_pid(request))
    return _roles_page(request, PROJECT_ROLES)


# ---------------------------------------------------------------- costs, usage, audit logs


def _bucket_query(
    request: web.Request, width_name: str | None, default_limit: int, max_limit: int
) -> reports.BucketQuery:
    start = q_int(request, "start_time", None, 0)
    if start is None:
        raise ApiError(
            400,
            "Missing required parameter: 'start_time'.",
            param="start_time",
            code="missing_required_parameter",
        )
    return reports.BucketQuery(
        start_time=start,
        end_time=q_int(request, "end_time", None, 0),
        width=reports.BUCKET_SECONDS[width_name or "1d"],
        limit=q_limit(request, default_limit, max_limit),
        page=q_str(request, "page"),
    )


def _width(request: web.Request, allowed: tuple[str, ...]) -> str:
    width = q_enum(request, "bucket_width", allowed, "1d")
    assert width is not None
    return width


@routes.get("/v1/organization/costs")
async def costs(request: web.Request) -> web.Response:
    width = _width(request, ("1d",))
    q = _bucket_query(request, width, *reports.COSTS_LIMITS)
    body = reports.costs(
        _state(request),
        q,
        group_by=q_list(request, "group_by", ("project_id", "line_item", "api_key_id", "user_id", "api_source")),
        project_ids=q_list(request, "project_ids"),
        api_key_ids=q_list(request, "api_key_ids"),
        line_items=q_list(request, "line_items"),
    )
    return json_response(body)


@routes.get("/v1/organization/usage/completions")
async def usage_completions(request: web.Request) -> web.Response:
    width = _width(request, ("1m", "1h", "1d"))
    q = _bucket_query(request, width, *reports.USAGE_LIMITS[width])
    body = reports.completions(
        _state(request),
        q,
        group_by=q_list(request, "group_by", (*reports.COMPLETIONS_GROUPS, "api_source")),
        filters={name: q_list(request, name) for name in ("project_ids", "user_ids", "api_key_ids", "models")},
        batch=q_bool(request, "batch"),
    )
    return json_response(body)


_OTHER_USAGE = (
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
)


async def usage_other(request: web.Request) -> web.Response:
    width = _width(request, ("1m", "1h", "1d"))
    q = _bucket_query(request, width, *reports.USAGE_LIMITS[width])
    return json_response(reports.empty_usage(_state(request), q))


for _name in _OTHER_USAGE:
    routes.get(f"/v1/organization/usage/{_name}")(usage_other)


@routes.get("/v1/organization/audit_logs")
async def audit_logs(request: web.Request) -> web.Response:
    bounds: dict[str, int] = {}
    for op in ("gt", "gte", "lt", "lte"):
        value = q_int(request, f"effective_at[{op}]", None)
        if value is not None:
            bounds[op] = value
    body = reports.audit_logs(
        _state(request),
        effective_at=bounds,
        project_ids=q_list(request, "project_ids"),
        event_types=q_list(request, "event_types"),
        actor_ids=q_list(request, "actor_ids"),
        actor_emails=q_list(request, "actor_emails"),
        resource_ids=q_list(request, "resource_ids"),
        limit=q_limit(request, 20, 100),
        after=q_str(request, "after"),
        before=q_str(request, "before"),
    )
    return json_response(body)
