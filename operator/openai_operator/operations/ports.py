"""The small interfaces the key operations use, so each phase can be table-tested with fakes.

The real implementations are the Admin API client (:class:`~openai_operator.openai.AdminClient`),
:class:`~openai_operator.k8s.objects.ObjectClient` and the stores; :class:`~openai_operator.deps.Deps`
hands them over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from openai_operator.openai.models import CreatedServiceAccount, ServiceAccount
from openai_operator.secretvalue import SecretValue

__all__ = ["KeyAdmin", "KeyStatusWriter"]


class KeyAdmin(Protocol):
    """The Admin API calls the key lifecycle makes."""

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


class KeyStatusWriter(Protocol):
    """Saving an OpenAIKey's status (through the ``/status`` subresource)."""

    async def patch_key_status(self, namespace: str, name: str, status: dict[str, object]) -> None: ...
