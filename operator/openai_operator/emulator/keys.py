"""Key and id generation, and the redaction rule.

Keys look like real ones so that anything parsing or redacting them in the operator is exercised
for real: ``sk-svcacct-``/``sk-proj-``/``sk-admin-`` followed by a 156-character body, the length
seen in sanitized real responses. ``redacted_value`` follows the observed real shape: the first 8
characters, ``*`` padding, the last 4, same total length as the key.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_BODY_ALPHABET = _ALPHABET + "-_"
KEY_BODY_LENGTH = 156


def random_token(length: int, alphabet: str = _ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """An opaque id such as ``proj_…`` or ``key_…``; callers must not parse it."""
    return prefix + random_token(length)


def mint_secret(prefix: str) -> str:
    """A new secret key value, e.g. ``mint_secret("sk-svcacct-")``."""
    return prefix + random_token(KEY_BODY_LENGTH, _BODY_ALPHABET)


def new_admin_key() -> str:
    return mint_secret("sk-admin-")


def redact(value: str) -> str:
    """First 8 characters + ``*`` padding + last 4, keeping the key's length."""
    if len(value) <= 12:
        return "*" * len(value)
    return value[:8] + "*" * (len(value) - 12) + value[-4:]
