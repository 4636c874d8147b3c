"""What an OpenAIKey needs next: clean up, issue (or rotate to) a credential, revoke old ones.

The plan is computed from the parsed spec, the recorded status and what was observed, so the same
inputs always give the same plan and a restart at any point resumes correctly:

- a service account named for this key that status does not record was created by a run that died
  before it stored the key's value (the value is returned only once), so it is deleted before a new
  one is created;
- whether to issue is decided by a chain of triggers, first match wins (cert-manager's policy chain):
  no credential yet; a rotation already in flight (``Rotating=True`` survives a crash, so it resumes
  instead of starting a second one); the leak-response annotation; the rotate annotation; a
  destination the spec now names differently; a destination that lost or changed its value; the
  current credential missing upstream; the schedule;
- a failed attempt waits out an exponential backoff before the next one, unless the spec changed;
- previous credentials whose grace period ended are revoked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from openai_operator.model.conditions import ConditionType
from openai_operator.model.naming import parse_service_account_name
from openai_operator.model.reasons import Reason
from openai_operator.model.resources import REVOKE_ANNOTATION, ROTATE_ANNOTATION
from openai_operator.model.specs import KeySpec
from openai_operator.model.status import KeyStatus, PreviousCredential
from openai_operator.reconcile.schedule import default_spread, failure_backoff, jittered, next_rotation_at


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
    """The project's service accounts when listed (only before issuing); empty otherwise."""
    destinations: Mapping[str, DestinationState]
    """By destination kind (``secret``, ``vault``) for the destinations the spec names."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    upstream_ids: frozenset[str] | None = None
    """Service-account ids of the project's latest inventory, when it is newer than the current
    credential (so a missing id really means the credential was deleted outside the operator)."""


@dataclass(frozen=True)
class IssueDecision:
    reason: str
    message: str
    revoke_immediately: bool = False
    """Leak response: the superseded credential is revoked as soon as its successor is stored."""


@dataclass(frozen=True)
class KeyPlan:
    delete_unrecorded: tuple[SeenServiceAccount, ...] = ()
    issue: IssueDecision | None = None
    waiting_for_backoff: datetime | None = None
    """Set when a trigger fired but the last failure's backoff has not passed (retry at this time)."""
    revoke_previous: tuple[PreviousCredential, ...] = ()
    keep_previous: tuple[PreviousCredential, ...] = ()
    next_rotation_at: datetime | None = None
    rotate_token: str | None = None
    revoke_token: str | None = None


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


def planned_next_rotation(spec: KeySpec, status: KeyStatus, *, namespace: str, name: str,
                          now: datetime) -> datetime | None:
    """When the current credential is due for rotation (deterministically jittered), or ``None``."""
    if spec.rotation is None or status.key_id is None:
        return None
    issued = status.last_rotated_at or status.created_at
    if issued is None:
        return None
    due = next_rotation_at(spec.rotation, last_rotated_at=issued, now=now)
    return jittered(due, key=f"{namespace}/{name}/r{status.revision}", spread=default_spread(spec.rotation))


Trigger = Callable[["_Input"], IssueDecision | None]


@dataclass(frozen=True)
class _Input:
    spec: KeySpec
    status: KeyStatus
    observed: KeyObservation
    now: datetime
    next_rotation: datetime | None


def _no_credential(i: _Input) -> IssueDecision | None:
    if i.status.key_id is None or i.status.service_account_id is None:
        return IssueDecision(Reason.ISSUING, "issuing the first credential")
    return None


def _rotation_in_flight(i: _Input) -> IssueDecision | None:
    rotating = i.status.condition(ConditionType.ROTATING)
    if rotating is not None and rotating.status == "True":
        return IssueDecision(rotating.reason, f"resuming the rotation in flight: {rotating.message}",
                             revoke_immediately=rotating.reason == Reason.COMPROMISED)
    return None


def _revoke_annotation(i: _Input) -> IssueDecision | None:
    token = i.observed.annotations.get(REVOKE_ANNOTATION)
    if token and token != i.status.revoke_token:
        return IssueDecision(Reason.COMPROMISED, f"{REVOKE_ANNOTATION}={token}: rotate and revoke the old key now",
                             revoke_immediately=True)
    return None


def _rotate_annotation(i: _Input) -> IssueDecision | None:
    token = i.observed.annotations.get(ROTATE_ANNOTATION)
    if token and token != i.status.rotate_token:
        return IssueDecision(Reason.MANUALLY_TRIGGERED, f"{ROTATE_ANNOTATION}={token}")
    return None


def _destination_renamed(i: _Input) -> IssueDecision | None:
    recorded = recorded_locations(i.status)
    for kind, location in destination_locations(i.spec).items():
        if recorded.get(kind) != location:
            return IssueDecision(Reason.SPEC_CHANGED, f"destination {kind} is now {location!r}")
    return None


def _destination_drift(i: _Input) -> IssueDecision | None:
    delivered = i.status.destinations
    recorded = {
        "secret": delivered.secret.fingerprint if delivered.secret else None,
        "vault": delivered.vault.fingerprint if delivered.vault else None,
    }
    for kind, state in i.observed.destinations.items():
        if not state.present:
            return IssueDecision(Reason.DESTINATION_DRIFT, f"the {kind} destination no longer holds the key")
        expected = recorded.get(kind)
        if expected is not None and state.fingerprint != expected:
            return IssueDecision(Reason.DESTINATION_DRIFT, f"the {kind} destination holds a different value")
    return None


def _upstream_missing(i: _Input) -> IssueDecision | None:
    ids = i.observed.upstream_ids
    if ids is not None and i.status.service_account_id not in ids:
        return IssueDecision(Reason.UPSTREAM_KEY_MISSING,
                             f"service account {i.status.service_account_id} was deleted outside the operator")
    return None


def _scheduled(i: _Input) -> IssueDecision | None:
    if i.next_rotation is not None and i.now >= i.next_rotation:
        return IssueDecision(Reason.SCHEDULED, "the rotation schedule is due")
    return None


TRIGGERS: tuple[Trigger, ...] = (
    _no_credential,
    _rotation_in_flight,
    _revoke_annotation,
    _rotate_annotation,
    _destination_renamed,
    _destination_drift,
    _upstream_missing,
    _scheduled,
)


def backoff_until(status: KeyStatus, *, generation: int | None, namespace: str, name: str) -> datetime | None:
    """Until when a failing key waits before its next attempt; ``None`` when it need not wait.

    A spec change (a new generation) skips the wait, as in cert-manager. The jitter is derived from
    the key's name, so every evaluation gives the same time and keys failing together spread out.
    """
    if status.failed_attempts < 1 or status.last_failure_time is None:
        return None
    if generation is not None and status.observed_generation is not None and generation != status.observed_generation:
        return None
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    jitter = int.from_bytes(digest[:4], "big") / 2**32
    return status.last_failure_time + failure_backoff(status.failed_attempts, jitter=jitter)


def plan_key(
    spec: KeySpec,
    status: KeyStatus,
    observed: KeyObservation,
    *,
    namespace: str,
    name: str,
    now: datetime,
    generation: int | None = None,
) -> KeyPlan:
    """Decide the next steps for one OpenAIKey. Pure: no I/O, ``now`` is passed in."""
    next_rotation = planned_next_rotation(spec, status, namespace=namespace, name=name, now=now)
    facts = _Input(spec, status, observed, now, next_rotation)
    issue = next((d for trigger in TRIGGERS if (d := trigger(facts)) is not None), None)
    waiting = None
    until = backoff_until(status, generation=generation, namespace=namespace, name=name)
    if issue is not None and until is not None and now < until:
        issue, waiting = None, until
    return KeyPlan(
        delete_unrecorded=unrecorded_service_accounts(namespace, name, status, observed.service_accounts),
        issue=issue,
        waiting_for_backoff=waiting,
        revoke_previous=tuple(p for p in status.previous if p.revoke_at <= now),
        keep_previous=tuple(p for p in status.previous if p.revoke_at > now),
        next_rotation_at=next_rotation,
        rotate_token=observed.annotations.get(ROTATE_ANNOTATION),
        revoke_token=observed.annotations.get(REVOKE_ANNOTATION),
    )


def next_wake(status: KeyStatus, plan: KeyPlan) -> datetime | None:
    """The earliest time something becomes due for this key (rotation, revocation, backoff end)."""
    times = [t for t in (plan.next_rotation_at, plan.waiting_for_backoff) if t is not None]
    times += [p.revoke_at for p in status.previous]
    return min(times) if times else None


def grace_for(spec: KeySpec) -> timedelta:
    return spec.rotation.grace_period if spec.rotation is not None else timedelta(hours=1)
