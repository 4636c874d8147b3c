"""The operator's reading of --namespace patterns matches Kopf's own, which decides what is watched."""

from __future__ import annotations

import pytest
from kopf._cogs.structs.references import match_namespace

from openai_operator.model.shards import matches_pattern, serves_namespace

PATTERNS = ["team-a", "team-*", "myapp-*, !*-pr-*, *pr-123", "!*-pr-*, *pr-123", "!kube-*", "a?c", "*", "x,y"]
NAMES = ["team-a", "team-b", "myapp-test", "myapp-pr-123", "myapp-pr-456", "otherapp-pr-123", "kube-system",
         "abc", "abbc", "x", "y", "z", "default"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_matches_as_kopf_matches(pattern: str) -> None:
    for name in NAMES:
        assert matches_pattern(name, pattern) == match_namespace(name, pattern), (pattern, name)


def test_no_patterns_serve_every_namespace_and_several_serve_their_union() -> None:
    assert serves_namespace([], "anything")
    assert serves_namespace(["team-a", "team-b"], "team-b")
    assert not serves_namespace(["team-a", "team-b"], "team-c")
