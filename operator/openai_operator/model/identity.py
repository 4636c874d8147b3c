"""Typed views of the two workload-identity kinds: ``OpenAIIdentityProvider`` and ``OpenAIWorkloadIdentity``.

``OpenAIIdentityProvider`` (cluster-scoped, platform-owned) registers the cluster's service-account
issuer with OpenAI and keeps its uploaded JWKS in step with the apiserver's signing keys.
``OpenAIWorkloadIdentity`` (namespaced, tenant-owned) maps one Kubernetes ServiceAccount of its
namespace to one OpenAI service account without a key. Specs are parsed here (failures are
:class:`~openai_operator.errors.SpecError` naming the field), statuses read and written here, and
the upstream names the operator gives its service accounts and rules are made and recognised here.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from openai_operator.model._base import SpecModel
from openai_operator.model.conditions import Condition, conditions_from_list, conditions_to_list, set_condition
from openai_operator.model.naming import INSTANCE_ID_PATTERN
from openai_operator.model.specs import DnsSubdomain, Duration, ProjectRef, Scope, _as_mapping, _FieldError, _spec_error
from openai_operator.model.status import Spend
from openai_operator.model.timestamps import format_time, parse_time

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_SYNC_INTERVAL",
    "DEFAULT_TOKEN_EXPIRATION_SECONDS",
    "IDENTITY_PREFIX",
    "MAX_MAPPINGS_PER_PROVIDER",
    "MAX_PROVIDERS_PER_ORG",
    "MIN_SYNC_INTERVAL",
    "READ_ONLY_SCOPES",
    "TOKEN_MOUNT_DIR",
    "TOKEN_PATH",
    "ConfigMapRef",
    "IdentityAccountName",
    "IdentityProviderSpec",
    "IdentityProviderStatus",
    "Permissions",
    "ProviderRef",
    "ProviderSlot",
    "WorkloadIdentitySpec",
    "WorkloadIdentityStatus",
    "WorkloadKind",
    "WorkloadRef",
    "identity_account_name",
    "parse_identity_account_name",
    "parse_identity_provider_spec",
    "parse_workload_identity_spec",
    "provider_name",
    "subject_of",
]

DEFAULT_AUDIENCE: Final = "https://api.openai.com/v1"
"""The audience OpenAI's Kubernetes guide uses; the projected token and the provider must agree."""
DEFAULT_SYNC_INTERVAL: Final = timedelta(minutes=1)
MIN_SYNC_INTERVAL: Final = timedelta(seconds=1)
MAX_MAPPINGS_PER_PROVIDER: Final = 50
"""Federation rules OpenAI allows per provider."""
MAX_PROVIDERS_PER_ORG: Final = 50
"""Providers OpenAI allows per organisation."""
READ_ONLY_SCOPES: Final = ("api.all.read",)
"""What ``permissions: ReadOnly`` sends (the same scope a read-only key gets)."""
IDENTITY_PREFIX: Final = "wif"
DEFAULT_TOKEN_EXPIRATION_SECONDS: Final = 3600
TOKEN_MOUNT_DIR: Final = "/var/run/secrets/openai"  # noqa: S105 (a path, not a password)
TOKEN_PATH: Final = f"{TOKEN_MOUNT_DIR}/token"
MAX_NAME_LENGTH: Final = 64
_DIGEST = 32


# --- specs --------------------------------------------------------------------------------------


class IdentityProviderSpec(SpecModel):
    """``OpenAIIdentityProvider.spec``: the audience tokens must carry, and how often to re-read the JWKS."""

    audience: str = Field(default=DEFAULT_AUDIENCE, min_length=1, max_length=1024)
    sync_interval: Duration = DEFAULT_SYNC_INTERVAL

    @field_validator("sync_interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < MIN_SYNC_INTERVAL:
            raise ValueError("must be at least 1s")
        return value


class Permissions(StrEnum):
    ALL = "All"
    READ_ONLY = "ReadOnly"
    RESTRICTED = "Restricted"


class WorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"


class WorkloadRef(SpecModel):
    """A workload of the identity's namespace that gets the projected token and the environment."""

    kind: WorkloadKind
    name: DnsSubdomain


class ConfigMapRef(SpecModel):
    name: DnsSubdomain


class ProviderRef(SpecModel):
    name: DnsSubdomain


class WorkloadIdentitySpec(SpecModel):
    """``OpenAIWorkloadIdentity.spec``."""

    project_ref: ProjectRef
    service_account_name: DnsSubdomain
    permissions: Permissions = Permissions.ALL
    scopes: tuple[Scope, ...] = Field(default=(), max_length=32)
    provider_ref: ProviderRef | None = None
    config_map: ConfigMapRef
    token_expiration_seconds: int = Field(default=DEFAULT_TOKEN_EXPIRATION_SECONDS, ge=600, le=86400)
    workloads: tuple[WorkloadRef, ...] = Field(default=(), max_length=16)

    @model_validator(mode="after")
    def _scopes_only_when_restricted(self) -> Self:
        if self.permissions == Permissions.RESTRICTED and not self.scopes:
            raise _FieldError("scopes", "permissions: Restricted needs at least one scope")
        if self.permissions != Permissions.RESTRICTED and self.scopes:
            raise _FieldError("scopes", "scopes are only allowed with permissions: Restricted")
        if len(set(self.scopes)) != len(self.scopes):
            raise _FieldError("scopes", "scopes must be unique")
        seen = {(w.kind, w.name) for w in self.workloads}
        if len(seen) != len(self.workloads):
            raise _FieldError("workloads", "each workload may be listed once")
        return self

    @property
    def rule_scopes(self) -> tuple[str, ...] | None:
        """The rule's restricted scopes, or ``None`` for the service account's default permissions."""
        if self.permissions == Permissions.ALL:
            return None
        if self.permissions == Permissions.READ_ONLY:
            return READ_ONLY_SCOPES
        return tuple(self.scopes)


def parse_identity_provider_spec(spec: Mapping[str, Any] | None) -> IdentityProviderSpec:
    try:
        return IdentityProviderSpec.model_validate(_as_mapping(spec), by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _spec_error(exc) from None


def parse_workload_identity_spec(spec: Mapping[str, Any] | None, *, name: str) -> WorkloadIdentitySpec:
    """Parse ``OpenAIWorkloadIdentity.spec``; ``configMap.name`` defaults to ``metadata.name``."""
    data = _as_mapping(spec)
    config_map = data.get("configMap")
    if config_map is None:
        data["configMap"] = {"name": name}
    elif isinstance(config_map, Mapping) and "name" not in config_map:
        data["configMap"] = {**config_map, "name": name}
    try:
        return WorkloadIdentitySpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _spec_error(exc) from None


def subject_of(namespace: str, service_account: str) -> str:
    """The ``sub`` claim of a projected token of ``namespace/service_account``: the rule matches it exactly."""
    return f"system:serviceaccount:{namespace}:{service_account}"


# --- upstream names -----------------------------------------------------------------------------

_DNS_LABEL_RE = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN_RE = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
_FULL = re.compile(
    rf"^{IDENTITY_PREFIX}\.(?P<inst>[a-z0-9]{{1,12}})\.(?P<ns>{_DNS_LABEL_RE})\.(?P<name>{_DNS_SUBDOMAIN_RE})$"
)
_SHORT = re.compile(rf"^{IDENTITY_PREFIX}\.(?P<inst>[a-z0-9]{{1,12}})\.[-a-z0-9.]*_(?P<digest>[0-9a-f]{{{_DIGEST}}})$")


def _digest(namespace: str, name: str) -> str:
    return hashlib.sha256(f"identity/{namespace}/{name}".encode()).hexdigest()[:_DIGEST]


def identity_account_name(instance: str, namespace: str, name: str) -> str:
    """The OpenAI service account (and federation rule) name of the OpenAIWorkloadIdentity ``namespace/name``.

    ``wif.<instance>.<namespace>.<name>``, shortened with a 128-bit digest past 64 characters. The
    ``wif.`` prefix keeps it apart from key accounts (``k8s.``): the inventory judges each kind by
    its own objects.
    """
    if not INSTANCE_ID_PATTERN.fullmatch(instance):
        raise ValueError(f"not an instance id: {instance!r}")
    full = f"{IDENTITY_PREFIX}.{instance}.{namespace}.{name}"
    if len(full) <= MAX_NAME_LENGTH:
        return full
    suffix = f"_{_digest(namespace, name)}"
    room = MAX_NAME_LENGTH - len(IDENTITY_PREFIX) - len(instance) - 2 - len(suffix)
    return f"{IDENTITY_PREFIX}.{instance}.{f'{namespace}.{name}'[:max(room, 0)].rstrip('.-')}{suffix}"


@dataclass(frozen=True, slots=True)
class IdentityAccountName:
    """A parsed ``wif.`` name: the instance, and ``namespace.name`` (full form) or the digest (shortened)."""

    instance: str
    owner: str
    shortened: bool

    def belongs_to(self, instance: str, namespace: str, name: str) -> bool:
        """Whether this name was made by ``instance`` for the OpenAIWorkloadIdentity ``namespace/name``."""
        if self.instance != instance:
            return False
        if self.shortened:
            return self.owner == _digest(namespace, name)
        return self.owner == f"{namespace}.{name}"


def parse_identity_account_name(value: str) -> IdentityAccountName | None:
    """Recognise a name :func:`identity_account_name` could have made (``None`` for anything else)."""
    if len(value) > MAX_NAME_LENGTH:
        return None
    full = _FULL.fullmatch(value)
    if full is not None:
        return IdentityAccountName(full["inst"], f"{full['ns']}.{full['name']}", False)
    short = _SHORT.fullmatch(value)
    if short is not None:
        return IdentityAccountName(short["inst"], short["digest"], True)
    return None


def provider_name(instance: str, cluster_provider: str, index: int) -> str:
    """The OpenAI provider name of slot ``index`` (0, 1, …) of an OpenAIIdentityProvider."""
    return f"{IDENTITY_PREFIX}.{instance}.{cluster_provider}.{index}"


# --- status -------------------------------------------------------------------------------------


def _str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ProviderSlot:
    """One OpenAI provider registered for the cluster's issuer, with the mappings it holds."""

    id: str
    mappings: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "mappings": self.mappings}


@dataclass(frozen=True, slots=True)
class IdentityProviderStatus:
    conditions: tuple[Condition, ...] = ()
    issuer: str | None = None
    audience: str | None = None
    providers: tuple[ProviderSlot, ...] = ()
    jwks_fingerprint: str | None = None
    key_ids: tuple[str, ...] = ()
    last_sync_time: datetime | None = None
    observed_generation: int | None = None

    @property
    def provider_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.providers)

    @property
    def mappings_used(self) -> int:
        return sum(p.mappings for p in self.providers)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> IdentityProviderStatus:
        raw = raw or {}
        slots = []
        for item in raw.get("providers") or ():
            if isinstance(item, Mapping) and _str(item, "id"):
                mappings = item.get("mappings")
                slots.append(ProviderSlot(str(item["id"]), mappings if isinstance(mappings, int) else 0))
        generation = raw.get("observedGeneration")
        return cls(
            conditions=tuple(conditions_from_list(raw.get("conditions"))),
            issuer=_str(raw, "issuer"),
            audience=_str(raw, "audience"),
            providers=tuple(slots),
            jwks_fingerprint=_str(raw, "jwksFingerprint"),
            key_ids=tuple(k for k in raw.get("keyIds") or () if isinstance(k, str)),
            last_sync_time=parse_time(raw.get("lastSyncTime")),
            observed_generation=generation if isinstance(generation, int) else None,
        )

    def to_patch(self) -> dict[str, Any]:
        return {
            "conditions": conditions_to_list(self.conditions),
            "issuer": self.issuer,
            "audience": self.audience,
            "providers": [p.to_dict() for p in self.providers],
            "providerIds": list(self.provider_ids),
            "jwksFingerprint": self.jwks_fingerprint,
            "keyIds": list(self.key_ids),
            "lastSyncTime": format_time(self.last_sync_time) if self.last_sync_time else None,
            "mappingsUsed": self.mappings_used,
            "mappingsCapacity": MAX_MAPPINGS_PER_PROVIDER * max(len(self.providers), 1),
            "observedGeneration": self.observed_generation,
        }

    def with_condition(self, type: str, status: bool, reason: str, message: str, now: datetime,
                       generation: int | None = None) -> IdentityProviderStatus:
        updated = set_condition(list(self.conditions), type, status, reason, message, generation, now)
        return replace(self, conditions=tuple(updated))


@dataclass(frozen=True, slots=True)
class WorkloadIdentityStatus:
    conditions: tuple[Condition, ...] = ()
    project_id: str | None = None
    identity_provider_id: str | None = None
    service_account_id: str | None = None
    federation_rule_id: str | None = None
    subject: str | None = None
    config_map_name: str | None = None
    audience: str | None = None
    spend: Spend | None = None
    observed_generation: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> WorkloadIdentityStatus:
        raw = raw or {}
        spend_raw = raw.get("spend")
        generation = raw.get("observedGeneration")
        return cls(
            conditions=tuple(conditions_from_list(raw.get("conditions"))),
            project_id=_str(raw, "projectId"),
            identity_provider_id=_str(raw, "identityProviderId"),
            service_account_id=_str(raw, "serviceAccountId"),
            federation_rule_id=_str(raw, "federationRuleId"),
            subject=_str(raw, "subject"),
            config_map_name=_str(raw, "configMapName"),
            audience=_str(raw, "audience"),
            spend=Spend.from_dict(spend_raw) if isinstance(spend_raw, Mapping) else None,
            observed_generation=generation if isinstance(generation, int) else None,
        )

    def to_patch(self) -> dict[str, Any]:
        """The lifecycle's fields (the spend poller owns ``spend``, so it is not written here)."""
        return {
            "conditions": conditions_to_list(self.conditions),
            "projectId": self.project_id,
            "identityProviderId": self.identity_provider_id,
            "serviceAccountId": self.service_account_id,
            "federationRuleId": self.federation_rule_id,
            "subject": self.subject,
            "configMapName": self.config_map_name,
            "audience": self.audience,
            "observedGeneration": self.observed_generation,
        }

    def with_condition(self, type: str, status: bool, reason: str, message: str, now: datetime,
                       generation: int | None = None) -> WorkloadIdentityStatus:
        updated = set_condition(list(self.conditions), type, status, reason, message, generation, now)
        return replace(self, conditions=tuple(updated))

