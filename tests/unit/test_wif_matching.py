"""The emulator's federation-rule matching and matcher validation (pure functions, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from openai_emulator.errors import ApiError
from openai_emulator.wif import FederationRule, check_matchers, rule_matches

pytestmark = pytest.mark.unit

CLAIMS: dict[str, Any] = {
    "iss": "https://kubernetes.default.svc.cluster.local",
    "aud": ["https://api.openai.com/v1", "other"],
    "sub": "system:serviceaccount:team:app",
    "n": 3,
    "flag": True,
    "kubernetes.io": {"namespace": "team"},
}


def _rule(matchers: dict[str, Any]) -> FederationRule:
    return FederationRule("wifr_x", "wip_x", "proj_x", "svc_acct_x", matchers, 0, 0)


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ({"sub": "system:serviceaccount:team:app"}, True),
        ({"sub": "system:serviceaccount:team:ap"}, False),  # exact unless a trailing *
        ({"sub": "system:serviceaccount:team:*"}, True),
        ({"sub": "system:serviceaccount:teams:*"}, False),
        ({"sub": "system:serviceaccount:team:app", "iss": "https://kubernetes.default.svc.cluster.local"}, True),
        ({"sub": "system:serviceaccount:team:app", "iss": "https://elsewhere"}, False),  # all must hold
        ({"aud": "other"}, True),  # an array claim matches by element
        ({"n": "3"}, True),  # compared as strings
        ({"n": 3}, True),
        ({"flag": "true"}, True),
        ({"flag": True}, True),
        ({"flag": False}, False),
        ({"missing": "x"}, False),
        ({"kubernetes.io": "team"}, False),  # an object claim never matches
        ({"openai.subject": "system:serviceaccount:team:app"}, False),  # needs a transformation
    ],
)
def test_rule_matches(matchers: dict[str, Any], expected: bool) -> None:
    assert rule_matches(_rule(matchers), CLAIMS) is expected


@pytest.mark.parametrize(
    ("matchers", "param"),
    [
        ({}, "attribute_matchers"),
        ({"sub": "*"}, "attribute_matchers.sub"),
        ({"sub": "a*b"}, "attribute_matchers.sub"),
        ({"sub": "a**"}, "attribute_matchers.sub"),
        ({"sub": ""}, "attribute_matchers.sub"),
        ({"sub": None}, "attribute_matchers.sub"),
        ({"sub": ["a"]}, "attribute_matchers.sub"),
        ({"n": float("inf")}, "attribute_matchers.n"),
    ],
)
def test_bad_matchers_are_refused_naming_the_field(matchers: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as info:
        check_matchers(matchers)
    assert (info.value.status, info.value.param) == (400, param)


def test_openai_keys_resolve_from_transformation_results_only() -> None:
    rule = _rule({"openai.namespace": "team", "sub": "system:serviceaccount:team:*"})
    assert rule_matches(rule, CLAIMS, {"openai.namespace": "team"})
    assert not rule_matches(rule, CLAIMS, {"openai.namespace": "other"})
    assert not rule_matches(rule, CLAIMS | {"openai.namespace": "team"})  # a raw claim of that name


def test_good_matchers_are_kept() -> None:
    matchers = {"sub": "system:serviceaccount:team:*", "n": 3, "flag": True, "x": 1.5}
    assert check_matchers(matchers) == matchers
