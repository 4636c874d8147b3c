"""Revoke after grace: when superseded, refused and leftover credentials of a key are revoked.

- A superseded credential moves to ``status.previous`` with ``revokeAt = promotion + gracePeriod``
  (``= promotion`` for the leak response) only once its successor is in every destination; until
  then it is *held* (``revokeAt`` unset) and no clock runs for it.
- A credential whose ``revokeAt`` has passed is revoked on every pass, whatever else the key is
  doing: an invalid spec, a refused policy or a failing issue never keeps a due revocation alive.
- ``status.previous`` is bounded (``model.limits.MAX_PREVIOUS``, its ``maxItems``): rotations
  faster than the grace period bring the oldest superseded credentials' revocation forward. They
  are in no destination any more.
- A key that its project's policy now refuses keeps its credential for one grace period (so the
  owners can react to the Warning), then the key is removed from every destination and revoked.
  A project that is only not Ready (an outage) refuses new credentials but revokes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from openai_operator.model.limits import MAX_PREVIOUS
from openai_operator.model.specs import KeyPolicy, KeySpec
from openai_operator.model.status import KeyStatus, PreviousCredential
from openai_operator.reconcile.actions import Revoke
from openai_operator.reconcile.policy import grace_period_for

__all__ = ["MAX_PREVIOUS", "bounded_previous", "due_revocations", "grace_for", "refusal_deadline"]


def grace_for(spec: KeySpec | None, policy: KeyPolicy | None = None) -> timedelta:
    """How long a superseded credential keeps working after its successor is everywhere."""
    return grace_period_for(spec, policy)


def due_revocations(status: KeyStatus, now: datetime) -> tuple[Revoke, ...]:
    """Superseded credentials whose grace period is over."""
    return tuple(
        Revoke(p.service_account_id, "previous", key_id=p.key_id)
        for p in status.previous
        if p.revoke_at is not None and p.revoke_at <= now
    )


def bounded_previous(previous: tuple[PreviousCredential, ...], now: datetime) -> tuple[PreviousCredential, ...]:
    """``previous`` with the oldest timed entries due now when there are more than :data:`MAX_PREVIOUS`."""
    excess = len(previous) - MAX_PREVIOUS
    if excess <= 0:
        return previous
    result = list(previous)
    for index, entry in enumerate(result):
        if excess <= 0:
            break
        if entry.revoke_at is not None and entry.revoke_at > now:
            result[index] = replace(entry, revoke_at=now)
            excess -= 1
    return tuple(result)


def refusal_deadline(status: KeyStatus, spec: KeySpec | None, now: datetime,
                     policy: KeyPolicy | None = None) -> datetime:
    """When a refused key's credential is revoked: one grace period after the refusal began."""
    return (status.refused_since or now) + grace_for(spec, policy)
