"""What the key planner is given: everything gathered for one pass over one OpenAIKey.

The gatherer (:mod:`openai_operator.operations.key_gather`) fills these in; the planner reads only
these, so a table test can state a situation in a few lines and check the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from openai_operator.errors import SpecError
from openai_operator.model.specs import KeySpec
from openai_operator.model.status import KeyStatus
from openai_operator.reconcile.policy import ProjectView

__all__ = ["DestinationState", "KeyFacts", "KeySettings", "SeenServiceAccount", "needs_account_listing"]


@dataclass(frozen=True)
class SeenServiceAccount:
    """A service account listed in the key's project."""

    id: str
    name: str


@dataclass(frozen=True)
class DestinationState:
    """One destination as observed.

    ``unknown``: it could not be read (Vault unreachable, apiserver busy), so nothing may be concluded
    from it — in particular not that it does not hold a credential. ``foreign``: it exists and is not
    ours; it is never written.
    """

    present: bool
    fingerprint: str | None = None
    version: int | None = None
    unknown: bool = False
    foreign: bool = False
    detail: str = ""

    @classmethod
    def absent(cls) -> DestinationState:
        return cls(False)

    @classmethod
    def holding(cls, fingerprint: str | None, version: int | None = None) -> DestinationState:
        return cls(True, fingerprint, version)

    @classmethod
    def unreadable(cls, detail: str) -> DestinationState:
        return cls(False, unknown=True, detail=detail)

    @classmethod
    def not_ours(cls, detail: str) -> DestinationState:
        return cls(True, foreign=True, detail=detail)


@dataclass(frozen=True)
class KeySettings:
    """The operator settings a key's plan depends on."""

    instance_id: str
    key_expiry_margin: timedelta = timedelta(days=7)
    default_key_lifetime: timedelta = timedelta(days=90)
    min_rotation_interval: timedelta | None = None
    """The operator's floor on rotation frequency (``--min-rotation-interval``)."""
    verify_attempts: int = 3
    """How often a new key's verification is tried within one pass before the issue fails."""
    vault_prefix: str = "openai/{namespace}/"
    resync_interval: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class KeyFacts:
    """One OpenAIKey and the world around it, at ``now``."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    now: datetime
    status: KeyStatus
    settings: KeySettings
    spec: KeySpec | None = None
    spec_error: SpecError | None = None
    """Why the spec (or a trigger annotation) does not parse; ``spec`` is then ``None``."""
    rotate_token: str | None = None
    revoke_token: str | None = None
    project: ProjectView | None = None
    namespace_labels: Mapping[str, str] | None = None
    other_keys_holding: int = 0
    """Other keys of the project that hold a credential or are issuing one (for ``maxKeys``), counting
    those this operator admitted a moment ago that the index does not show yet."""
    destinations: Mapping[str, DestinationState] = field(default_factory=dict)
    """Observed state of each destination the spec names, by kind."""
    listed_accounts: Sequence[SeenServiceAccount] | None = None
    """The project's service accounts, listed only when :func:`needs_account_listing` said so."""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def needs_account_listing(status: KeyStatus) -> bool:
    """Whether the project's service accounts must be listed before planning.

    Only when an issue was interrupted before OpenAI's answer was recorded: then an account named
    ``status.pending.serviceAccountName`` may exist, and only a listing finds it by name. A healthy
    issue records the account id right after the create, so it never costs a listing.
    """
    return status.pending is not None and status.pending.service_account_id is None
