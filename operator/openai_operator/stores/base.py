"""The one interface both destinations implement, and the values that cross it.

A :class:`SecretStore` delivers a credential (:class:`KeyMaterial`) to one destination on behalf of
one OpenAIKey (:class:`Owner`), tells what that destination holds now (:class:`Observed`, for drift
detection) and removes it again. Three promises hold for every implementation (DESIGN.md section 2,
STYLE.md practice 8):

* refuse to clobber: a Secret or Vault path that exists and is not marked as owned by this owner's
  uid is never written or deleted; ``write`` and ``observe`` raise
  :class:`~openai_operator.errors.DestinationConflictError`, ``delete`` leaves it alone;
* compare before write: writing material the destination already holds makes no write and
  returns ``changed=False``;
* optimistic concurrency: a write that races another writer fails with
  :class:`~openai_operator.errors.ConflictError` (resourceVersion, KV v2 check-and-set) instead of
  overwriting what the other writer stored.

Nothing that crosses this interface outwards carries the key: results hold an HMAC fingerprint
(:func:`~openai_operator.secretvalue.fingerprint`), never the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from openai_operator.secretvalue import SecretValue

__all__ = [
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "KeyMaterial",
    "Observed",
    "Owner",
    "SecretStore",
    "WriteResult",
]

MANAGED_BY: Final = "openai-operator"
"""The value of ``app.kubernetes.io/managed-by`` on Secrets and of ``managed-by`` in Vault metadata."""

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class Owner:
    """The OpenAIKey that owns a destination; ``uid`` is what ownership is decided on."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class KeyMaterial:
    """What gets delivered: the key itself and the facts a client needs next to it."""

    api_key: SecretValue
    project_id: str
    base_url: str | None
    key_id: str
    revision: int


@dataclass(frozen=True)
class WriteResult:
    """What a write did, in terms safe to put in status.

    ``location`` is the Secret's name or ``<mount>/<path>`` for Vault; ``fingerprint`` is the HMAC of
    the key now stored; ``version`` is the KV v2 version (``None`` for Secrets); ``changed`` is
    ``False`` when the destination already held exactly this material and nothing was written.
    """

    location: str
    fingerprint: str
    version: int | None
    changed: bool


@dataclass(frozen=True)
class Observed:
    """What an owned destination holds now: the key's fingerprint (``None`` if the field is missing)."""

    fingerprint: str | None
    version: int | None


class SecretStore(Protocol):
    """A destination for one OpenAIKey's credential (a Kubernetes Secret or a Vault KV v2 path)."""

    kind: str
    """``"secret"`` or ``"vault"``: the key under ``status.destinations``."""

    async def write(self, owner: Owner, material: KeyMaterial) -> WriteResult:
        """Create or update the destination with ``material``.

        Raises ``DestinationConflictError`` if it exists and is not owned by ``owner.uid``, and
        ``ConflictError`` if another writer changed it between read and write. No write is made when
        the destination already holds exactly this material.
        """
        ...

    async def observe(self, owner: Owner) -> Observed | None:
        """What the destination holds now; ``None`` when it is absent.

        Raises ``DestinationConflictError`` if it exists and is not owned by ``owner.uid``.
        """
        ...

    async def delete(self, owner: Owner) -> None:
        """Remove the destination. Idempotent (absent is success); never removes what ``owner`` does not own."""
        ...

    async def release(self, owner: Owner) -> None:
        """Keep the destination but stop tying its lifetime to ``owner`` (``deletionPolicy: Retain``).

        Idempotent; a destination that is absent or not owned is left alone.
        """
        ...
