"""The emulated organisation: plain dataclasses and the rules of the Admin API and data plane.

Nothing here knows about HTTP. Every operation validates its domain rules (archived projects refuse
changes, users must belong to the organisation, expired keys cannot be updated, …) and raises
:class:`~openai_emulator.errors.ApiError` with the status the real API uses, so the HTTP
layer only parses input and renders output. Time always comes from the injected
:class:`~openai_emulator.clock.Clock`, so tests can cross day and month boundaries.

Ordering: every object gets a monotonically increasing sequence number when it is created, and
lists are returned in creation order. ``after=<id>`` cursors compare sequence numbers, and the
sequence map keeps the numbers of deleted objects, so paging stays correct while a client deletes
what it has just read (the operator's inventory does exactly that).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

from .clock import DAY, Clock, day_start, month_start
from .errors import ApiError, bad_request, not_found
from .keys import mint_secret, new_id, redact
from .pricing import MODELS, line_item, token_cost
from .wif import WorkloadIdentityFederation

OwnerType = Literal["service_account", "user"]
DEFAULT_KEY_NAME = "Secret Key"
RESIDENCIES = frozenset(
    {
        "GLOBAL",
        "US_STORAGE_PROCESSING",
        "EU_STORAGE_PROCESSING",
        "JP_STORAGE",
        "KR_STORAGE",
        "CA_STORAGE",
        "SG_STORAGE",
        "IN_STORAGE",
        "AU_STORAGE",
        "GB_STORAGE",
        "AE_STORAGE",
        "AE_STORAGE_PROCESSING",
    }
)
#: Scopes that allow ``POST /v1/chat/completions``. An empty scope list means "all permissions".
WRITE_SCOPES = frozenset({"api.all.write", "api.model.request", "model.request", "api.chat.completions.write"})
#: Scopes that allow ``GET /v1/models``; every write scope also reads.
READ_SCOPES = frozenset({"api.all.read", "api.model.read", "model.read"}) | WRITE_SCOPES
MAX_EXPIRES_IN = 10 * 365 * DAY


@dataclass(frozen=True)
class Role:
    """A predefined role. Custom RBAC is not emulated; the lists exist for the "next"-cursor envelope."""

    id: str
    name: str
    description: str
    permissions: tuple[str, ...]
    resource_type: str


ORG_ROLES = (
    Role(
        "role_org_owner",
        "owner",
        "Full access to the organization.",
        ("api.management.read", "api.management.write", "api.usage.read"),
        "api.organization",
    ),
    Role(
        "role_org_reader",
        "reader",
        "Read-only access to the organization.",
        ("api.management.read", "api.usage.read"),
        "api.organization",
    ),
)
PROJECT_ROLES = (
    Role(
        "role_project_owner",
        "owner",
        "Manage the project and its keys.",
        ("api.model.request", "api.management.write"),
        "api.project",
    ),
    Role("role_project_member", "member", "Use the project's models.", ("api.model.request",), "api.project"),
)


@dataclass
class ApiKey:
    id: str
    value: str
    name: str
    project_id: str
    owner_type: OwnerType
    owner_id: str
    created_at: int
    scopes: list[str] = field(default_factory=list)
    expires_at: int | None = None
    last_used_at: int | None = None

    @property
    def redacted_value(self) -> str:
        return redact(self.value)


@dataclass
class ServiceAccount:
    id: str
    project_id: str
    name: str
    role: str
    created_at: int


@dataclass
class RateLimit:
    id: str
    model: str
    max_requests_per_1_minute: int
    max_tokens_per_1_minute: int
    max_requests_per_1_day: int | None = None
    batch_1_day_max_input_tokens: int | None = None
    max_images_per_1_minute: int | None = None
    max_audio_megabytes_per_1_minute: int | None = None


RATE_LIMIT_FIELDS = (
    "max_requests_per_1_minute",
    "max_tokens_per_1_minute",
    "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute",
    "max_requests_per_1_day",
    "batch_1_day_max_input_tokens",
)


@dataclass
class SpendLimit:
    threshold_amount: int
    currency: str = "USD"
    interval: str = "month"


@dataclass
class SpendAlert:
    id: str
    threshold_amount: int
    currency: str
    interval: str
    notification_channel: dict[str, Any]


@dataclass
class ModelPermissions:
    mode: str = "deny_list"
    model_ids: list[str] = field(default_factory=list)


#: How long an invite stays pending (OpenAI does not document it; 7 days is an assumption).
INVITE_TTL_SECONDS = 7 * DAY
ORG_INVITE_ROLES = ("reader", "owner")
PROJECT_MEMBER_ROLES = ("member", "owner")
SERVICE_TIER_DEFAULTS = ("standard", "fast", "scale")
OPTIONAL_SERVICE_TIERS = ("flex", "fast", "ultrafast")


@dataclass
class Invite:
    """An ``organization.invite``: its status is derived from ``accepted_at``, ``expires_at`` and the clock."""

    id: str
    email: str
    role: str
    created_at: int
    expires_at: int
    projects: list[dict[str, str]] = field(default_factory=list)
    accepted_at: int | None = None

    def status(self, now: int) -> str:
        if self.accepted_at is not None:
            return "accepted"
        return "expired" if now >= self.expires_at else "pending"


@dataclass
class ServiceTierSettings:
    """``project.service_tier_settings`` (SDK 3.57): a default tier and the additional tiers enabled."""

    default: str = "standard"
    #: ``"all"`` (future tiers included) or a list of optional tiers; an empty list allows only Standard.
    enabled_tiers: str | list[str] = field(default_factory=list)


@dataclass
class OrgUser:
    id: str
    email: str
    name: str
    role: str
    added_at: int


@dataclass
class ProjectUser:
    user_id: str
    role: str
    added_at: int


@dataclass
class Project:
    id: str
    name: str
    created_at: int
    status: str = "active"
    archived_at: int | None = None
    external_key_id: str | None = None
    residency: str = "GLOBAL"
    is_default: bool = False
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    spend_limit: SpendLimit | None = None
    spend_alerts: dict[str, SpendAlert] = field(default_factory=dict)
    model_permissions: ModelPermissions | None = None
    users: dict[str, ProjectUser] = field(default_factory=dict)
    service_tiers: ServiceTierSettings = field(default_factory=ServiceTierSettings)

    @property
    def archived(self) -> bool:
        return self.status == "archived"


@dataclass
class CostRecord:
    """One priced line: a data-plane call produces two (input and output), the control API one."""

    ts: int
    project_id: str
    api_key_id: str | None
    line_item: str
    amount_usd: float
    quantity: float | None = None
    quantity_unit: str | None = None


@dataclass
class UsageRecord:
    """One completions call, as ``/organization/usage/completions`` aggregates it."""

    ts: int
    project_id: str
    api_key_id: str
    model: str
    input_tokens: int
    output_tokens: int
    user_id: str | None = None
    batch: bool = False
    service_tier: str = "default"


@dataclass
class AuditEvent:
    id: str
    type: str
    effective_at: int
    project_id: str | None
    project_name: str | None
    resource_id: str | None
    details: dict[str, Any]


@dataclass
class Options:
    """Behaviour switches, changed through ``POST /_emulator/config``."""

    #: ``True`` restores the older documented rule: deleting a service-account-owned key through
    #: ``DELETE /projects/{id}/api_keys/{key}`` answers 400 (the newest SDK allows it).
    reject_service_account_key_delete: bool = False
    #: Status for "insufficient permissions / missing scopes". Real reports show 401; 403 is offered
    #: for clients that expect ``PermissionDeniedError``.
    scope_error_status: int = 401
    #: Seconds an invite stays pending before it expires (on the emulator clock).
    invite_ttl_seconds: int = INVITE_TTL_SECONDS


@dataclass
class _Window:
    """Recent admitted requests of one (project, model): (time, tokens) for a minute, times for a day."""

    minute: deque[tuple[float, int]] = field(default_factory=deque)
    minute_tokens: int = 0
    day: deque[float] = field(default_factory=deque)


@dataclass(frozen=True)
class RateDecision:
    limit: RateLimit
    #: ``None`` when admitted, else (which limit, its value, amount used, retry-after seconds).
    refused: tuple[str, int, int, int] | None
    remaining_requests: int
    remaining_tokens: int


T = TypeVar("T")


class EmulatorState:
    """The whole organisation. Single-threaded: only the emulator's event loop touches it."""

    def __init__(self, clock: Clock | None = None, admin_key: str | None = None) -> None:
        self.clock = clock or Clock()
        self.admin_key = admin_key or ""
        self.options = Options()
        self.org_id = "org-" + new_id("", 24)
        self.admin_key_id = new_id("key_")
        self.projects: dict[str, Project] = {}
        self.org_users: dict[str, OrgUser] = {}
        self.invites: dict[str, Invite] = {}
        self.org_spend_alerts: dict[str, SpendAlert] = {}
        self.costs: list[CostRecord] = []
        self.usage: list[UsageRecord] = []
        self.audit: list[AuditEvent] = []
        self._seq: dict[str, int] = {}
        self._next_seq = 0
        self._key_by_value: dict[str, ApiKey] = {}
        self._daily_cost: dict[tuple[str, int], float] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self.owner = self.add_org_user("owner@example.com", "Emulator Owner", role="owner")
        self.default_project = self._new_project("Default project", is_default=True)
        #: Workload identity federation: providers, federation rules, issued access tokens (``wif.py``).
        self.wif = WorkloadIdentityFederation(self)

    # ------------------------------------------------------------------ helpers

    def now(self) -> int:
        return self.clock.now_int()

    def _register(self, ident: str) -> str:
        self._next_seq += 1
        self._seq[ident] = self._next_seq
        return ident

    def page(
        self,
        items: Sequence[T],
        ident: Any,
        *,
        after: str | None,
        before: str | None = None,
        descending: bool = False,
    ) -> list[T]:
        """Apply ``after``/``before`` cursors to ``items`` (already in list order, oldest first unless
        ``descending``)."""
        out = list(items)
        for name, cursor, later in (("after", after, not descending), ("before", before, descending)):
            if cursor is None:
                continue
            if cursor not in self._seq:
                raise bad_request(f"Invalid '{name}': no object with id '{cursor}'.", param=name)
            pos = self._seq[cursor]
            if later:
                out = [i for i in out if self._seq.get(ident(i), 0) > pos]
            else:
                out = [i for i in out if self._seq.get(ident(i), 0) < pos]
        return out

    def _record(self, type_: str, project: Project | None, resource_id: str | None, details: dict[str, Any]) -> None:
        ev = AuditEvent(
            id=self._register(new_id("audit_log-", 20)),
            type=type_,
            effective_at=self.now(),
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            resource_id=resource_id,
            details=details,
        )
        self.audit.append(ev)

    # ------------------------------------------------------------------ org users

    def add_org_user(self, email: str, name: str, role: str = "reader") -> OrgUser:
        if any(u.email.lower() == email.lower() for u in self.org_users.values()):
            raise bad_request(f"A user with email '{email}' is already in the organization.", param="email")
        user = OrgUser(self._register(new_id("user-")), email, name, role, self.now())
        self.org_users[user.id] = user
        return user

    def get_org_user(self, user_id: str) -> OrgUser:
        user = self.org_users.get(user_id)
        if user is None:
            raise not_found("user", user_id, param="user_id")
        return user

    # ------------------------------------------------------------------ projects

    def _new_project(
        self,
        name: str,
        *,
        is_default: bool = False,
        external_key_id: str | None = None,
        residency: str | None = None,
    ) -> Project:
        p = Project(
            id=self._register(new_id("proj_")),
            name=name,
            created_at=self.now(),
            is_default=is_default,
            external_key_id=external_key_id,
            residency=residency or "GLOBAL",
        )
        for info in MODELS.values():
            rl = RateLimit(
                id=f"rl-{info.id}",
                model=info.id,
                max_requests_per_1_minute=info.requests_per_minute,
                max_tokens_per_1_minute=info.tokens_per_minute,
                max_requests_per_1_day=info.requests_per_day,
                batch_1_day_max_input_tokens=info.batch_day_input_tokens,
            )
            p.rate_limits[rl.id] = rl
            if rl.id not in self._seq:  # one id per model, shared by every project (as in the spec examples)
                self._register(rl.id)
        self.projects[p.id] = p
        p.users[self.owner.id] = ProjectUser(self.owner.id, "owner", p.created_at)
        return p

    def list_projects(self, include_archived: bool) -> list[Project]:
        return [p for p in self.projects.values() if include_archived or not p.archived]

    def create_project(self, name: str, external_key_id: str | None = None, residency: str | None = None) -> Project:
        if not name.strip():
            raise bad_request("Project name must not be empty.", param="name")
        if residency is not None and residency not in RESIDENCIES:
            raise bad_request(f"Invalid 'residency': '{residency}' is not a supported value.", param="residency")
        p = self._new_project(name, external_key_id=external_key_id, residency=residency)
        self._record("project.created", p, p.id, {"id": p.id, "data": {"name": name, "title": name}})
        return p

    def get_project(self, project_id: str) -> Project:
        p = self.projects.get(project_id)
        if p is None:
            raise not_found("project", project_id, param="project_id")
        return p

    def active_project(self, project_id: str) -> Project:
        """The project, or 400 if it is archived ("Archived projects cannot be used or updated")."""
        p = self.get_project(project_id)
        if p.archived:
            raise bad_request(f"Project '{project_id}' is archived and cannot be modified.", param="project_id")
        return p

    def update_project(
        self, project_id: str, name: str | None, external_key_id: str | None, fields: Iterable[str]
    ) -> Project:
        p = self.active_project(project_id)
        if p.is_default:
            raise bad_request("The default project cannot be modified.", param="project_id")
        changes: dict[str, Any] = {}
        if "name" in fields and name is not None:
            if not name.strip():
                raise bad_request("Project name must not be empty.", param="name")
            p.name = name
            changes["title"] = name
        if "external_key_id" in fields:
            p.external_key_id = external_key_id
        self._record("project.updated", p, p.id, {"id": p.id, "changes_requested": changes})
        return p

    def archive_project(self, project_id: str) -> Project:
        p = self.get_project(project_id)
        if p.is_default:
            raise bad_request("The default project cannot be archived.", param="project_id")
        if not p.archived:
            p.status = "archived"
            p.archived_at = self.now()
            self._record("project.archived", p, p.id, {"id": p.id})
        return p

    # ------------------------------------------------------------------ service accounts and keys

    def _expiry(self, expires_in_seconds: int | None, param: str = "expires_in_seconds") -> int | None:
        if expires_in_seconds is None:
            return None
        if expires_in_seconds < 1 or expires_in_seconds > MAX_EXPIRES_IN:
            raise bad_request(
                f"Invalid '{param}': must be between 1 and {MAX_EXPIRES_IN} seconds.",
                param=param,
                code="invalid_value",
            )
        return self.now() + expires_in_seconds

    def _mint_key(
        self,
        p: Project,
        owner_type: OwnerType,
        owner_id: str,
        name: str,
        scopes: list[str],
        expires_at: int | None,
    ) -> ApiKey:
        prefix = "sk-svcacct-" if owner_type == "service_account" else "sk-proj-"
        key = ApiKey(
            id=self._register(new_id("key_", 16)),
            value=mint_secret(prefix),
            name=name,
            project_id=p.id,
            owner_type=owner_type,
            owner_id=owner_id,
            created_at=self.now(),
            scopes=list(scopes),
            expires_at=expires_at,
        )
        p.api_keys[key.id] = key
        self._key_by_value[key.value] = key
        self._record("api_key.created", p, key.id, {"id": key.id, "data": {"scopes": list(scopes)}})
        return key

    def list_service_accounts(self, project_id: str) -> list[ServiceAccount]:
        return list(self.active_project(project_id).service_accounts.values())

    def create_service_account(
        self, project_id: str, name: str, *, only: bool, expires_in_seconds: int | None
    ) -> tuple[ServiceAccount, ApiKey | None]:
        p = self.active_project(project_id)
        if not name:
            raise bad_request("Service account name must not be empty.", param="name")
        if only and expires_in_seconds is not None:
            raise bad_request(
                "'expires_in_seconds' cannot be used when 'create_service_account_only' is true.",
                param="expires_in_seconds",
            )
        expires_at = self._expiry(expires_in_seconds)
        sa = ServiceAccount(
            id=self._register(new_id("svc_acct_")),
            project_id=p.id,
            name=name,
            role="none" if only else "member",
            created_at=self.now(),
        )
        p.service_accounts[sa.id] = sa
        self._record("service_account.created", p, sa.id, {"id": sa.id, "data": {"role": sa.role}})
        key = None if only else self._mint_key(p, "service_account", sa.id, DEFAULT_KEY_NAME, [], expires_at)
        return sa, key

    def get_service_account(self, project_id: str, sa_id: str) -> ServiceAccount:
        p = self.get_project(project_id)
        sa = p.service_accounts.get(sa_id)
        if sa is None:
            raise not_found("service account", sa_id, param="service_account_id")
        return sa

    def update_service_account(self, project_id: str, sa_id: str, name: str | None, role: str | None) -> ServiceAccount:
        self.active_project(project_id)
        sa = self.get_service_account(project_id, sa_id)
        changes: dict[str, Any] = {}
        if name is not None:
            if not name:
                raise bad_request("Service account name must not be empty.", param="name")
            sa.name = name
        if role is not None:
            sa.role = role
            changes["role"] = role
        self._record(
            "service_account.updated",
            self.projects[project_id],
            sa.id,
            {"id": sa.id, "changes_requested": changes},
        )
        return sa

    def delete_service_account(self, project_id: str, sa_id: str) -> ServiceAccount:
        p = self.active_project(project_id)
        sa = self.get_service_account(project_id, sa_id)
        for key in [k for k in p.api_keys.values() if k.owner_type == "service_account" and k.owner_id == sa.id]:
            self._drop_key(p, key)
        del p.service_accounts[sa.id]
        self._record("service_account.deleted", p, sa.id, {"id": sa.id})
        return sa

    def create_service_account_key(
        self,
        project_id: str,
        sa_id: str,
        name: str | None,
        scopes: list[str] | None,
        expires_in_seconds: int | None,
    ) -> ApiKey:
        p = self.active_project(project_id)
        sa = self.get_service_account(project_id, sa_id)
        expires_at = self._expiry(expires_in_seconds)
        return self._mint_key(p, "service_account", sa.id, name or DEFAULT_KEY_NAME, scopes or [], expires_at)

    def create_user_key(self, project_id: str, user_id: str, name: str, scopes: list[str]) -> ApiKey:
        """A user-owned ``sk-proj-`` key. The Admin API cannot mint these; tests use the control API."""
        p = self.active_project(project_id)
        self.get_org_user(user_id)
        if user_id not in p.users:
            p.users[user_id] = ProjectUser(user_id, "member", self.now())
        return self._mint_key(p, "user", user_id, name, scopes, None)

    def key_is_active(self, key: ApiKey) -> bool:
        """Whether the key's owner currently has effective access to the project."""
        p = self.projects.get(key.project_id)
        if p is None or p.archived:
            return False
        if key.owner_type == "service_account":
            sa = p.service_accounts.get(key.owner_id)
            return sa is not None and sa.role != "none"
        return key.owner_id in p.users

    def list_keys(self, project_id: str, access: str | None) -> list[ApiKey]:
        p = self.get_project(project_id)
        keys = list(p.api_keys.values())
        if access in (None, "active"):
            return [k for k in keys if self.key_is_active(k)]
        if access == "inactive":
            return [k for k in keys if not self.key_is_active(k)]
        return keys

    def get_key(self, project_id: str, key_id: str) -> ApiKey:
        key = self.get_project(project_id).api_keys.get(key_id)
        if key is None:
            raise not_found("API key", key_id, param="api_key_id")
        return key

    def update_key(
        self, project_id: str, key_id: str, scopes: list[str] | None, expires_in_seconds: int | None
    ) -> ApiKey:
        p = self.active_project(project_id)
        key = self.get_key(project_id, key_id)
        if scopes is None and expires_in_seconds is None:
            raise bad_request("Provide at least one of 'scopes' or 'expires_in_seconds'.")
        if key.expires_at is not None and key.expires_at <= self.now():
            raise bad_request("Expired API keys cannot be updated.", param="api_key_id")
        expires_at = self._expiry(expires_in_seconds) if expires_in_seconds is not None else key.expires_at
        changes: dict[str, Any] = {}
        if scopes is not None:
            key.scopes = list(scopes)
            changes["scopes"] = list(scopes)
        if expires_in_seconds is not None:
            key.expires_at = expires_at
            changes["expires_in_seconds"] = expires_in_seconds
        self._record("api_key.updated", p, key.id, {"id": key.id, "changes_requested": changes})
        return key

    def delete_key(self, project_id: str, key_id: str) -> ApiKey:
        p = self.get_project(project_id)
        key = self.get_key(project_id, key_id)
        if key.owner_type == "service_account" and self.options.reject_service_account_key_delete:
            raise bad_request(
                "The API key belongs to a service account and cannot be deleted. Delete the service account instead.",
                param="api_key_id",
            )
        self._drop_key(p, key)
        return key

    def _drop_key(self, p: Project, key: ApiKey) -> None:
        p.api_keys.pop(key.id, None)
        self._key_by_value.pop(key.value, None)
        self._record("api_key.deleted", p, key.id, {"id": key.id})

    def authenticate(self, value: str) -> ApiKey | None:
        """The live key with this secret, or ``None`` if it never existed, was deleted or expired."""
        key = self._key_by_value.get(value)
        if key is None:
            return None
        if key.expires_at is not None and key.expires_at <= self.now():
            return None
        p = self.projects.get(key.project_id)
        if p is None or p.archived or key.id not in p.api_keys:
            return None
        if key.owner_type == "service_account" and key.owner_id not in p.service_accounts:
            return None
        return key

    # ------------------------------------------------------------------ rate limits

    def list_rate_limits(self, project_id: str) -> list[RateLimit]:
        return list(self.get_project(project_id).rate_limits.values())

    def update_rate_limit(self, project_id: str, rl_id: str, changes: dict[str, int]) -> RateLimit:
        p = self.active_project(project_id)
        rl = p.rate_limits.get(rl_id)
        if rl is None:
            raise not_found("rate limit", rl_id, param="rate_limit_id")
        info = MODELS[rl.model]
        ceilings = {
            "max_requests_per_1_minute": info.requests_per_minute,
            "max_tokens_per_1_minute": info.tokens_per_minute,
            "max_requests_per_1_day": info.requests_per_day,
            "batch_1_day_max_input_tokens": info.batch_day_input_tokens,
        }
        for name, value in changes.items():
            if value < 0:
                raise bad_request(
                    f"Invalid '{name}': must be a non-negative integer.", param=name, code="invalid_value"
                )
            ceiling = ceilings.get(name)
            if ceiling is not None and value > ceiling:
                raise bad_request(
                    f"Invalid '{name}': {value} exceeds the organization limit of {ceiling}.",
                    param=name,
                    code="invalid_value",
                )
        for name, value in changes.items():
            setattr(rl, name, value)
        self._record("rate_limit.updated", p, rl.id, {"id": rl.id, "changes_requested": dict(changes)})
        return rl

    # ------------------------------------------------------------------ spend limit, alerts, permissions

    def get_spend_limit(self, project_id: str) -> tuple[SpendLimit, bool]:
        p = self.get_project(project_id)
        if p.spend_limit is None:
            raise ApiError(404, f"No hard spend limit is set for project '{project_id}'.", code="not_found")
        return p.spend_limit, self.spend_limit_reached(p)

    def set_spend_limit(
        self, project_id: str, threshold_amount: int, currency: str, interval: str
    ) -> tuple[SpendLimit, bool]:
        p = self.active_project(project_id)
        if threshold_amount < 1:
            raise bad_request(
                "Invalid 'threshold_amount': must be at least 1.",
                param="threshold_amount",
                code="invalid_value",
            )
        p.spend_limit = SpendLimit(threshold_amount, currency, interval)
        return p.spend_limit, self.spend_limit_reached(p)

    def delete_spend_limit(self, project_id: str) -> None:
        p = self.active_project(project_id)
        if p.spend_limit is None:
            raise ApiError(404, f"No hard spend limit is set for project '{project_id}'.", code="not_found")
        p.spend_limit = None

    def _alerts(self, project_id: str | None, *, write: bool) -> dict[str, SpendAlert]:
        if project_id is None:
            return self.org_spend_alerts
        p = self.active_project(project_id) if write else self.get_project(project_id)
        return p.spend_alerts

    def list_spend_alerts(self, project_id: str | None) -> list[SpendAlert]:
        return list(self._alerts(project_id, write=False).values())

    def put_spend_alert(self, project_id: str | None, alert_id: str | None, body: dict[str, Any]) -> SpendAlert:
        alerts = self._alerts(project_id, write=True)
        if alert_id is not None and alert_id not in alerts:
            raise not_found("spend alert", alert_id, param="alert_id")
        if body["threshold_amount"] < 0:
            raise bad_request("Invalid 'threshold_amount': must be at least 0.", param="threshold_amount")
        alert = SpendAlert(
            id=alert_id or self._register(new_id("alert_", 20)),
            threshold_amount=body["threshold_amount"],
            currency=body["currency"],
            interval=body["interval"],
            notification_channel=body["notification_channel"],
        )
        alerts[alert.id] = alert
        return alert

    def get_spend_alert(self, project_id: str | None, alert_id: str) -> SpendAlert:
        alert = self._alerts(project_id, write=False).get(alert_id)
        if alert is None:
            raise not_found("spend alert", alert_id, param="alert_id")
        return alert

    def delete_spend_alert(self, project_id: str | None, alert_id: str) -> SpendAlert:
        alerts = self._alerts(project_id, write=True)
        if alert_id not in alerts:
            raise not_found("spend alert", alert_id, param="alert_id")
        return alerts.pop(alert_id)

    def get_model_permissions(self, project_id: str) -> ModelPermissions:
        return self.get_project(project_id).model_permissions or ModelPermissions()

    def set_model_permissions(self, project_id: str, mode: str, model_ids: list[str]) -> ModelPermissions:
        p = self.active_project(project_id)
        p.model_permissions = ModelPermissions(mode, list(model_ids))
        return p.model_permissions

    def delete_model_permissions(self, project_id: str) -> None:
        self.active_project(project_id).model_permissions = None

    def get_service_tiers(self, project_id: str) -> ServiceTierSettings:
        return self.get_project(project_id).service_tiers

    def set_service_tiers(
        self, project_id: str, default: str | None, enabled_tiers: str | list[str] | None
    ) -> ServiceTierSettings:
        """Update atomically; omitted fields keep their values (the SDK asks for at least one)."""
        p = self.active_project(project_id)
        if default is None and enabled_tiers is None:
            raise bad_request("Supply at least one of 'default' or 'enabled_tiers'.", param="default")
        if default is not None and default not in SERVICE_TIER_DEFAULTS:
            raise bad_request(
                f"Invalid 'default': '{default}' is not one of {', '.join(SERVICE_TIER_DEFAULTS)}.",
                param="default",
                code="invalid_value",
            )
        if isinstance(enabled_tiers, str) and enabled_tiers != "all":
            raise bad_request("Invalid 'enabled_tiers': expected 'all' or an array of tiers.", param="enabled_tiers")
        if isinstance(enabled_tiers, list):
            bad = [t for t in enabled_tiers if t not in OPTIONAL_SERVICE_TIERS]
            if bad or len(set(enabled_tiers)) != len(enabled_tiers):
                raise bad_request(
                    f"Invalid 'enabled_tiers': each tier must be one of {', '.join(OPTIONAL_SERVICE_TIERS)}, "
                    "listed once.",
                    param="enabled_tiers",
                    code="invalid_value",
                )
        current = p.service_tiers
        p.service_tiers = ServiceTierSettings(
            default if default is not None else current.default,
            (list(enabled_tiers) if isinstance(enabled_tiers, list) else enabled_tiers)
            if enabled_tiers is not None
            else current.enabled_tiers,
        )
        self._record("project.updated", p, p.id, {"id": p.id, "changes_requested": {"service_tier_settings": True}})
        return p.service_tiers

    # ------------------------------------------------------------------ invites

    def list_invites(self) -> list[Invite]:
        return list(self.invites.values())

    def create_invite(self, email: str, role: str, projects: list[dict[str, str]] | None) -> Invite:
        """Invite ``email``; ``projects`` omitted means the default project (legacy rule), ``[]`` none.

        Refused (400) when the address already belongs to an organisation user or has a pending
        invite: the real API's exact answer is not documented, this is the emulator's assumption.
        """
        if "@" not in email.strip("@") or any(c.isspace() for c in email):
            raise bad_request(f"Invalid 'email': '{email}' is not an email address.", param="email")
        if role not in ORG_INVITE_ROLES:
            raise bad_request(f"Invalid 'role': '{role}' is not one of reader, owner.", param="role")
        if any(u.email.lower() == email.lower() for u in self.org_users.values()):
            raise bad_request(f"A user with email '{email}' is already in the organization.", param="email")
        now = self.now()
        if any(i.email.lower() == email.lower() and i.status(now) == "pending" for i in self.invites.values()):
            raise bad_request(f"An invite for '{email}' is already pending.", param="email")
        if projects is None:
            grants = [{"id": self.default_project.id, "role": "member"}]
        else:
            grants = []
            for i, grant in enumerate(projects):
                pid, prole = grant.get("id"), grant.get("role")
                if not isinstance(pid, str) or prole not in PROJECT_MEMBER_ROLES:
                    raise bad_request(
                        f"Invalid 'projects[{i}]': expected {{id, role: member|owner}}.", param=f"projects[{i}]"
                    )
                self.active_project(pid)
                grants.append({"id": pid, "role": str(prole)})
        invite = Invite(
            id=self._register(new_id("invite-")),
            email=email,
            role=role,
            created_at=now,
            expires_at=now + self.options.invite_ttl_seconds,
            projects=grants,
        )
        self.invites[invite.id] = invite
        self._record("invite.sent", None, invite.id, {"id": invite.id, "data": {"email": email, "role": role}})
        return invite

    def get_invite(self, invite_id: str) -> Invite:
        invite = self.invites.get(invite_id)
        if invite is None:
            raise not_found("invite", invite_id, param="invite_id")
        return invite

    def delete_invite(self, invite_id: str) -> Invite:
        invite = self.get_invite(invite_id)
        if invite.accepted_at is not None:
            raise bad_request(f"Invite '{invite_id}' has been accepted and cannot be deleted.", param="invite_id")
        del self.invites[invite_id]
        self._record("invite.deleted", None, invite_id, {"id": invite_id})
        return invite

    def accept_invite(self, invite_id: str, name: str | None = None) -> OrgUser:
        """What the invitee clicking the link does: the org user (invite role) and its project memberships."""
        invite = self.get_invite(invite_id)
        status = invite.status(self.now())
        if status != "pending":
            raise bad_request(f"Invite '{invite_id}' is {status} and cannot be accepted.", param="invite_id")
        user = self.add_org_user(invite.email, name or invite.email, role=invite.role)
        invite.accepted_at = self.now()
        for grant in invite.projects:
            p = self.projects.get(grant["id"])
            if p is not None and not p.archived and user.id not in p.users:
                p.users[user.id] = ProjectUser(user.id, grant["role"], self.now())
                self._record("user.added", p, user.id, {"id": user.id, "data": {"role": grant["role"]}})
        self._record("invite.accepted", None, invite_id, {"id": invite_id})
        return user

    # ------------------------------------------------------------------ project users

    def list_project_users(self, project_id: str) -> list[ProjectUser]:
        return list(self.active_project(project_id).users.values())

    def add_project_user(self, project_id: str, user_id: str | None, email: str | None, role: str) -> ProjectUser:
        p = self.active_project(project_id)
        if user_id is None and email is None:
            raise bad_request("Provide either 'user_id' or 'email'.", param="user_id")
        if user_id is not None:
            user = self.org_users.get(user_id)
        else:
            user = next((u for u in self.org_users.values() if email and u.email.lower() == email.lower()), None)
        if user is None:
            raise bad_request(
                "Users must already be members of the organization to be added to a project.",
                param="user_id" if user_id is not None else "email",
            )
        if user.id in p.users:
            raise bad_request(f"User '{user.id}' is already a member of project '{p.id}'.", param="user_id")
        pu = ProjectUser(user.id, role, self.now())
        p.users[user.id] = pu
        self._record("user.added", p, user.id, {"id": user.id, "data": {"role": role}})
        return pu

    def get_project_user(self, project_id: str, user_id: str) -> ProjectUser:
        pu = self.get_project(project_id).users.get(user_id)
        if pu is None:
            raise not_found("project user", user_id, param="user_id")
        return pu

    def update_project_user(self, project_id: str, user_id: str, role: str) -> ProjectUser:
        p = self.active_project(project_id)
        pu = self.get_project_user(project_id, user_id)
        pu.role = role
        self._record("user.updated", p, user_id, {"id": user_id, "changes_requested": {"role": role}})
        return pu

    def remove_project_user(self, project_id: str, user_id: str) -> None:
        p = self.active_project(project_id)
        self.get_project_user(project_id, user_id)
        del p.users[user_id]
        self._record("user.deleted", p, user_id, {"id": user_id})

    # ------------------------------------------------------------------ spend and usage

    def add_cost(self, record: CostRecord) -> None:
        self.costs.append(record)
        slot = (record.project_id, day_start(record.ts))
        self._daily_cost[slot] = self._daily_cost.get(slot, 0.0) + record.amount_usd

    def month_to_date_usd(self, project_id: str) -> float:
        now = self.now()
        first = month_start(now)
        total = 0.0
        for day in range(first, day_start(now) + 1, DAY):
            total += self._daily_cost.get((project_id, day), 0.0)
        return total

    def ledger(self) -> tuple[int, dict[str, float], dict[str, float]]:
        """This month's (UTC, emulator clock) cost so far: its start, and the sums by project and by API key id.

        Unrounded and including deleted keys: the ground truth the operator's spend is checked against.
        """
        first = month_start(self.now())
        by_project: dict[str, float] = {}
        by_key: dict[str, float] = {}
        for r in self.costs:
            if r.ts < first or r.ts > self.now():
                continue
            by_project[r.project_id] = by_project.get(r.project_id, 0.0) + r.amount_usd
            if r.api_key_id:
                by_key[r.api_key_id] = by_key.get(r.api_key_id, 0.0) + r.amount_usd
        return first, by_project, by_key

    def spend_limit_reached(self, p: Project) -> bool:
        if p.spend_limit is None:
            return False
        return self.month_to_date_usd(p.id) * 100 >= p.spend_limit.threshold_amount

    def check_rate_limit(self, p: Project, model: str, tokens: int) -> RateDecision:
        """Admit one request of ``tokens`` tokens against the project's limits for ``model``, or refuse it.

        Windows are sliding (60 s for the per-minute limits, a day for the per-day one) on the
        emulator clock, so a test can empty them by advancing the clock instead of sleeping. Each
        window is a deque trimmed from the left, so a check costs O(expired entries), not O(window).
        """
        rl = p.rate_limits[f"rl-{model}"]
        w = self._windows.setdefault((p.id, model), _Window())
        now = self.clock.now()
        while w.minute and w.minute[0][0] <= now - 60:
            w.minute_tokens -= w.minute.popleft()[1]
        while w.day and w.day[0] <= now - DAY:
            w.day.popleft()
        minute_retry = max(1, math.ceil(w.minute[0][0] + 60 - now)) if w.minute else 1
        refusal: tuple[str, int, int, int] | None = None
        if len(w.minute) >= rl.max_requests_per_1_minute:
            refusal = ("requests per min (RPM)", rl.max_requests_per_1_minute, len(w.minute), minute_retry)
        elif w.minute_tokens + tokens > rl.max_tokens_per_1_minute:
            refusal = ("tokens per min (TPM)", rl.max_tokens_per_1_minute, w.minute_tokens, minute_retry)
        elif rl.max_requests_per_1_day is not None and len(w.day) >= rl.max_requests_per_1_day:
            retry = max(1, math.ceil(w.day[0] + DAY - now)) if w.day else 1
            refusal = ("requests per day (RPD)", rl.max_requests_per_1_day, len(w.day), retry)
        if refusal is None:
            w.minute.append((now, tokens))
            w.minute_tokens += tokens
            w.day.append(now)
        return RateDecision(
            limit=rl,
            refused=refusal,
            remaining_requests=max(0, rl.max_requests_per_1_minute - len(w.minute)),
            remaining_tokens=max(0, rl.max_tokens_per_1_minute - w.minute_tokens),
        )

    def record_completion(self, key: ApiKey, model: str, input_tokens: int, output_tokens: int) -> float:
        """Charge one call to its key and project; returns the USD cost."""
        now = self.now()
        key.last_used_at = now
        self.usage.append(UsageRecord(now, key.project_id, key.id, model, input_tokens, output_tokens))
        cost_in, cost_out = token_cost(model, input_tokens, output_tokens)
        self.add_cost(
            CostRecord(now, key.project_id, key.id, line_item(model, "input"), cost_in, input_tokens, "tokens")
        )
        self.add_cost(
            CostRecord(now, key.project_id, key.id, line_item(model, "output"), cost_out, output_tokens, "tokens")
        )
        return cost_in + cost_out

    # ------------------------------------------------------------------ inspection and persistence

    def counts(self) -> dict[str, dict[str, int]]:
        """Live service accounts and keys per project, for test assertions."""
        now = self.now()
        return {
            p.id: {
                "service_accounts": len(p.service_accounts),
                "api_keys": sum(1 for k in p.api_keys.values() if k.expires_at is None or k.expires_at > now),
            }
            for p in self.projects.values()
        }

    def to_json(self) -> dict[str, Any]:
        """Everything needed to restart where we left off (includes secret values: the file is 0600)."""
        return {
            "version": 1,
            "clock_offset": self.clock.offset,
            "org_id": self.org_id,
            "admin_key_id": self.admin_key_id,
            "options": asdict(self.options),
            "seq": self._seq,
            "next_seq": self._next_seq,
            "owner_id": self.owner.id,
            "default_project_id": self.default_project.id,
            "org_users": [asdict(u) for u in self.org_users.values()],
            "invites": [asdict(i) for i in self.invites.values()],
            "org_spend_alerts": [asdict(a) for a in self.org_spend_alerts.values()],
            "projects": [asdict(p) for p in self.projects.values()],
            "costs": [asdict(c) for c in self.costs],
            "usage": [asdict(u) for u in self.usage],
            "audit": [asdict(a) for a in self.audit],
            "workload_identity": self.wif.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], clock: Clock | None = None, admin_key: str | None = None) -> EmulatorState:
        state = cls(clock, admin_key)
        state.clock.offset = float(data.get("clock_offset", 0.0))
        state.org_id = data["org_id"]
        state.admin_key_id = data["admin_key_id"]
        state.options = Options(**data.get("options", {}))
        state._seq = {str(k): int(v) for k, v in data["seq"].items()}
        state._next_seq = int(data["next_seq"])
        state.org_users = {u["id"]: OrgUser(**u) for u in data["org_users"]}
        state.owner = state.org_users[data["owner_id"]]
        state.invites = {i["id"]: Invite(**i) for i in data.get("invites", [])}
        state.org_spend_alerts = {a["id"]: SpendAlert(**a) for a in data["org_spend_alerts"]}
        state.projects = {}
        for raw in data["projects"]:
            p = Project(
                **{
                    k: v
                    for k, v in raw.items()
                    if k
                    not in {
                        "service_accounts",
                        "api_keys",
                        "rate_limits",
                        "spend_limit",
                        "spend_alerts",
                        "model_permissions",
                        "users",
                        "service_tiers",
                    }
                }
            )
            p.service_accounts = {k: ServiceAccount(**v) for k, v in raw["service_accounts"].items()}
            p.api_keys = {k: ApiKey(**v) for k, v in raw["api_keys"].items()}
            p.rate_limits = {k: RateLimit(**v) for k, v in raw["rate_limits"].items()}
            p.spend_limit = SpendLimit(**raw["spend_limit"]) if raw["spend_limit"] else None
            p.spend_alerts = {k: SpendAlert(**v) for k, v in raw["spend_alerts"].items()}
            p.model_permissions = ModelPermissions(**raw["model_permissions"]) if raw["model_permissions"] else None
            p.users = {k: ProjectUser(**v) for k, v in raw["users"].items()}
            if raw.get("service_tiers"):
                p.service_tiers = ServiceTierSettings(**raw["service_tiers"])
            state.projects[p.id] = p
        state.default_project = state.projects[data["default_project_id"]]
        state._key_by_value = {k.value: k for p in state.projects.values() for k in p.api_keys.values()}
        state.costs = []
        state._daily_cost = {}
        for c in data["costs"]:
            state.add_cost(CostRecord(**c))
        state.usage = [UsageRecord(**u) for u in data["usage"]]
        state.audit = [AuditEvent(**a) for a in data["audit"]]
        state.wif.load_json(data.get("workload_identity", {}))
        return state
