"""The destination registry's I/O half: one store builder per kind of :data:`~openai_operator.model.destinations.KINDS`.

Each kind builds its store from a parsed spec (to deliver) or from the location recorded in status
(to remove what was delivered even when the spec no longer parses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openai_operator.errors import PermanentError
from openai_operator.k8s.api import KubeApi
from openai_operator.model.destinations import KINDS
from openai_operator.model.specs import KeySpec, SecretDestination, VaultDestination
from openai_operator.stores.base import SecretStore
from openai_operator.stores.kubernetes import KubernetesSecretStore

if TYPE_CHECKING:
    import hvac

__all__ = ["StoreContext", "store_at", "stores_for"]


@dataclass(frozen=True)
class StoreContext:
    """What building a store for one key's namespace needs."""

    kube: KubeApi
    vault_client_factory: Callable[[], hvac.Client] | None
    fingerprint_key: bytes
    namespace: str

    def vault(self) -> Callable[[], hvac.Client]:
        if self.vault_client_factory is None:
            raise PermanentError("Vault is not configured for this operator")
        return self.vault_client_factory


def _secret(ctx: StoreContext, destination: SecretDestination) -> SecretStore:
    return KubernetesSecretStore(ctx.kube, ctx.namespace, destination, ctx.fingerprint_key)


def _vault(ctx: StoreContext, destination: VaultDestination) -> SecretStore:
    from openai_operator.stores.vault import VaultStore  # hvac only when a key asks for Vault

    return VaultStore(ctx.vault(), destination, ctx.fingerprint_key)


def _secret_from_spec(ctx: StoreContext, spec: KeySpec) -> SecretStore | None:
    return _secret(ctx, spec.secret) if spec.secret is not None else None


def _vault_from_spec(ctx: StoreContext, spec: KeySpec) -> SecretStore | None:
    return _vault(ctx, spec.vault) if spec.vault is not None else None


def _secret_at(ctx: StoreContext, location: str) -> SecretStore:
    return _secret(ctx, SecretDestination(name=location))


def _vault_at(ctx: StoreContext, location: str) -> SecretStore:
    # The recorded location is "<mount>/<path>"; without the spec, the mount is taken to be its first
    # segment (the default "secret" and most mounts). The store's ownership check keeps a wrong guess
    # harmless: it never deletes a path that is not marked as this key's.
    mount, _, path = location.partition("/")
    return _vault(ctx, VaultDestination(mount=mount, path=path))


_BUILDERS: dict[str, tuple[Callable[[StoreContext, KeySpec], SecretStore | None],
                           Callable[[StoreContext, str], SecretStore]]] = {
    "secret": (_secret_from_spec, _secret_at),
    "vault": (_vault_from_spec, _vault_at),
}
assert set(_BUILDERS) == set(KINDS), "every destination kind needs a store"


def stores_for(spec: KeySpec, ctx: StoreContext) -> dict[str, SecretStore]:
    """The stores for the destinations ``spec`` names, by kind, in delivery order.

    Raises ``PermanentError`` if the key asks for Vault but the operator has no Vault configured.
    Builds nothing remote: clients are created lazily by each operation.
    """
    found = {kind: _BUILDERS[kind][0](ctx, spec) for kind in KINDS}
    return {kind: store for kind, store in found.items() if store is not None}


def store_at(kind: str, location: str, ctx: StoreContext) -> SecretStore:
    """The store for what status recorded as delivered to ``location``."""
    return _BUILDERS[kind][1](ctx, location)
