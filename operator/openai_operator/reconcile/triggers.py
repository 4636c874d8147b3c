"""Why a key needs a new credential: a chain of triggers, first match wins (cert-manager's policy chain).

In order: no credential yet; a rotation already in flight (``Rotating=True`` survives a crash, so it
resumes instead of starting a second one); the leak-response annotation; the rotate annotation; a
destination the spec now names differently; a destination that lost or changed its value
(*rotate on destination drift*); the current credential deleted in OpenAI (reported by the
inventory); the schedule. Each trigger is a pure function of the gathered facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from openai_operator.model.conditions import ConditionType
from openai_operator.model.destinations import destination_locations
from openai_operator.model.reasons import Reason
from openai_operator.model.resources import REVOKE_ANNOTATION, ROTATE_ANNOTATION
from openai_operator.model.specs import KeySpec
from openai_operator.model.status import KeyStatus
from openai_operator.reconcile.facts import KeyFacts
from openai_operator.reconcile.schedule import default_spread, jittered, next_rotation_at

__all__ = ["TRIGGERS", "IssueDecision", "first_trigger", "planned_next_rotation"]


@dataclass(frozen=True)
class IssueDecision:
    """A new credential is needed; ``reason`` is a :class:`Reason` value."""

    reason: str
    message: str
    revoke_immediately: bool = False
    """Leak response: the superseded credential is revoked as soon as its successor is everywhere."""


Trigger = Callable[[KeyFacts, KeySpec, "datetime | None"], IssueDecision | None]


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


def _no_credential(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    if f.status.key_id is None or f.status.service_account_id is None:
        return IssueDecision(Reason.ISSUING, "issuing the first credential")
    return None


def _rotation_in_flight(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    rotating = f.status.condition(ConditionType.ROTATING)
    if rotating is not None and rotating.status == "True":
        return IssueDecision(rotating.reason, f"resuming the rotation in flight: {rotating.message}",
                             revoke_immediately=rotating.reason == Reason.COMPROMISED)
    return None


def _revoke_annotation(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    token = f.revoke_token
    if token and token != f.status.revoke_token:
        return IssueDecision(Reason.COMPROMISED, f"{REVOKE_ANNOTATION}={token}: rotate and revoke the old key now",
                             revoke_immediately=True)
    return None


def _rotate_annotation(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    token = f.rotate_token
    if token and token != f.status.rotate_token:
        return IssueDecision(Reason.MANUALLY_TRIGGERED, f"{ROTATE_ANNOTATION}={token}")
    return None


def _destination_renamed(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    recorded = f.status.destinations
    for kind, location in destination_locations(spec).items():
        delivery = recorded.get(kind)
        if delivery is None or delivery.location != location:
            return IssueDecision(Reason.SPEC_CHANGED, f"destination {kind} is now {location!r}")
    return None


def _destination_drift(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    for kind, state in f.destinations.items():
        if state.unknown:
            continue
        if not state.present:
            return IssueDecision(Reason.DESTINATION_DRIFT, f"the {kind} destination no longer holds the key")
        delivery = f.status.destinations.get(kind)
        expected = delivery.fingerprint if delivery is not None else None
        if expected is not None and state.fingerprint != expected:
            return IssueDecision(Reason.DESTINATION_DRIFT, f"the {kind} destination holds a different value")
    return None


def _upstream_missing(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    missing = f.status.upstream_missing
    if missing is not None and missing == f.status.service_account_id:
        return IssueDecision(Reason.UPSTREAM_KEY_MISSING, f"service account {missing} was deleted outside the operator")
    return None


def _scheduled(f: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    if due is not None and f.now >= due:
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


def first_trigger(facts: KeyFacts, spec: KeySpec, due: datetime | None) -> IssueDecision | None:
    """The first trigger that fires, or ``None``."""
    return next((d for trigger in TRIGGERS if (d := trigger(facts, spec, due)) is not None), None)
