"""Key and id generation, and the redaction rule.

Keys look like real ones so that anything parsing or redacting them in the operator is exercised
for real: ``sk-svcacct-``/``sk-proj-``/``sk-admin-`` followed by a 156-character body, the length
seen in sanitized real responses. ``redacted_value`` follows the observed real shape: the first 8
characters, ``*`` padding, the last 4, same total length as the key.
"""

from __future__ import annotations

import base64
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
KEY_BODY_LENGTH = 156


def random_token(length: int, alphabet: str = _ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """An opaque id such as ``proj_…`` or ``key_…``; callers must not parse it."""
    return prefix + random_token(length)


def mint_secret(prefix: str) -> str:
    """A new secret key value, e.g. ``mint_secret("sk-svcacct-")``.

    The body is URL-safe base64 of 117 random bytes: exactly 156 characters of ``[A-Za-z0-9_-]``,
    and one call to the CSPRNG instead of 156 (minting is on the service-account create path).
    """
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(KEY_BODY_LENGTH * 3 // 4)).decode()


def new_admin_key() -> str:
    return mint_secret("sk-admin-")


def redact(value: str) -> str:
    """First 8 characters + ``*`` padding + last 4, keeping the key's length."""
    if len(value) <= 12:
        return "*" * len(value)
    return value[:8] + "*" * (len(value) - 12) + value[-4:]
