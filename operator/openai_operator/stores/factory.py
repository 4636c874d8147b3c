"""One :class:`~openai_operator.stores.base.SecretStore` per destination an OpenAIKey configures."""

from __future__ import annotations

from collections.abc import Callable

import hvac
from kubernetes.client import CoreV1Api

from openai_operator.errors import PermanentError
from openai_operator.model.specs import KeySpec
from openai_operator.stores.base import SecretStore
from openai_operator.stores.kubernetes import KubernetesSecretStore
from openai_operator.stores.vault import VaultStore

__all__ = ["stores_for"]


def stores_for(
    spec: KeySpec,
    namespace: str,
    *,
    core_api: CoreV1Api,
    vault_client_factory: Callable[[], hvac.Client] | None,
    fingerprint_key: bytes,
) -> list[SecretStore]:
    """The stores for ``spec.secret`` and ``spec.vault``, in that order (only those set).

    Raises ``PermanentError`` if the key asks for Vault but the operator has no Vault configured.
    Builds nothing remote: clients are created lazily by each operation.
    """
    stores: list[SecretStore] = []
    if spec.secret is not None:
        stores.append(KubernetesSecretStore(core_api, namespace, spec.secret, fingerprint_key))
    if spec.vault is not None:
        if vault_client_factory is None:
            raise PermanentError("Vault is not configured for this operator")
        stores.append(VaultStore(vault_client_factory, spec.vault, fingerprint_key))
    return stores
