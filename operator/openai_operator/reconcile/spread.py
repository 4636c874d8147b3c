"""Spreading periodic work over its interval, so many objects never wake together.

After a restart every key's loop starts within seconds of the others; waiting a plain resync
interval after each pass would keep them in lockstep, and every interval would bring a burst of
thousands of passes. Instead each object re-checks at its own fixed phase of the interval (from a
hash of its name, as the failure clock's jitter is): a thousand keys spread evenly over five
minutes, the same after every restart, and no object waits longer than one interval.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from openai_operator.reconcile.backoff import name_jitter

__all__ = ["resync_delay"]


def resync_delay(identity: str, interval: timedelta, now: datetime) -> timedelta:
    """Time from ``now`` to the next moment of ``identity``'s phase of ``interval`` (in ``(0, interval]``)."""
    period = interval.total_seconds()
    if period <= 0:
        return timedelta(0)
    phase = name_jitter(identity) * period
    at = now.timestamp()
    slot = math.floor((at - phase) / period) + 1
    delay = slot * period + phase - at
    if delay <= 0:  # floating point at an exact slot boundary
        delay += period
    return timedelta(seconds=min(delay, period))
