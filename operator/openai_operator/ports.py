"""The small interfaces the operations use, so each phase can be table-tested with fakes.

:class:`~openai_operator.deps.Deps` types its collaborators with these protocols; the real
implementations are :class:`~openai_operator.openai.AdminClient` and
:class:`~openai_operator.k8s.objects.ObjectClient` (mypy checks that they fit, where ``build_deps``
builds them), and the table tests pass fakes (``tests/unit/test_key_execution.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from openai_operator.openai.models import (
    CostBucket,
    CreatedServiceAccount,
    FederationRule,
    Invite,
    ModelPermissions,
    OrgUser,
    Project,
    ProjectUser,
    RateLimit,
    ServiceAccount,
    ServiceTierSettings,
    SpendAlert,
    SpendLimit,
    WorkloadIdentityProvider,
)
from openai_operator.secretvalue import SecretValue

if TYPE_CHECKING:
    from openai_operator.k8s.identity import Issuer, WorkloadPatchResult
    from openai_operator.model.identity import WorkloadRef

__all__ = [
    "AdminApi",
    "CostsAdmin",
    "IdentityAdmin",
    "IdentityCluster",
    "KeyAdmin",
    "ObjectStore",
    "ProjectAccessAdmin",
    "ProjectAdmin",
]


class KeyAdmin(Protocol):
    """The Admin API calls of the key lifecycle and the inventory."""

    async def create_service_account(
        self, project_id: str, name: str, *, expires_in_seconds: int | None = None
    ) -> CreatedServiceAccount: ...

    async def get_service_account(self, project_id: str, service_account_id: str) -> ServiceAccount: ...

    async def delete_service_account(self, project_id: str, service_account_id: str) -> bool: ...

    async def rename_service_account(self, project_id: str, service_account_id: str, name: str) -> ServiceAccount: ...

    async def list_service_accounts(self, project_id: str, *, page_size: int = 100) -> list[ServiceAccount]: ...

    async def update_project_api_key(
        self, project_id: str, key_id: str, *, scopes: Sequence[str] | None = None,
        expires_in_seconds: int | None = None,
    ) -> object: ...

    async def verify_key(self, key: SecretValue) -> None: ...


class ProjectAccessAdmin(Protocol):
    """Who may use a project and what it may call: its users, invites, model permissions, service tiers."""

    async def list_project_users(self, project_id: str, *, page_size: int = 100) -> list[ProjectUser]: ...

    async def add_project_user(self, project_id: str, user_id: str, role: str) -> ProjectUser: ...

    async def update_project_user(self, project_id: str, user_id: str, role: str) -> ProjectUser: ...

    async def remove_project_user(self, project_id: str, user_id: str) -> bool: ...

    async def list_org_users(self, *, emails: Sequence[str] = (), page_size: int = 100) -> list[OrgUser]: ...

    async def list_invites(self, *, page_size: int = 100) -> list[Invite]: ...

    async def create_invite(
        self, email: str, *, role: str = "reader", projects: Mapping[str, str] | None = None
    ) -> Invite: ...

    async def delete_invite(self, invite_id: str) -> bool: ...

    async def get_model_permissions(self, project_id: str) -> ModelPermissions: ...

    async def set_model_permissions(
        self, project_id: str, mode: str, model_ids: Sequence[str]
    ) -> ModelPermissions: ...

    async def delete_model_permissions(self, project_id: str) -> bool: ...

    async def get_service_tier_settings(self, project_id: str) -> ServiceTierSettings: ...

    async def update_service_tier_settings(
        self, project_id: str, *, default: str | None = None, enabled_tiers: str | Sequence[str] | None = None
    ) -> ServiceTierSettings: ...


class ProjectAdmin(ProjectAccessAdmin, Protocol):
    """The Admin API calls of the project lifecycle."""

    async def get_project(self, project_id: str) -> Project: ...

    async def create_project(self, name: str) -> Project: ...

    async def rename_project(self, project_id: str, name: str) -> Project: ...

    async def archive_project(self, project_id: str) -> Project: ...

    async def list_rate_limits(self, project_id: str, *, page_size: int = 100) -> list[RateLimit]: ...

    async def modify_rate_limit(
        self,
        project_id: str,
        rate_limit_id: str,
        *,
        max_requests_per_1_minute: int | None = None,
        max_tokens_per_1_minute: int | None = None,
        max_images_per_1_minute: int | None = None,
        max_audio_megabytes_per_1_minute: int | None = None,
        max_requests_per_1_day: int | None = None,
        batch_1_day_max_input_tokens: int | None = None,
    ) -> object: ...

    async def get_spend_limit(self, project_id: str) -> SpendLimit | None: ...

    async def set_spend_limit(
        self, project_id: str, threshold_cents: int, *, currency: str = "USD", interval: str = "month"
    ) -> SpendLimit: ...

    async def delete_spend_limit(self, project_id: str) -> bool: ...

    async def list_spend_alerts(self, project_id: str, *, page_size: int = 100) -> list[SpendAlert]: ...

    async def create_spend_alert(
        self, project_id: str, threshold_cents: int, recipients: Sequence[str], *,
        subject_prefix: str | None = None, currency: str = "USD", interval: str = "month",
    ) -> SpendAlert: ...

    async def update_spend_alert(
        self, project_id: str, alert_id: str, threshold_cents: int, recipients: Sequence[str], *,
        subject_prefix: str | None = None, currency: str = "USD", interval: str = "month",
    ) -> SpendAlert: ...

    async def delete_spend_alert(self, project_id: str, alert_id: str) -> bool: ...


class CostsAdmin(Protocol):
    """What the spend poller asks: the organisation's daily cost buckets."""

    async def costs(
        self,
        *,
        start_time: datetime | int,
        end_time: datetime | int | None = None,
        group_by: Sequence[str] = (),
        project_ids: Sequence[str] = (),
        api_key_ids: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[CostBucket]: ...

    def server_time(self, local: datetime) -> datetime: ...


class AdminApi(KeyAdmin, ProjectAdmin, CostsAdmin, Protocol):
    """Everything the operations ask of the OpenAI Admin API."""


class ObjectStore(Protocol):
    """Reading and saving the operator's own objects (status through the ``/status`` subresource)."""

    async def get_key(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_key_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...

    async def get_project(self, name: str) -> dict[str, Any] | None: ...

    async def patch_project_status(self, name: str, status: Mapping[str, Any]) -> None: ...

    async def cluster_peering_exists(self, name: str) -> bool: ...


class IdentityAdmin(Protocol):
    """The Admin API calls of workload identity federation (providers, rules, keyless service accounts)."""

    async def create_service_account(
        self, project_id: str, name: str, *, expires_in_seconds: int | None = None
    ) -> CreatedServiceAccount: ...

    async def get_service_account(self, project_id: str, service_account_id: str) -> ServiceAccount: ...

    async def list_service_accounts(self, project_id: str, *, page_size: int = 100) -> list[ServiceAccount]: ...

    async def delete_service_account(self, project_id: str, service_account_id: str) -> bool: ...

    async def delete_project_api_key(self, project_id: str, key_id: str) -> bool: ...

    async def list_identity_providers(self, *, page_size: int = 100) -> list[WorkloadIdentityProvider]: ...

    async def create_identity_provider(
        self, *, name: str, issuer: str, audience: str, jwks: Mapping[str, Any], description: str | None = None,
    ) -> WorkloadIdentityProvider: ...

    async def update_identity_provider(
        self, provider_id: str, *, jwks: Mapping[str, Any] | None = None, audience: str | None = None,
        issuer: str | None = None, enabled: bool | None = None,
    ) -> WorkloadIdentityProvider: ...

    async def delete_identity_provider(self, provider_id: str) -> bool: ...

    async def list_federation_rules(
        self, provider_id: str, *, service_account_id: str | None = None, page_size: int = 100,
    ) -> list[FederationRule]: ...

    async def get_federation_rule(self, provider_id: str, rule_id: str) -> FederationRule: ...

    async def create_federation_rule(
        self, provider_id: str, *, project_id: str, service_account_id: str,
        attribute_matchers: Mapping[str, str | bool | int | float], scopes: Sequence[str] | None = None,
        name: str | None = None,
    ) -> FederationRule: ...

    async def update_federation_rule(
        self, provider_id: str, rule_id: str, *, attribute_matchers: Mapping[str, str | bool | int | float],
        scopes: Sequence[str] | None, enabled: bool = True,
    ) -> FederationRule: ...

    async def delete_federation_rule(self, provider_id: str, rule_id: str) -> bool: ...


class IdentityCluster(Protocol):
    """The Kubernetes calls of workload identity (the issuer, both kinds, the ConfigMap, the workloads)."""

    async def read_issuer(self) -> Issuer: ...

    async def get_identity_provider(self, name: str) -> dict[str, Any] | None: ...

    async def patch_identity_provider_status(self, name: str, status: Mapping[str, Any]) -> None: ...

    async def get_workload_identity(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_workload_identity_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...

    async def apply_config_map(self, namespace: str, name: str, data: Mapping[str, str], *, owner_name: str,
                               owner_uid: str) -> None: ...

    async def patch_workloads(
        self, namespace: str, workloads: Sequence[WorkloadRef], *, service_account: str, config_map: str,
        data: Mapping[str, str], audience: str, expiration_seconds: int,
    ) -> WorkloadPatchResult: ...
