"""What an OpenAIKey needs next: clean up, issue a credential, revoke old ones.

The plan is computed from the parsed spec, the recorded status and what was observed (the
fingerprints found in each destination and the operator-named service accounts that exist for this
key), so the same inputs always give the same plan and a restart at any point resumes correctly:

- a service account named for this key that status does not record was created by a run that died
  before it stored the key's value (the value is returned only once), so it is deleted;
- no credential yet, a destination that lost or changed its value, or a destination the spec now
  names differently means a (new) credential is issued;
- previous credentials whose grace period ended are revoked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from openai_operator.model.naming import parse_service_account_name
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeySpec
from openai_operator.model.status import KeyStatus, PreviousCredential


@dataclass(frozen=True)
class SeenServiceAccount:
    """A service account listed in the key's project."""

    id: str
    name: str


@dataclass(frozen=True)
class DestinationState:
    """One destination as observed: absent, or holding a value with this fingerprint."""

    present: bool
    fingerprint: str | None = None


@dataclass(frozen=True)
class KeyObservation:
    service_accounts: Sequence[SeenServiceAccount]
    """Every service account of the project (one paged list), or only this key's when filtered."""
    destinations: Mapping[str, DestinationState]
    """By destination kind (``secret``, ``vault``) for the destinations the spec names."""


@dataclass(frozen=True)
class IssueDecision:
    reason: str
    message: str


@dataclass(frozen=True)
class KeyPlan:
    delete_unrecorded: tuple[SeenServiceAccount, ...] = ()
    issue: IssueDecision | None = None
    revoke_previous: tuple[PreviousCredential, ...] = ()
    keep_previous: tuple[PreviousCredential, ...] = field(default=())


def destination_locations(spec: KeySpec) -> dict[str, str]:
    """Where the spec says the key goes, by destination kind (compared with what status recorded)."""
    locations: dict[str, str] = {}
    if spec.secret is not None:
        locations["secret"] = spec.secret.name
    if spec.vault is not None:
        locations["vault"] = f"{spec.vault.mount}/{spec.vault.path}"
    return locations


def recorded_locations(status: KeyStatus) -> dict[str, str]:
    locations: dict[str, str] = {}
    if status.destinations.secret is not None:
        locations["secret"] = status.destinations.secret.name
    if status.destinations.vault is not None:
        locations["vault"] = status.destinations.vault.path
    return locations


def recorded_fingerprints(status: KeyStatus) -> dict[str, str | None]:
    fingerprints: dict[str, str | None] = {}
    if status.destinations.secret is not None:
        fingerprints["secret"] = status.destinations.secret.fingerprint
    if status.destinations.vault is not None:
        fingerprints["vault"] = None
    return fingerprints


def unrecorded_service_accounts(
    namespace: str, name: str, status: KeyStatus, seen: Sequence[SeenServiceAccount]
) -> tuple[SeenServiceAccount, ...]:
    """Service accounts named for this key that status neither holds as current nor as previous."""
    known = {status.service_account_id, *(p.service_account_id for p in status.previous)}
    found = []
    for account in seen:
        parsed = parse_service_account_name(account.name)
        if parsed is None or not parsed.belongs_to(namespace, name):
            continue
        if account.id not in known:
            found.append(account)
    return tuple(found)


def _issue_decision(spec: KeySpec, status: KeyStatus, observed: KeyObservation) -> IssueDecision | None:
    if status.key_id is None or status.service_account_id is None:
        return IssueDecision(Reason.ISSUING, "issuing the first credential")
    wanted = destination_locations(spec)
    recorded = recorded_locations(status)
    for kind, location in wanted.items():
        if recorded.get(kind) != location:
            return IssueDecision(Reason.SPEC_CHANGED, f"destination {kind} is now {location!r}")
    for kind, state in observed.destinations.items():
        if not state.present:
            return IssueDecision(Reason.DESTINATION_DRIFT, f"the {kind} destination no longer holds the key")
        expected = recorded_fingerprints(status).get(kind)
        if expected is not None and state.fingerprint != expected:
            return IssueDecision(Reason.DESTINATION_DRIFT, f"the {kind} destination holds a different value")
    return None


def plan_key(
    spec: KeySpec,
    status: KeyStatus,
    observed: KeyObservation,
    *,
    namespace: str,
    name: str,
    now: datetime,
) -> KeyPlan:
    """Decide the next steps for one OpenAIKey. Pure: no I/O, ``now`` is passed in."""
    due = tuple(p for p in status.previous if p.revoke_at <= now)
    keep = tuple(p for p in status.previous if p.revoke_at > now)
    return KeyPlan(
        delete_unrecorded=unrecorded_service_accounts(namespace, name, status, observed.service_accounts),
        issue=_issue_decision(spec, status, observed),
        revoke_previous=due,
        keep_previous=keep,
    )
