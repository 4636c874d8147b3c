"""The trigger annotations of an OpenAIKey (``openai.operator.dev/rotate`` and ``/revoke``), parsed.

Their values are recorded in ``status.rotateToken``/``revokeToken`` once acted on, so they must fit
the status schema; a value that does not is an invalid spec (named by the annotation), not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openai_operator.errors import SpecError
from openai_operator.model.resources import REVOKE_ANNOTATION, ROTATE_ANNOTATION

__all__ = ["MAX_TOKEN_LENGTH", "TriggerTokens", "parse_trigger_annotations"]

MAX_TOKEN_LENGTH = 63
"""The longest token accepted (the CRD's ``maxLength`` of ``status.rotateToken``/``revokeToken``)."""


@dataclass(frozen=True)
class TriggerTokens:
    rotate: str | None = None
    revoke: str | None = None


def _token(annotations: Mapping[str, str], name: str) -> str | None:
    value = annotations.get(name)
    if value is None or value == "":
        return None
    if not value.strip():
        raise SpecError(f"metadata.annotations[{name}]", "must not be blank")
    if len(value) > MAX_TOKEN_LENGTH:
        raise SpecError(f"metadata.annotations[{name}]", f"must be at most {MAX_TOKEN_LENGTH} characters")
    return value


def parse_trigger_annotations(annotations: Mapping[str, str]) -> TriggerTokens:
    """The rotate and revoke tokens; ``SpecError`` naming the annotation when one is unusable."""
    return TriggerTokens(_token(annotations, ROTATE_ANNOTATION), _token(annotations, REVOKE_ANNOTATION))
