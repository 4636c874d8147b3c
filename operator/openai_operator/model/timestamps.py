"""RFC 3339 timestamps as Kubernetes writes them: UTC, whole seconds, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_time", "parse_time"]


def format_time(value: datetime) -> str:
    """Render an aware datetime as ``2026-01-02T03:04:05Z``; naive datetimes are rejected.

    Sub-second precision is dropped, as in ``metav1.Time``, so a value read back compares equal.
    """
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp from status; ``None`` or an empty value gives ``None``.

    Naive input is taken as UTC. Anything unparsable raises ``ValueError``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
