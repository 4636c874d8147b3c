"""The steps a key plan is made of. The executor runs them in order and decides nothing.

Each action says what to do and how its failure counts: an *issue step* (``Mint``, ``Verify``,
``Deliver``, ``Promote``) that fails ends the pass and counts as a failed attempt (backoff); a
*follow-up* (``Revoke`` of a superseded credential, ``RestartTargets``) that fails is reported as
``Degraded`` and retried on its own, and never undoes what was issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from openai_operator.model.status import PendingCredential

__all__ = [
    "Action",
    "Deliver",
    "Mint",
    "Promote",
    "RemoveDestination",
    "RestartTargets",
    "Revoke",
    "RevokeWhy",
    "UpdateScopes",
    "Verify",
]

RevokeWhy: TypeAlias = Literal["leftover", "previous", "current", "pending"]


@dataclass(frozen=True)
class Revoke:
    """Delete one service account of this key (which revokes its key), after checking its name.

    ``known_name`` is set when a listing already showed the name (never from status, which is not
    trusted for a delete); otherwise the executor reads the account first and refuses to delete one
    whose name does not belong to this key. A 404 is done.
    """

    service_account_id: str
    why: RevokeWhy
    key_id: str | None = None
    known_name: str | None = None
    follow_up: bool = True
    """A failed revocation of a superseded credential is a follow-up (Degraded, retried)."""


@dataclass(frozen=True)
class Mint:
    """Record ``pending`` in status, create its service account (with a backstop expiry), restrict its
    key to ``scopes``, and record the new ids and the key's fingerprint before anything is delivered."""

    pending: PendingCredential
    expires_in_seconds: int
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Verify:
    """Call ``GET /v1/models`` with the minted key, before it reaches any destination (a few attempts).

    On failure the minted account is deleted: nothing holds its key yet."""

    attempts: int = 3


@dataclass(frozen=True)
class Deliver:
    """Write the minted key to one destination (by kind)."""

    kind: str


@dataclass(frozen=True)
class Promote:
    """Every destination holds the pending credential: make it current and start the grace of the rest."""


@dataclass(frozen=True)
class UpdateScopes:
    """Change the current key's scopes in place (no new credential)."""

    key_id: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class RemoveDestination:
    """Remove what was delivered to one destination (before its credential is revoked on purpose)."""

    kind: str
    location: str


@dataclass(frozen=True)
class RestartTargets:
    """Roll ``spec.rotation.restartTargets`` once for ``revision`` (idempotent per revision)."""

    revision: int


Action: TypeAlias = Revoke | Mint | Verify | Deliver | Promote | UpdateScopes | RemoveDestination | RestartTargets
