"""The destination kinds an OpenAIKey can deliver to, as a registry (the External Secrets pattern).

Each kind names the ``spec`` field that configures it (which is also its key under
``status.destinations``), the field its status record uses for the location (``name`` for a Secret,
``path`` for Vault) and how to read the location from a parsed spec. The planner, the executor and
the status model only ever iterate over :data:`KINDS`; the I/O half of a kind (its store) registers
itself in :mod:`openai_operator.stores.factory`. Adding a destination means one entry here, its
spec field in :mod:`~openai_operator.model.specs`, its store module and the CRD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openai_operator.model.specs import KeySpec

__all__ = ["KINDS", "DestinationKind", "destination_locations"]


@dataclass(frozen=True)
class DestinationKind:
    """One kind of destination, as far as planning and status are concerned."""

    name: str
    """The ``spec`` field and the key under ``status.destinations`` (``secret``, ``vault``)."""
    location_field: str
    """The field of the status record that holds the location (``name``, ``path``)."""
    locate: Callable[[KeySpec], str | None]
    """Where ``spec`` sends the key for this kind (``None`` when the spec does not use it)."""


def _secret_location(spec: KeySpec) -> str | None:
    return spec.secret.name if spec.secret is not None else None


def _vault_location(spec: KeySpec) -> str | None:
    return f"{spec.vault.mount}/{spec.vault.path}" if spec.vault is not None else None


KINDS: dict[str, DestinationKind] = {
    kind.name: kind
    for kind in (
        DestinationKind("secret", "name", _secret_location),
        DestinationKind("vault", "path", _vault_location),
    )
}
"""Every destination kind, in delivery order (the Secret first: it is what workloads mount)."""


def destination_locations(spec: KeySpec) -> dict[str, str]:
    """Where the spec says the key goes, by kind, in delivery order."""
    found = {name: kind.locate(spec) for name, kind in KINDS.items()}
    return {name: location for name, location in found.items() if location is not None}
