"""Which namespaces an operator serves, and the names of the shard records (pure).

An operator started with ``--namespace`` patterns serves the namespaces they match, with Kopf's own
rules (it is Kopf that decides what is watched, so the operator must agree with it exactly): each
pattern is comma-separated globs (``*``, ``?``), ``!glob`` excludes, a leading exclusion implies a
catch-all before it, and a later inclusive glob only re-admits what the first one matched. Several
patterns: a namespace is served if any one matches. No patterns: every namespace.

A *shard* is one operator Deployment with its own patterns (``--shard``): see ``docs/sharding.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Final

from openai_operator.model.resources import GROUP

__all__ = [
    "SHARD_LABEL",
    "SHARD_NAMESPACES_ANNOTATION",
    "lease_name",
    "matches_pattern",
    "serves_namespace",
]

SHARD_LABEL: Final = f"{GROUP}/shard"
"""On each operator replica's Lease: the shard it belongs to."""
SHARD_NAMESPACES_ANNOTATION: Final = f"{GROUP}/shard-namespaces"
"""On each replica's Lease: the ``--namespace`` patterns it serves, as a JSON list."""


def matches_pattern(namespace: str, pattern: str) -> bool:
    """Whether ``namespace`` matches one ``--namespace`` pattern (Kopf's ``match_namespace`` rules)."""
    globs = [glob.strip() for glob in pattern.split(",") if glob.strip()]
    if not globs or globs[0].startswith("!"):
        globs.insert(0, "*")
    first = matches = fnmatchcase(namespace, globs[0])
    for glob in globs[1:]:
        if glob.startswith("!"):
            matches = matches and not fnmatchcase(namespace, glob[1:])
        else:
            matches = matches or (first and fnmatchcase(namespace, glob))
    return matches


def serves_namespace(patterns: Sequence[str], namespace: str) -> bool:
    """Whether an operator started with ``patterns`` serves ``namespace`` (no patterns: every one)."""
    return not patterns or any(matches_pattern(namespace, pattern) for pattern in patterns)


def lease_name(shard: str, member: str) -> str:
    """The Lease of one replica (``member``: its pod name) of ``shard``: a valid object name."""
    clean = re.sub(r"[^a-z0-9.-]+", "-", member.lower()).strip("-.") or "replica"
    return f"openai-operator-shard-{shard}-{clean}"[:253].rstrip("-.")
