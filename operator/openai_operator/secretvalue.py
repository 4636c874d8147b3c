"""A wrapper that keeps secret strings out of reprs, logs and tracebacks, plus an HMAC fingerprint.

Why a wrapper and not a plain ``str``: the one value the operator must never leak (an OpenAI key)
travels through code that logs, raises and formats freely. A ``str`` shows itself in every
``repr``, f-string and traceback locals dump; a :class:`SecretValue` shows a redacted form, and the
real value comes out only through an explicit, greppable :meth:`SecretValue.reveal` call at the few
places that must hand it on (an ``Authorization`` header, a Secret's data, a Vault write).

Why a fingerprint: to detect that a destination (a Kubernetes Secret, a Vault path) still holds the
key the operator delivered, without storing the key anywhere else. This is the idea behind
vault-secrets-operator's ``SecretMAC``: keep ``HMAC-SHA256(k, value)`` in status, recompute it from
what the destination holds, compare. A keyed MAC rather than a bare hash, so a fingerprint copied
out of one cluster's status cannot be matched against key material elsewhere, and it cannot be used
to test guesses without also holding the operator's HMAC key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final, NoReturn, final

__all__ = ["FINGERPRINT_PREFIX", "SecretValue", "fingerprint", "fingerprint_matches", "redact_secret"]

FINGERPRINT_PREFIX: Final = "hmac-sha256:"

_SHOW_HEAD: Final = 8
_SHOW_TAIL: Final = 4
# Below this length, showing 8 + 4 characters would give away too large a share of the value.
_MIN_LEN_TO_SHOW_ENDS: Final = 3 * (_SHOW_HEAD + _SHOW_TAIL)


def redact_secret(value: str) -> str:
    """Return ``value`` in the shape OpenAI uses for ``redacted_value``.

    OpenAI shows the first 8 characters, then ``*`` so that the total length equals the key's length,
    then the last 4 characters (e.g. ``sk-proj-`` + 152 ``*`` + ``excA``). Matching that shape lets an
    operator compare our ``status.redactedKey`` with what the OpenAI dashboard and the list-keys API
    show. Values shorter than 36 characters (not real keys: test values, tokens) are fully masked,
    because showing 12 characters of them would reveal too much.
    """
    if len(value) < _MIN_LEN_TO_SHOW_ENDS:
        return "*" * len(value)
    hidden = len(value) - _SHOW_HEAD - _SHOW_TAIL
    return value[:_SHOW_HEAD] + "*" * hidden + value[-_SHOW_TAIL:]


@final
class SecretValue:
    """An immutable secret string whose ``repr``/``str`` never show the value.

    >>> s = SecretValue("x" * 40)
    >>> s
    SecretValue('xxxxxxxx****************************xxxx')
    >>> s.reveal() == "x" * 40
    True

    Equality is constant-time, so comparing a stored key with a delivered one does not leak timing.
    Pickling is refused, because a pickle is exactly the kind of accidental copy this type exists to
    prevent.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"SecretValue wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the secret itself. Call this only where the value must leave the process."""
        return self._value

    def redacted(self) -> str:
        """Return the value in OpenAI's ``redacted_value`` shape (see :func:`redact_secret`)."""
        return redact_secret(self._value)

    def __repr__(self) -> str:
        return f"SecretValue({self.redacted()!r})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((SecretValue, self._value))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("SecretValue is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("SecretValue is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")

    def __copy__(self) -> SecretValue:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> SecretValue:
        return self


def _as_bytes(value: SecretValue | str | bytes) -> bytes:
    if isinstance(value, SecretValue):
        return value.reveal().encode()
    if isinstance(value, str):
        return value.encode()
    return value


def fingerprint(value: SecretValue | str | bytes, key: bytes) -> str:
    """Return ``hmac-sha256:<hex>`` of ``value`` under ``key``, for drift detection.

    The operator stores this (never the value) in ``status.destinations.*.fingerprint``; on each
    check it reads the destination, fingerprints what is there with the same ``key`` and compares
    (:func:`fingerprint_matches`). A mismatch means the Secret or Vault entry was edited or replaced
    outside the operator. ``key`` is the operator's HMAC key, loaded at startup from its own Secret;
    it must be non-empty, since an unkeyed fingerprint would be a plain hash of the API key.
    """
    if not key:
        raise ValueError("fingerprint key must not be empty")
    digest = hmac.new(key, _as_bytes(value), hashlib.sha256).hexdigest()
    return FINGERPRINT_PREFIX + digest


def fingerprint_matches(value: SecretValue | str | bytes, expected: str, key: bytes) -> bool:
    """Tell whether ``value`` has fingerprint ``expected`` under ``key`` (constant-time compare)."""
    return hmac.compare_digest(fingerprint(value, key).encode(), expected.encode())
