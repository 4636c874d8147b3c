"""Go-style durations (``720h``, ``90m``, ``1h30m``, ``1.5h``, ``500ms``), as the CRDs accept them.

The CRD schema checks the same grammar with :data:`DURATION_PATTERN`, so what the apiserver admits
always parses here, and CEL's ``duration()`` accepts it too. Durations longer than
:data:`MAX_DURATION` (ten years) are refused here and by a CEL rule on every duration field, so
no input can overflow ``timedelta`` (or CEL's own duration range) further down.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

__all__ = ["DURATION_PATTERN", "MAX_DURATION", "MAX_DURATION_TEXT", "format_duration", "parse_duration"]

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|h|m|s))+$"
"""Regular expression for a duration, shared with the CRD ``pattern`` of every duration field."""

MAX_DURATION_TEXT = "87600h"
"""The longest duration accepted anywhere (ten years), as the CRD's CEL rules spell it."""
MAX_DURATION = timedelta(hours=87600)
"""The longest duration accepted anywhere: :data:`MAX_DURATION_TEXT` as a ``timedelta``."""

_WHOLE = re.compile(DURATION_PATTERN)
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_MAX_MS = Decimal(MAX_DURATION // timedelta(milliseconds=1))


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration; raise ``ValueError`` with a readable message when it is not one.

    Anything longer than :data:`MAX_DURATION` is a ``ValueError`` too (never an ``OverflowError``).
    """
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration such as 720h, 90m, 1h30m or 500ms")
    total_ms = sum((Decimal(num) * _UNIT_MS[unit] for num, unit in _PART.findall(text)), Decimal(0))
    if total_ms > _MAX_MS:
        raise ValueError(f"{text!r} is longer than the maximum duration {MAX_DURATION_TEXT}")
    return timedelta(milliseconds=float(total_ms))


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way a user would write it (``1h30m``, ``45s``, ``0s``)."""
    total_ms = round(value.total_seconds() * 1000)
    sign = "-" if total_ms < 0 else ""
    total_ms = abs(total_ms)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1_000)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    parts.append(f"{millis}ms" if millis else "")
    return sign + ("".join(parts) or "0s")
