"""The operator's reading of --namespace patterns is Kopf's, which decides what is watched.

The expected sets are what Kopf's own ``match_namespace`` answers for these patterns (its docstring's
examples among them), read off the installed Kopf; a later inclusive glob only re-admits what the
first one matched, so ``x,y`` serves ``x`` alone.
"""

from __future__ import annotations

import pytest

from openai_operator.model.shards import lease_name, matches_pattern, serves_namespace

NAMES = ["team-a", "team-b", "myapp-test", "myapp-pr-123", "myapp-pr-456", "otherapp-pr-123", "kube-system",
         "abc", "abbc", "x", "y", "z", "default"]
EVERY = set(NAMES)
EXPECTED = {
    "team-a": {"team-a"},
    "team-*": {"team-a", "team-b"},
    "myapp-*, !*-pr-*, *pr-123": {"myapp-pr-123", "myapp-test"},
    "!*-pr-*, *pr-123": EVERY - {"myapp-pr-456"},
    "!kube-*": EVERY - {"kube-system"},
    "a?c": {"abc"},
    "*": EVERY,
    "x,y": {"x"},
}


@pytest.mark.parametrize(("pattern", "served"), EXPECTED.items())
def test_every_pattern_matches_as_kopf_matches(pattern: str, served: set[str]) -> None:
    assert {name for name in NAMES if matches_pattern(name, pattern)} == served


def test_no_patterns_serve_every_namespace_and_several_serve_their_union() -> None:
    assert serves_namespace([], "anything")
    assert serves_namespace(["team-a", "team-b"], "team-b")
    assert not serves_namespace(["team-a", "team-b"], "team-c")


def test_lease_names_are_valid_object_names_whatever_the_host_is_called() -> None:
    assert lease_name("a", "Operator_Pod.1") == "openai-operator-shard-a-operator-pod.1"
    assert len(lease_name("a", "x" * 400)) <= 253
