"""Which OpenAIKey an operator-named service account belongs to, for both naming schemes.

Today's names are ``k8s.<namespace>.<name>.r<N>``; the key-lifecycle redesign adds the operator's
instance id: ``k8s.<instanceId>.<namespace>.<name>.r<N>`` (instanceId ``[a-z0-9]{1,12}``). Every
check of the chaos test goes through :func:`belongs_to`, so the switch changes nothing here.

Shortened names (a digest instead of a long namespace/name) are not recognised; the chaos test
only uses short names, and counts any ``k8s.`` account it cannot attribute as an orphan.
"""

from __future__ import annotations

import re

_REVISION = re.compile(r"\.r(\d+)$")
_INSTANCE = re.compile(r"[a-z0-9]{1,12}")


def operator_named(account_name: str) -> bool:
    """Whether the name has the shape the operator gives its credentials."""
    return account_name.startswith("k8s.") and _REVISION.search(account_name) is not None


def belongs_to(account_name: str, namespace: str, name: str) -> bool:
    """Whether ``account_name`` is a credential of OpenAIKey ``namespace/name`` (either scheme)."""
    if not operator_named(account_name):
        return False
    stem = _REVISION.sub("", account_name)[len("k8s."):]
    wanted = f"{namespace}.{name}"
    if stem == wanted:
        return True
    instance, _, rest = stem.partition(".")
    return rest == wanted and _INSTANCE.fullmatch(instance) is not None


def revision_of(account_name: str) -> int | None:
    match = _REVISION.search(account_name)
    return int(match.group(1)) if match else None
