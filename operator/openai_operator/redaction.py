"""The one redactor: removes key material from text, leaves identifiers readable.

Every place where text leaves the process and might echo a credential calls :func:`redact`: log
lines (:func:`openai_operator.logging.redaction_processor`), Kubernetes Event messages, condition
messages and error messages (:func:`openai_operator.errors.scrub` is this function), and messages
built from API responses (:mod:`openai_operator.openai.errors`). One function, one set of rules.

What is removed (replaced by ``[REDACTED]``):

* OpenAI keys: ``sk-`` then at least 8 key characters (``sk-proj-…``, ``sk-svcacct-…``,
  ``sk-admin-…``, ``sk-None-…``, plain ``sk-…``); the prefix is kept so a reader can tell which kind
  of key was involved (``sk-svcacct-[REDACTED]``). Masked forms (``sk-proj-****…abcd``,
  ``sk-abc...def``) stop matching before 8 characters and survive;
* the credential after ``Bearer`` (8+ characters) or ``Basic`` (an ``Authorization`` header);
* JWTs (``eyJ….….…``: Kubernetes ServiceAccount tokens, OIDC tokens);
* Vault/OpenBao tokens (``hvs.…``, ``hvb.…``, ``hvr.…``, ``s.…``, ``b.…``, ``r.…``, 20+ characters);
* the value of a ``token=…``/``api_key: …``/``password=…`` style assignment;
* standard base64 of an OpenAI key (``c2st…``, how a key appears in a Secret's ``data``);
* any value registered with :func:`register_secret` (the admin key, the Vault token and the
  fingerprint HMAC key the operator was started with), whatever its shape.

What is kept, on purpose: identifiers are not secrets, and an operator reading an Event needs them.
``svc_acct_…``, ``key_…``, ``proj_…``, ``user-…``, ``org-…``, ``page_…`` ids, service-account names
(``k8s.<instance>.<ns>.<name>.r3``), UIDs, hex digests and fingerprints, paths and URLs pass
unchanged. There is deliberately no "long random-looking string" rule: it cannot tell an id from a
key and was what turned Event messages into "service account [REDACTED]".

Redaction is a safety net, not the main defence: key material travels as
:class:`~openai_operator.secretvalue.SecretValue` and code never logs request or response bodies.
This module is pure (only :mod:`re` and :mod:`threading`), so the model layer may use it.
"""

from __future__ import annotations

import re
import threading
from typing import Final

__all__ = ["REDACTED", "forget_secrets", "redact", "register_secret"]

REDACTED: Final = "[REDACTED]"

_OPENAI_KEY: Final = re.compile(
    r"(?<![A-Za-z0-9_])(?P<prefix>sk-(?:proj-|svcacct-|admin-|None-)?)[A-Za-z0-9_\-]{8,}"
)
_BEARER: Final = re.compile(r"(?i)\b(?P<scheme>bearer)(?P<sep>\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=\-]{8,}")
# Basic credentials are base64 of "user:password"; demanding a digit, "+", "/" or "=" in the value
# keeps prose ("basic checks") intact.
_BASIC: Final = re.compile(
    r"(?i)\b(?P<scheme>basic)(?P<sep>\s+)(?!\[REDACTED\])(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{4,}={0,2}"
)
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
_VAULT_TOKEN: Final = re.compile(r"(?<![A-Za-z0-9_.])(?:hv[sbr]|[sbr])\.[A-Za-z0-9_\-]{20,}")
_ASSIGNMENT: Final = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(?P<name>api[_-]?key|admin[_-]?key|access[_-]?token|refresh[_-]?token|id[_-]?token"
    r"|token|client[_-]?secret|secret[_-]?key|password|passwd|authorization)"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?!\[REDACTED\]|bearer\b|basic\b)[^\s\"'&,;]+"
)
# base64("sk-") == "c2st": an OpenAI key stored base64-encoded, as in a Secret's data.
_BASE64_OPENAI_KEY: Final = re.compile(r"(?<![A-Za-z0-9+/])c2st[A-Za-z0-9+/]{12,}={0,2}")

# Registered values shorter than this are not matched: they would redact ordinary words.
_MIN_REGISTERED_LENGTH: Final = 8

_lock = threading.Lock()
_registered: frozenset[str] = frozenset()
_registered_pattern: re.Pattern[str] | None = None


def register_secret(value: str | bytes | None) -> None:
    """Redact ``value`` verbatim wherever it appears from now on, whatever its shape.

    The operator registers the credentials it was started with (the admin key, a static Vault token,
    the fingerprint HMAC key). Values shorter than 8 characters are ignored (test placeholders).
    """
    global _registered, _registered_pattern
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not value or len(value) < _MIN_REGISTERED_LENGTH:
        return
    with _lock:
        if value in _registered:
            return
        _registered = _registered | {value}
        # Longest first, so a value that contains another is removed whole.
        alternatives = sorted(_registered, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def forget_secrets() -> None:
    """Drop every registered value (for tests)."""
    global _registered, _registered_pattern
    with _lock:
        _registered, _registered_pattern = frozenset(), None


def _keep_scheme(match: re.Match[str]) -> str:
    return match.group("scheme") + match.group("sep") + REDACTED


def redact(text: str) -> str:
    """Return ``text`` with key material replaced by ``[REDACTED]`` and identifiers left alone.

    The rules are in the module docstring. Idempotent: ``redact(redact(t)) == redact(t)``.
    """
    pattern = _registered_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _BEARER.sub(_keep_scheme, text)
    text = _BASIC.sub(_keep_scheme, text)
    text = _OPENAI_KEY.sub(lambda m: m.group("prefix") + REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _VAULT_TOKEN.sub(REDACTED, text)
    text = _ASSIGNMENT.sub(lambda m: m.group("name") + m.group("sep") + REDACTED, text)
    return _BASE64_OPENAI_KEY.sub(REDACTED, text)
