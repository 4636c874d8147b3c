"""Deterministic OpenAI service-account names for issued credentials, and their parser.

Every credential (revision N of an OpenAIKey) is one service account named::

    k8s.<instance>.<namespace>.<name>.r<N>          e.g. k8s.7f3a09c1.team-a.chat-backend.r3

``instance`` identifies the operator installation (``--instance-id``; by default derived from the
uid of the cluster's ``kube-system`` namespace), so two clusters, or two installations, that share
one OpenAI project never mistake each other's credentials for their own: the orphan sweep and the
finalizer only touch names that carry their own instance id.

When the full form is longer than :data:`MAX_NAME_LENGTH` it is shortened to::

    k8s.<instance>.<namespace.name cut to fit>_<digest>.r<N>

where ``digest`` is 32 hex digits (128 bits) of SHA-256 over ``<namespace>/<name>``, so a collision
between two keys' shortened names is out of reach. ``_`` never occurs in Kubernetes names, so the two
forms cannot be confused. :func:`parse_service_account_name` recognises both.

Credentials kept on purpose (``deletionPolicy: Retain``) are renamed to :func:`retained_name`, which
no longer parses as operator-made: nothing the operator does later can revoke them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "INSTANCE_ID_PATTERN",
    "MAX_NAME_LENGTH",
    "PREFIX",
    "RETAINED_PREFIX",
    "ServiceAccountName",
    "owner_digest",
    "parse_service_account_name",
    "retained_name",
    "service_account_name",
]

PREFIX = "k8s"
RETAINED_PREFIX = "retained"
MAX_NAME_LENGTH = 64
DIGEST_LENGTH = 32
INSTANCE_ID_PATTERN = re.compile(r"^[a-z0-9]{1,12}$")

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
_INSTANCE = r"[a-z0-9]{1,12}"
_FULL = re.compile(
    rf"^{PREFIX}\.(?P<inst>{_INSTANCE})\.(?P<ns>{_DNS_LABEL})\.(?P<name>{_DNS_SUBDOMAIN})\.r(?P<rev>[1-9][0-9]*)$"
)
_SHORT = re.compile(
    rf"^{PREFIX}\.(?P<inst>{_INSTANCE})\.(?P<prefix>[-a-z0-9.]*)_(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}})"
    rf"\.r(?P<rev>[1-9][0-9]*)$"
)
_NAMESPACE_RE = re.compile(rf"^{_DNS_LABEL}$")
_NAME_RE = re.compile(rf"^{_DNS_SUBDOMAIN}$")


def owner_digest(namespace: str, name: str) -> str:
    """The 128-bit digest that identifies an OpenAIKey (``namespace/name``) in shortened names."""
    return hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:DIGEST_LENGTH]


def service_account_name(instance: str, namespace: str, name: str, revision: int) -> str:
    """The service-account name for revision ``revision`` (>= 1) of the OpenAIKey ``namespace/name``."""
    if not INSTANCE_ID_PATTERN.fullmatch(instance):
        raise ValueError(f"not an instance id ([a-z0-9]{{1,12}}): {instance!r}")
    if not _NAMESPACE_RE.fullmatch(namespace) or len(namespace) > 63:
        raise ValueError(f"not a namespace name: {namespace!r}")
    if not _NAME_RE.fullmatch(name) or len(name) > 253:
        raise ValueError(f"not an object name: {name!r}")
    if revision < 1:
        raise ValueError(f"revision must be >= 1, not {revision}")
    full = f"{PREFIX}.{instance}.{namespace}.{name}.r{revision}"
    if len(full) <= MAX_NAME_LENGTH:
        return full
    suffix = f"_{owner_digest(namespace, name)}.r{revision}"
    room = MAX_NAME_LENGTH - len(PREFIX) - len(instance) - 2 - len(suffix)
    readable = f"{namespace}.{name}"[: max(room, 0)].rstrip(".-")
    return f"{PREFIX}.{instance}.{readable}{suffix}"


def retained_name(name: str) -> str:
    """The name a retained credential is given: the same, but no longer operator-made."""
    if name.startswith(f"{PREFIX}."):
        return f"{RETAINED_PREFIX}.{name[len(PREFIX) + 1:]}"
    return name


@dataclass(frozen=True, slots=True)
class ServiceAccountName:
    """A parsed operator-made name. ``namespace``/``name`` are ``None`` for shortened names."""

    instance: str
    namespace: str | None
    name: str | None
    revision: int
    digest: str
    shortened: bool

    def belongs_to(self, instance: str, namespace: str, name: str) -> bool:
        """Whether this service account was named by ``instance`` for the OpenAIKey ``namespace/name``."""
        if self.instance != instance:
            return False
        if self.namespace is not None:
            return (self.namespace, self.name) == (namespace, name)
        return self.digest == owner_digest(namespace, name)


def parse_service_account_name(value: str) -> ServiceAccountName | None:
    """Recognise a name :func:`service_account_name` could have produced; anything else is ``None``.

    A match is accepted only if it round-trips exactly, so a hand-made name that merely looks similar
    (too long, or one that would have been shortened) is not claimed by the operator.
    """
    if len(value) > MAX_NAME_LENGTH:
        return None
    full = _FULL.fullmatch(value)
    if full is not None:
        instance, namespace, name, revision = full["inst"], full["ns"], full["name"], int(full["rev"])
        if len(namespace) <= 63 and service_account_name(instance, namespace, name, revision) == value:
            return ServiceAccountName(instance, namespace, name, revision, owner_digest(namespace, name), False)
    short = _SHORT.fullmatch(value)
    if short is not None:
        return ServiceAccountName(short["inst"], None, None, int(short["rev"]), short["digest"], True)
    return None
