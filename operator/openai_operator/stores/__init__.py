"""Destinations for issued keys: the :class:`SecretStore` protocol, a Kubernetes Secret and Vault KV v2.

See :mod:`openai_operator.stores.base` for the promises every store keeps (refuse to clobber,
compare before write, optimistic concurrency) and the two modules for how each one keeps them.
"""

from openai_operator.stores.base import KeyMaterial, Observed, Owner, SecretStore, WriteResult
from openai_operator.stores.factory import StoreContext, store_at, stores_for
from openai_operator.stores.kubernetes import KubernetesSecretStore
from openai_operator.stores.vault import VaultStore, build_vault_client

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
