"""Wire shapes: turn domain objects into the JSON bodies of the official spec.

Kept apart from ``state.py`` so the domain model does not carry presentation rules, and from the
routes so every endpoint that returns, say, a project returns exactly the same shape. The field
sets follow the spec schemas and the newest SDK types (``openai.types.admin.organization``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .state import (
    RATE_LIMIT_FIELDS,
    ApiKey,
    AuditEvent,
    EmulatorState,
    Invite,
    ModelPermissions,
    OrgUser,
    Project,
    ProjectUser,
    RateLimit,
    Role,
    ServiceAccount,
    ServiceTierSettings,
    SpendAlert,
    SpendLimit,
)

T = TypeVar("T")


def cursor_list(items: Sequence[T], render: Callable[[T], dict[str, Any]], *, limit: int) -> dict[str, Any]:
    """The classic list envelope. ``items`` are the candidates after the cursor; ``limit`` cuts them.

    ``first_id``/``last_id`` are always present (``null`` when empty) because the SDK pages with
    ``after=<last_id>`` and some list schemas require them.
    """
    page = [render(i) for i in items[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def next_list(items: Sequence[T], render: Callable[[T], dict[str, Any]], *, limit: int) -> dict[str, Any]:
    """The "next"-cursor list envelope (roles, groups): the client sends ``after=<next>``."""
    page = [render(i) for i in items[:limit]]
    more = len(items) > limit
    return {"object": "list", "data": page, "has_more": more, "next": page[-1]["id"] if more and page else None}


def role(r: Role) -> dict[str, Any]:
    return {
        "object": "role",
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "permissions": list(r.permissions),
        "resource_type": r.resource_type,
        "predefined_role": True,
    }


def project(p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "organization.project",
        "name": p.name,
        "created_at": p.created_at,
        "archived_at": p.archived_at,
        "status": p.status,
        "external_key_id": p.external_key_id,
        "residency": p.residency,
    }


def service_account(sa: ServiceAccount) -> dict[str, Any]:
    return {
        "object": "organization.project.service_account",
        "id": sa.id,
        "name": sa.name,
        "role": sa.role,
        "created_at": sa.created_at,
    }


def new_key(key: ApiKey) -> dict[str, Any]:
    """The one response that carries a key's secret value."""
    return {
        "object": "organization.project.service_account.api_key",
        "value": key.value,
        "name": key.name,
        "created_at": key.created_at,
        "id": key.id,
        "expires_at": key.expires_at,
    }


def service_account_created(sa: ServiceAccount, key: ApiKey | None) -> dict[str, Any]:
    return service_account(sa) | {"api_key": new_key(key) if key else None}


def api_key(state: EmulatorState, key: ApiKey) -> dict[str, Any]:
    p = state.projects[key.project_id]
    owner: dict[str, Any] = {"type": key.owner_type}
    if key.owner_type == "service_account":
        sa = p.service_accounts.get(key.owner_id)
        if sa is not None:
            owner["service_account"] = {
                "id": sa.id,
                "name": sa.name,
                "created_at": sa.created_at,
                "role": sa.role,
            }
    else:
        user = state.org_users.get(key.owner_id)
        pu = p.users.get(key.owner_id)
        if user is not None:
            owner["user"] = {
                "id": user.id,
                "email": user.email,
                "name": user.name,
                "created_at": user.added_at,
                "role": pu.role if pu else "member",
            }
    return {
        "object": "organization.project.api_key",
        "redacted_value": key.redacted_value,
        "name": key.name,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "expires_at": key.expires_at,
        "id": key.id,
        "owner_project_access": "active" if state.key_is_active(key) else "inactive",
        "owner": owner,
    }


def rate_limit(rl: RateLimit) -> dict[str, Any]:
    out: dict[str, Any] = {"object": "project.rate_limit", "id": rl.id, "model": rl.model}
    for name in RATE_LIMIT_FIELDS:
        value = getattr(rl, name)
        if value is not None:  # the optional limits are "only present for relevant models"
            out[name] = value
    return out


def spend_limit(limit: SpendLimit, reached: bool, *, scope: str = "project") -> dict[str, Any]:
    return {
        "object": f"{scope}.spend_limit",
        "threshold_amount": limit.threshold_amount,
        "currency": limit.currency,
        "interval": limit.interval,
        "enforcement": {"status": "enforcing" if reached else "inactive"},
    }


def spend_alert(alert: SpendAlert, *, scope: str) -> dict[str, Any]:
    return {
        "id": alert.id,
        "object": f"{scope}.spend_alert",
        "threshold_amount": alert.threshold_amount,
        "currency": alert.currency,
        "interval": alert.interval,
        "notification_channel": alert.notification_channel,
    }


def model_permissions(mp: ModelPermissions) -> dict[str, Any]:
    return {"object": "project.model_permissions", "mode": mp.mode, "model_ids": list(mp.model_ids)}


def service_tier_settings(st: ServiceTierSettings) -> dict[str, Any]:
    tiers = st.enabled_tiers if isinstance(st.enabled_tiers, str) else list(st.enabled_tiers)
    return {"object": "project.service_tier_settings", "default": st.default, "enabled_tiers": tiers}


def invite(state: EmulatorState, inv: Invite) -> dict[str, Any]:
    """``organization.invite`` (SDK 3.57 ``Invite``): status from the emulator clock."""
    return {
        "object": "organization.invite",
        "id": inv.id,
        "email": inv.email,
        "role": inv.role,
        "status": inv.status(state.now()),
        "created_at": inv.created_at,
        "expires_at": inv.expires_at,
        "accepted_at": inv.accepted_at,
        "projects": [dict(p) for p in inv.projects],
    }


def project_user(state: EmulatorState, pu: ProjectUser) -> dict[str, Any]:
    user = state.org_users.get(pu.user_id)
    return {
        "object": "organization.project.user",
        "id": pu.user_id,
        "name": user.name if user else None,
        "email": user.email if user else None,
        "role": pu.role,
        "added_at": pu.added_at,
    }


def org_user(user: OrgUser) -> dict[str, Any]:
    return {
        "object": "organization.user",
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "added_at": user.added_at,
    }


def deleted(object_: str, ident: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"object": object_, "deleted": True}
    if ident is not None:
        out["id"] = ident
    return out


def audit_event(state: EmulatorState, ev: AuditEvent) -> dict[str, Any]:
    """An audit entry; Admin-API actions are attributed to the admin key and its owner."""
    out: dict[str, Any] = {
        "id": ev.id,
        "type": ev.type,
        "effective_at": ev.effective_at,
        "actor": {
            "type": "api_key",
            "api_key": {
                "id": state.admin_key_id,
                "type": "user",
                "user": {"id": state.owner.id, "email": state.owner.email},
            },
        },
        ev.type: ev.details,
    }
    if ev.project_id is not None:
        out["project"] = {"id": ev.project_id, "name": ev.project_name}
    return out
