"""Kubernetes-style conditions and the one helper that changes them.

Each condition is ``{type, status, reason, message, lastTransitionTime, observedGeneration}``, as in
``metav1.Condition``. :func:`set_condition` returns a new list: it replaces the condition of the
given type in place (keeping the order), appends it when absent, and keeps ``lastTransitionTime``
when the status did not change, so "Ready since" stays truthful across reconciles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeAlias

from openai_operator.errors import scrub
from openai_operator.model.timestamps import format_time, parse_time

__all__ = [
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "conditions_from_list",
    "conditions_to_list",
    "get_condition",
    "is_true",
    "set_condition",
]

ConditionStatus: TypeAlias = Literal["True", "False", "Unknown"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MESSAGE_LENGTH = 32768
"""The CRD's ``maxLength`` for ``message``; longer messages are cut to fit."""


class ConditionType(StrEnum):
    """Condition types used by the two kinds."""

    READY = "Ready"
    """Both kinds: the object is usable (key delivered and verified; project exists upstream)."""
    ROTATING = "Rotating"
    """OpenAIKey: a new credential is being issued; the reason says why."""
    BUDGET_EXCEEDED = "BudgetExceeded"
    """Both kinds: spend this period reached ``spec.budget.monthlyUSD``."""
    DEGRADED = "Degraded"
    """OpenAIKey: a follow-up (restart of a target, revocation of a superseded credential) failed after
    the credential was delivered and recorded; it is retried on its own and the key stays usable."""
    RATE_LIMITS_SYNCED = "RateLimitsSynced"
    """OpenAIProject: ``spec.rateLimits`` match OpenAI's project rate limits."""
    BUDGET_SYNCED = "BudgetSynced"
    """OpenAIProject: ``spec.budget`` is mirrored to OpenAI (the hard spend limit of
    ``enforcement: HardLimit``, the spend alerts of ``alertEmails``). False does not make the
    project not Ready: its keys keep working, only the mirror is missing."""
    MEMBERS_SYNCED = "MembersSynced"
    """OpenAIProject: ``spec.members`` are the project's users (invites pending or expired make it False)."""
    MODELS_SYNCED = "ModelsSynced"
    """OpenAIProject: ``spec.models`` is the project's model allow or deny list."""
    SERVICE_TIERS_SYNCED = "ServiceTiersSynced"
    """OpenAIProject: ``spec.serviceTiers`` matches the project's service-tier settings."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition; ``last_transition_time`` is when ``status`` last changed."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: datetime
    observed_generation: int | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Condition:
        """Read a condition from status, tolerating missing optional fields."""
        status = str(raw.get("status", "Unknown"))
        generation = raw.get("observedGeneration")
        return cls(
            type=str(raw["type"]),
            status=_normalise_status(status),
            reason=str(raw.get("reason") or ""),
            message=str(raw.get("message") or ""),
            last_transition_time=parse_time(raw.get("lastTransitionTime")) or _EPOCH,
            observed_generation=int(generation) if generation is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Render for a status patch (camelCase keys, RFC 3339 time with ``Z``)."""
        out: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": format_time(self.last_transition_time),
        }
        if self.observed_generation is not None:
            out["observedGeneration"] = self.observed_generation
        return out


def _normalise_status(status: bool | str) -> ConditionStatus:
    if status is True or status == "True":
        return "True"
    if status is False or status == "False":
        return "False"
    if status == "Unknown":
        return "Unknown"
    raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")


def conditions_from_list(raw: Iterable[Mapping[str, Any]] | None) -> list[Condition]:
    """Read ``status.conditions``; entries without a ``type`` are dropped."""
    return [Condition.from_dict(item) for item in raw or () if item.get("type")]


def conditions_to_list(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    """Render conditions for a status patch."""
    return [c.to_dict() for c in conditions]


def get_condition(conditions: Iterable[Condition], type: str) -> Condition | None:
    """The condition of ``type``, or ``None``."""
    return next((c for c in conditions if c.type == type), None)


def is_true(conditions: Iterable[Condition], type: str) -> bool:
    """Whether the condition of ``type`` exists and is ``True``."""
    found = get_condition(conditions, type)
    return found is not None and found.status == "True"


def set_condition(
    conditions: Sequence[Condition],
    type: str,
    status: bool | ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Return ``conditions`` with the condition of ``type`` set; the input is not modified.

    ``lastTransitionTime`` becomes ``now`` only when the status changes (or the condition is new);
    reason, message and observedGeneration are always updated. The message is scrubbed of anything
    shaped like a key and cut to the schema's limit, because conditions are public.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    new_status = _normalise_status(status)
    message = scrub(message)[:MAX_MESSAGE_LENGTH]
    result: list[Condition] = []
    found = False
    for existing in conditions:
        if existing.type != type:
            result.append(existing)
            continue
        found = True
        since = existing.last_transition_time if existing.status == new_status else now
        result.append(
            replace(
                existing,
                status=new_status,
                reason=reason,
                message=message,
                last_transition_time=since,
                observed_generation=observed_generation,
            )
        )
    if not found:
        result.append(Condition(type, new_status, reason, message, now, observed_generation))
    return result
