"""Size limits shared by the CRD schema (``crds/openaikeys.yaml``) and the code that writes status.

Each constant here is also a ``maxItems``/``maxLength`` in the CRD; ``tests/unit/test_crd_schema.py``
keeps the two in step. Code that writes status must stay within these bounds, because the apiserver
refuses (not truncates) a status patch that exceeds them.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_PREVIOUS", "MAX_TRIGGER_TOKEN_LENGTH"]

MAX_PREVIOUS: Final = 16
"""At most this many superseded credentials in ``status.previous`` (its ``maxItems``)."""

MAX_TRIGGER_TOKEN_LENGTH: Final = 256
"""Longest ``openai.operator.dev/rotate`` or ``/revoke`` token; ``maxLength`` of ``status.rotateToken``
and ``status.revokeToken``."""
