"""The one failure clock: how long an object waits after consecutive failures (kept in its status).

``2 s · 2^(n-1)``, capped at 10 minutes, scaled into [50 %, 100 %] by a jitter derived from the
object's name, so every evaluation gives the same time (the plan is reproducible) and objects that
fail together spread out. A spec change (a new generation) skips the wait, as in cert-manager.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from openai_operator.reconcile.schedule import failure_backoff

__all__ = ["backoff_until", "name_jitter", "retry_delay"]


def name_jitter(identity: str) -> float:
    """A number in [0, 1) fixed for ``identity`` (``namespace/name``)."""
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "big") / 2**32


def retry_delay(failed_attempts: int, identity: str) -> timedelta:
    """The wait after ``failed_attempts`` consecutive failures of the object ``identity``."""
    return failure_backoff(max(failed_attempts, 1), jitter=name_jitter(identity))


def backoff_until(
    failed_attempts: int,
    last_failure_time: datetime | None,
    *,
    identity: str,
    generation: int | None,
    observed_generation: int | None,
) -> datetime | None:
    """Until when a failing object waits before its next attempt; ``None`` when it need not wait."""
    if failed_attempts < 1 or last_failure_time is None:
        return None
    if generation is not None and observed_generation is not None and generation != observed_generation:
        return None
    return last_failure_time + retry_delay(failed_attempts, identity)
