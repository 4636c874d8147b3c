"""Destinations for issued keys: the :class:`SecretStore` protocol, a Kubernetes Secret and Vault KV v2.

See :mod:`openai_operator.stores.base` for the promises every store keeps (refuse to clobber,
compare before write, optimistic concurrency) and the two modules for how each one keeps them.

The Vault store is imported on first use: hvac and requests are 6 MB of an operator that may have no
Vault configured.
"""

from typing import Any

from openai_operator.stores.base import KeyMaterial, Observed, Owner, SecretStore, WriteResult
from openai_operator.stores.factory import StoreContext, store_at, stores_for
from openai_operator.stores.kubernetes import KubernetesSecretStore

__all__ = [
    "KeyMaterial",
    "KubernetesSecretStore",
    "Observed",
    "Owner",
    "SecretStore",
    "StoreContext",
    "VaultStore",
    "WriteResult",
    "build_vault_client",
    "store_at",
    "stores_for",
]


def __getattr__(name: str) -> Any:
    if name in ("VaultStore", "build_vault_client"):
        from openai_operator.stores import vault

        return getattr(vault, name)
    raise AttributeError(name)
