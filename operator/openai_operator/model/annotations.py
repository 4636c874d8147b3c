"""The trigger annotations of an OpenAIKey, read into tokens the planner compares with status.

``openai.operator.dev/rotate=<token>`` rotates once per new token; ``openai.operator.dev/revoke=<token>``
rotates and revokes the old credential at once. The token acted on is stored in
``status.rotateToken``/``status.revokeToken``, whose schema allows at most
:data:`~openai_operator.model.limits.MAX_TRIGGER_TOKEN_LENGTH` characters, so a longer token is
refused here: otherwise the rotation would happen and the status patch recording it would fail,
and the next pass would rotate again.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openai_operator.errors import SpecError
from openai_operator.model.limits import MAX_TRIGGER_TOKEN_LENGTH
from openai_operator.model.resources import REVOKE_ANNOTATION, ROTATE_ANNOTATION

__all__ = ["TriggerTokens", "parse_trigger_annotations"]


@dataclass(frozen=True)
class TriggerTokens:
    """The rotate and revoke tokens as written on the object; ``None`` when the annotation is absent."""

    rotate: str | None = None
    revoke: str | None = None


def parse_trigger_annotations(annotations: Mapping[str, str] | None) -> TriggerTokens:
    """Read the trigger tokens from ``metadata.annotations`` (``None`` means no annotations).

    A token is used verbatim. It is refused with a :class:`~openai_operator.errors.SpecError`
    whose ``field_path`` is the annotation name when it is empty or only whitespace, contains a
    control character (a newline, say), or is longer than ``MAX_TRIGGER_TOKEN_LENGTH``. The rotate
    annotation is checked first.
    """
    found = annotations or {}
    return TriggerTokens(
        rotate=_token(found, ROTATE_ANNOTATION),
        revoke=_token(found, REVOKE_ANNOTATION),
    )


def _token(annotations: Mapping[str, str], name: str) -> str | None:
    value = annotations.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(name, "must be a string")
    if not value.strip():
        raise SpecError(name, "must not be empty; annotate with a new non-empty token to trigger")
    if len(value) > MAX_TRIGGER_TOKEN_LENGTH:
        raise SpecError(name, f"must be at most {MAX_TRIGGER_TOKEN_LENGTH} characters (it has {len(value)})")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise SpecError(name, "must not contain control characters such as newlines")
    return value
