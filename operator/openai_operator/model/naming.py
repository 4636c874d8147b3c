"""Deterministic OpenAI service-account names for issued credentials, and their parser.

Every credential (revision N of an OpenAIKey) is one service account named::

    k8s.<namespace>.<name>.r<N>                e.g. k8s.team-a.chat-backend.r3

The name is a pure function of (namespace, name, revision), which makes the create step safe to
repeat: a crashed run is detected by looking the name up before creating it. When the full form is
longer than :data:`MAX_NAME_LENGTH` (64, short enough to read in the OpenAI dashboard and well within
what the Admin API stores) it is shortened to::

    k8s.<namespace.name cut to fit>_<digest>.r<N>    e.g. k8s.team-a.a-very-long-na_3f9a1c2b7e.r3

where ``digest`` is the first 10 hex digits of SHA-256 over ``<namespace>/<name>``. ``_`` never occurs
in Kubernetes names, so the two forms cannot be confused. :func:`parse_service_account_name`
recognises both; the drift inventory uses it to find operator-named service accounts whose OpenAIKey
no longer exists, comparing by :attr:`ServiceAccountName.digest`, which both forms carry.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "MAX_NAME_LENGTH",
    "PREFIX",
    "ServiceAccountName",
    "owner_digest",
    "parse_service_account_name",
    "service_account_name",
]

PREFIX = "k8s"
MAX_NAME_LENGTH = 64
DIGEST_LENGTH = 10

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
_FULL = re.compile(rf"^{PREFIX}\.(?P<ns>{_DNS_LABEL})\.(?P<name>{_DNS_SUBDOMAIN})\.r(?P<rev>[1-9][0-9]*)$")
_SHORT = re.compile(
    rf"^{PREFIX}\.(?P<prefix>[-a-z0-9.]*)_(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}})\.r(?P<rev>[1-9][0-9]*)$"
)
_NAMESPACE_RE = re.compile(rf"^{_DNS_LABEL}$")
_NAME_RE = re.compile(rf"^{_DNS_SUBDOMAIN}$")


def owner_digest(namespace: str, name: str) -> str:
    """The stable short digest that identifies an OpenAIKey (``namespace/name``) in shortened names."""
    return hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:DIGEST_LENGTH]


def service_account_name(namespace: str, name: str, revision: int) -> str:
    """The service-account name for revision ``revision`` (>= 1) of the OpenAIKey ``namespace/name``."""
    if not _NAMESPACE_RE.fullmatch(namespace) or len(namespace) > 63:
        raise ValueError(f"not a namespace name: {namespace!r}")
    if not _NAME_RE.fullmatch(name) or len(name) > 253:
        raise ValueError(f"not an object name: {name!r}")
    if revision < 1:
        raise ValueError(f"revision must be >= 1, not {revision}")
    full = f"{PREFIX}.{namespace}.{name}.r{revision}"
    if len(full) <= MAX_NAME_LENGTH:
        return full
    suffix = f"_{owner_digest(namespace, name)}.r{revision}"
    room = MAX_NAME_LENGTH - len(PREFIX) - 1 - len(suffix)
    readable = f"{namespace}.{name}"[: max(room, 0)].rstrip(".-")
    return f"{PREFIX}.{readable}{suffix}"


@dataclass(frozen=True, slots=True)
class ServiceAccountName:
    """A parsed operator-made name. ``namespace``/``name`` are ``None`` for shortened names."""

    namespace: str | None
    name: str | None
    revision: int
    digest: str
    shortened: bool

    def belongs_to(self, namespace: str, name: str) -> bool:
        """Whether this service account was named for the OpenAIKey ``namespace/name``."""
        if self.namespace is not None:
            return (self.namespace, self.name) == (namespace, name)
        return self.digest == owner_digest(namespace, name)


def parse_service_account_name(value: str) -> ServiceAccountName | None:
    """Recognise a name :func:`service_account_name` could have produced; anything else is ``None``.

    A full-form match is accepted only if it round-trips exactly, so a hand-made name that merely
    looks similar (too long, or one that would have been shortened) is not claimed by the operator.
    """
    if len(value) > MAX_NAME_LENGTH:
        return None
    full = _FULL.fullmatch(value)
    if full is not None:
        namespace, name, revision = full["ns"], full["name"], int(full["rev"])
        if len(namespace) <= 63 and service_account_name(namespace, name, revision) == value:
            return ServiceAccountName(namespace, name, revision, owner_digest(namespace, name), False)
    short = _SHORT.fullmatch(value)
    if short is not None:
        return ServiceAccountName(None, None, int(short["rev"]), short["digest"], True)
    return None
