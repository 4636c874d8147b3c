"""Typed, immutable views of the OpenAI Admin API objects the operator uses.

Parsing is tolerant in the direction the API evolves: unknown fields are ignored (OpenAI adds fields
often; see the feature timeline in the reference notes), and optional fields default to ``None``.
A missing *required* field (an ``id``, a ``value`` on a key we just created) raises
:class:`ValueError`; the client turns that into
:class:`~openai_operator.openai.errors.UnexpectedResponseError`, because guessing would be worse.

Timestamps are Unix seconds on the wire and aware UTC ``datetime`` here. Money keeps the unit the
API uses: costs are dollars (float, lowercase ``"usd"``), spend limits are integer cents (``"USD"``).
The one-time key value of a newly created key is a
:class:`~openai_operator.secretvalue.SecretValue`, never a ``str``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openai_operator.secretvalue import SecretValue

__all__ = [
    "CostBucket",
    "CostResult",
    "CreatedServiceAccount",
    "FederationRule",
    "Invite",
    "IssuedKey",
    "ModelPermissions",
    "OrgUser",
    "Project",
    "ProjectApiKey",
    "ProjectUser",
    "RateLimit",
    "ServiceAccount",
    "ServiceTierSettings",
    "SpendAlert",
    "SpendLimit",
    "WorkloadIdentityProvider",
]

JSONObject = Mapping[str, Any]


def _req_str(data: JSONObject, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"missing or invalid field {name!r}")
    return value


def _opt_str(data: JSONObject, name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None


def _opt_int(data: JSONObject, name: str) -> int | None:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _req_int(data: JSONObject, name: str) -> int:
    value = _opt_int(data, name)
    if value is None:
        raise ValueError(f"missing or invalid field {name!r}")
    return value


def _opt_float(data: JSONObject, name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ts(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _req_ts(data: JSONObject, name: str) -> datetime:
    return datetime.fromtimestamp(_req_int(data, name), tz=UTC)


def _opt_ts(data: JSONObject, name: str) -> datetime | None:
    return _ts(_opt_int(data, name))


def _obj(data: JSONObject, name: str) -> JSONObject:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class Project:
    """An OpenAI project (``organization.project``). Projects are archived, never deleted."""

    id: str
    name: str | None
    status: str | None
    created_at: datetime | None
    archived_at: datetime | None = None
    external_key_id: str | None = None

    @property
    def archived(self) -> bool:
        """Whether the project is archived (by status, or by a set ``archived_at``)."""
        return self.status == "archived" or self.archived_at is not None

    @classmethod
    def from_api(cls, data: JSONObject) -> Project:
        """Parse an ``organization.project`` object."""
        return cls(
            id=_req_str(data, "id"),
            name=_opt_str(data, "name"),
            status=_opt_str(data, "status"),
            created_at=_opt_ts(data, "created_at"),
            archived_at=_opt_ts(data, "archived_at"),
            external_key_id=_opt_str(data, "external_key_id"),
        )


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A project service account (``organization.project.service_account``)."""

    id: str
    name: str
    role: str | None
    created_at: datetime | None

    @classmethod
    def from_api(cls, data: JSONObject) -> ServiceAccount:
        """Parse a service-account object (also the top level of the create response)."""
        return cls(
            id=_req_str(data, "id"),
            name=_opt_str(data, "name") or "",
            role=_opt_str(data, "role"),
            created_at=_opt_ts(data, "created_at"),
        )


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as returned once at creation, with its value (``…service_account.api_key``).

    ``value`` is the only copy the operator will ever get: store it in every destination before
    doing anything that can fail.
    """

    id: str
    name: str | None
    created_at: datetime | None
    expires_at: datetime | None
    value: SecretValue

    @property
    def redacted_value(self) -> str:
        """The value in OpenAI's ``redacted_value`` shape, for ``status.redactedKey``."""
        return self.value.redacted()

    @classmethod
    def from_api(cls, data: JSONObject) -> IssuedKey:
        """Parse a created-key object; a missing ``value`` is an error."""
        return cls(
            id=_req_str(data, "id"),
            name=_opt_str(data, "name"),
            created_at=_opt_ts(data, "created_at"),
            expires_at=_opt_ts(data, "expires_at"),
            value=SecretValue(_req_str(data, "value")),
        )


@dataclass(frozen=True, slots=True)
class CreatedServiceAccount:
    """The result of creating a service account: the account and, normally, its first key.

    ``api_key`` is ``None`` only if the API created the account without a key (which it does when
    asked with ``create_service_account_only``, something this client never sends); a caller can
    then mint one with :meth:`AdminClient.create_service_account_key`.
    """

    service_account: ServiceAccount
    api_key: IssuedKey | None

    @classmethod
    def from_api(cls, data: JSONObject) -> CreatedServiceAccount:
        """Parse ``ProjectServiceAccountCreateResponse``."""
        key = data.get("api_key")
        return cls(
            service_account=ServiceAccount.from_api(data),
            api_key=IssuedKey.from_api(key) if isinstance(key, Mapping) else None,
        )


@dataclass(frozen=True, slots=True)
class ProjectApiKey:
    """A project API key as listed (``organization.project.api_key``): never the value.

    ``owner_id`` is the owning service account's id (``owner_type == "service_account"``) or the
    user's id; that is how inventory maps keys back to the service accounts the operator manages.
    """

    id: str
    name: str | None
    redacted_value: str | None
    created_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    owner_type: str | None
    owner_id: str | None
    owner_name: str | None
    owner_project_access: str | None = None
    scopes: tuple[str, ...] | None = None

    @classmethod
    def from_api(cls, data: JSONObject) -> ProjectApiKey:
        """Parse a project API key; the owner may be a user or a service account."""
        owner = _obj(data, "owner")
        owner_type = _opt_str(owner, "type")
        inner = _obj(owner, owner_type) if owner_type in ("user", "service_account") else {}
        if not inner:
            inner = _obj(owner, "service_account") or _obj(owner, "user")
        raw_scopes = data.get("scopes")
        scopes = tuple(s for s in raw_scopes if isinstance(s, str)) if isinstance(raw_scopes, list) else None
        return cls(
            id=_req_str(data, "id"),
            name=_opt_str(data, "name"),
            redacted_value=_opt_str(data, "redacted_value"),
            created_at=_opt_ts(data, "created_at"),
            last_used_at=_opt_ts(data, "last_used_at"),
            expires_at=_opt_ts(data, "expires_at"),
            owner_type=owner_type,
            owner_id=_opt_str(inner, "id"),
            owner_name=_opt_str(inner, "name"),
            owner_project_access=_opt_str(data, "owner_project_access"),
            scopes=scopes,
        )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A project's rate limit for one model (``project.rate_limit``); ``None`` = not applicable."""

    id: str
    model: str
    max_requests_per_1_minute: int | None
    max_tokens_per_1_minute: int | None
    max_images_per_1_minute: int | None = None
    max_audio_megabytes_per_1_minute: int | None = None
    max_requests_per_1_day: int | None = None
    batch_1_day_max_input_tokens: int | None = None

    @classmethod
    def from_api(cls, data: JSONObject) -> RateLimit:
        """Parse a ``project.rate_limit`` object."""
        return cls(
            id=_req_str(data, "id"),
            model=_opt_str(data, "model") or "",
            max_requests_per_1_minute=_opt_int(data, "max_requests_per_1_minute"),
            max_tokens_per_1_minute=_opt_int(data, "max_tokens_per_1_minute"),
            max_images_per_1_minute=_opt_int(data, "max_images_per_1_minute"),
            max_audio_megabytes_per_1_minute=_opt_int(data, "max_audio_megabytes_per_1_minute"),
            max_requests_per_1_day=_opt_int(data, "max_requests_per_1_day"),
            batch_1_day_max_input_tokens=_opt_int(data, "batch_1_day_max_input_tokens"),
        )


@dataclass(frozen=True, slots=True)
class SpendLimit:
    """A project's hard spend limit (``project.spend_limit``), in integer cents.

    ``enforcement_status`` is ``"inactive"`` or ``"enforcing"`` (OpenAI answers 429 past the limit).
    """

    threshold_cents: int
    currency: str
    interval: str
    enforcement_status: str | None

    @property
    def threshold_usd(self) -> float:
        """The threshold in dollars, for comparison with a budget's ``monthlyUSD``."""
        return self.threshold_cents / 100

    @classmethod
    def from_api(cls, data: JSONObject) -> SpendLimit:
        """Parse a ``project.spend_limit`` object."""
        return cls(
            threshold_cents=_req_int(data, "threshold_amount"),
            currency=_opt_str(data, "currency") or "USD",
            interval=_opt_str(data, "interval") or "month",
            enforcement_status=_opt_str(_obj(data, "enforcement"), "status"),
        )


@dataclass(frozen=True, slots=True)
class SpendAlert:
    """One of a project's spend alerts (``project.spend_alert``): an email when the month's spend
    reaches ``threshold_cents``. Many may exist per project; each has its own id."""

    id: str
    threshold_cents: int
    currency: str
    interval: str
    channel_type: str
    recipients: tuple[str, ...]
    subject_prefix: str | None = None

    @classmethod
    def from_api(cls, data: JSONObject) -> SpendAlert:
        """Parse a ``project.spend_alert`` object."""
        channel = _obj(data, "notification_channel")
        recipients = channel.get("recipients")
        return cls(
            id=_req_str(data, "id"),
            threshold_cents=_req_int(data, "threshold_amount"),
            currency=_opt_str(data, "currency") or "USD",
            interval=_opt_str(data, "interval") or "month",
            channel_type=_opt_str(channel, "type") or "email",
            recipients=tuple(str(r) for r in recipients) if isinstance(recipients, list) else (),
            subject_prefix=_opt_str(channel, "subject_prefix"),
        )


@dataclass(frozen=True, slots=True)
class CostResult:
    """One cost line of a daily bucket (``organization.costs.result``), with its bucket's bounds.

    ``project_id``, ``api_key_id`` and ``line_item`` are set only when the query grouped by them.
    """

    bucket_start: datetime
    bucket_end: datetime
    amount_usd: float
    currency: str
    project_id: str | None = None
    api_key_id: str | None = None
    line_item: str | None = None
    quantity: float | None = None
    quantity_unit: str | None = None

    @classmethod
    def from_api(cls, data: JSONObject, *, bucket_start: datetime, bucket_end: datetime) -> CostResult:
        """Parse a costs result; a missing amount counts as zero (the schema makes it optional)."""
        amount = _obj(data, "amount")
        return cls(
            bucket_start=bucket_start,
            bucket_end=bucket_end,
            amount_usd=_opt_float(amount, "value") or 0.0,
            currency=(_opt_str(amount, "currency") or "usd").lower(),
            project_id=_opt_str(data, "project_id"),
            api_key_id=_opt_str(data, "api_key_id"),
            line_item=_opt_str(data, "line_item"),
            quantity=_opt_float(data, "quantity"),
            quantity_unit=_opt_str(data, "quantity_unit"),
        )


@dataclass(frozen=True, slots=True)
class CostBucket:
    """A time bucket of the costs report (daily: ``bucket_width=1d`` is the only width)."""

    start: datetime
    end: datetime
    results: tuple[CostResult, ...]

    @property
    def total_usd(self) -> float:
        """Sum of the bucket's results."""
        return sum(r.amount_usd for r in self.results)

    @classmethod
    def from_api(cls, data: JSONObject) -> CostBucket:
        """Parse a ``bucket`` with its ``results``."""
        start = _req_ts(data, "start_time")
        end = _req_ts(data, "end_time")
        raw = data.get("results")
        results = tuple(
            CostResult.from_api(r, bucket_start=start, bucket_end=end)
            for r in (raw if isinstance(raw, list) else [])
            if isinstance(r, Mapping)
        )
        return cls(start=start, end=end, results=results)


# --- project access: users, invites, model permissions, service tiers ------------------------------


@dataclass(frozen=True, slots=True)
class ProjectUser:
    """A member of a project (``organization.project.user``); ``email`` as OpenAI spells it."""

    id: str
    email: str | None
    role: str

    @classmethod
    def from_api(cls, data: JSONObject) -> ProjectUser:
        """Parse an ``organization.project.user`` object."""
        return cls(id=_req_str(data, "id"), email=_opt_str(data, "email"), role=_req_str(data, "role"))


@dataclass(frozen=True, slots=True)
class OrgUser:
    """A member of the organisation (``organization.user``)."""

    id: str
    email: str | None
    role: str | None

    @classmethod
    def from_api(cls, data: JSONObject) -> OrgUser:
        """Parse an ``organization.user`` object."""
        return cls(id=_req_str(data, "id"), email=_opt_str(data, "email"), role=_opt_str(data, "role"))


@dataclass(frozen=True, slots=True)
class Invite:
    """An invitation to the organisation (``organization.invite``), possibly scoped to projects.

    ``status`` is ``pending``, ``accepted`` or ``expired``; ``projects`` maps project id → role.
    """

    id: str
    email: str
    role: str
    status: str
    expires_at: datetime | None
    projects: Mapping[str, str]

    @classmethod
    def from_api(cls, data: JSONObject) -> Invite:
        """Parse an ``organization.invite`` object."""
        raw = data.get("projects")
        grants = {
            str(p["id"]): str(p.get("role") or "")
            for p in (raw if isinstance(raw, list) else [])
            if isinstance(p, Mapping) and isinstance(p.get("id"), str)
        }
        return cls(
            id=_req_str(data, "id"),
            email=_req_str(data, "email"),
            role=_opt_str(data, "role") or "reader",
            status=_req_str(data, "status"),
            expires_at=_opt_ts(data, "expires_at"),
            projects=grants,
        )


@dataclass(frozen=True, slots=True)
class ModelPermissions:
    """A project's model policy (``project.model_permissions``): ``mode`` ``allow_list`` or ``deny_list``."""

    mode: str
    model_ids: tuple[str, ...]

    @classmethod
    def from_api(cls, data: JSONObject) -> ModelPermissions:
        """Parse a ``project.model_permissions`` object."""
        ids = data.get("model_ids")
        return cls(mode=_req_str(data, "mode"), model_ids=tuple(str(i) for i in ids) if isinstance(ids, list) else ())


@dataclass(frozen=True, slots=True)
class ServiceTierSettings:
    """A project's service tiers (``project.service_tier_settings``, SDK 3.57).

    ``enabled_tiers`` is ``"all"`` (future tiers included) or the optional tiers enabled besides
    Standard (``flex``, ``fast``, ``ultrafast``).
    """

    default: str
    enabled_tiers: str | tuple[str, ...]

    @classmethod
    def from_api(cls, data: JSONObject) -> ServiceTierSettings:
        """Parse a ``project.service_tier_settings`` object."""
        raw = data.get("enabled_tiers")
        if raw == "all":
            tiers: str | tuple[str, ...] = "all"
        elif isinstance(raw, list):
            tiers = tuple(str(t) for t in raw)
        else:
            raise ValueError("missing or invalid field 'enabled_tiers'")
        return cls(default=_req_str(data, "default"), enabled_tiers=tiers)


# --------------------------------------------------------------------- workload identity federation


@dataclass(frozen=True, slots=True)
class WorkloadIdentityProvider:
    """An OIDC identity provider of the organisation (``organization.workload_identity_provider``).

    ``jwks`` is the uploaded key set when ``verification.type == "uploaded_jwks"`` (public keys only),
    ``None`` for discovery mode.
    """

    id: str
    name: str
    issuer: str
    audience: str
    enabled: bool
    verification_type: str | None
    jwks: Mapping[str, Any] | None
    created_at: datetime | None = None

    @classmethod
    def from_api(cls, data: JSONObject) -> WorkloadIdentityProvider:
        """Parse a provider object (SDK 3.57 ``WorkloadIdentityProvider``)."""
        verification = _obj(data, "verification")
        jwks = verification.get("jwks")
        return cls(
            id=_req_str(data, "id"),
            name=_opt_str(data, "name") or "",
            issuer=_req_str(data, "issuer"),
            audience=_opt_str(data, "audience") or "",
            enabled=data.get("enabled") is not False,
            verification_type=_opt_str(verification, "type"),
            jwks=jwks if isinstance(jwks, Mapping) else None,
            created_at=_opt_ts(data, "created_at"),
        )


@dataclass(frozen=True, slots=True)
class FederationRule:
    """A mapping from token claims to one project service account (``…workload_identity_federation_rule``).

    ``scopes`` is ``None`` for ``permissions.type == "service_account_default"``, the tuple of scopes
    for ``restricted``.
    """

    id: str
    provider_id: str
    project_id: str
    service_account_id: str
    name: str | None
    enabled: bool
    attribute_matchers: Mapping[str, str | bool | int | float]
    scopes: tuple[str, ...] | None
    created_at: datetime | None = None

    @classmethod
    def from_api(cls, data: JSONObject) -> FederationRule:
        """Parse a federation rule (SDK 3.57 ``FederationRule``)."""
        permissions = _obj(data, "permissions")
        raw_scopes = permissions.get("scopes")
        scopes = (tuple(s for s in raw_scopes if isinstance(s, str))
                  if permissions.get("type") == "restricted" and isinstance(raw_scopes, list) else None)
        matchers = data.get("attribute_matchers")
        return cls(
            id=_req_str(data, "id"),
            provider_id=_opt_str(data, "workload_identity_provider_id") or "",
            project_id=_req_str(data, "project_id"),
            service_account_id=_req_str(data, "service_account_id"),
            name=_opt_str(data, "name"),
            enabled=data.get("enabled") is not False,
            attribute_matchers=dict(matchers) if isinstance(matchers, Mapping) else {},
            scopes=scopes,
            created_at=_opt_ts(data, "created_at"),
        )
