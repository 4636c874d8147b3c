"""Label selectors and ``keyPolicy.allowedNamespaces``: Kubernetes semantics, closed by default."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from openai_operator.model.selectors import LabelSelector, selector_matches
from openai_operator.model.specs import AllowedNamespaces, KeyPolicy

pytestmark = pytest.mark.unit

PROD = {"env": "prod", "team": "a"}


def selector(raw: dict[str, Any]) -> LabelSelector:
    return LabelSelector.model_validate(raw)


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    term: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        term["values"] = list(values)
    return {"matchExpressions": [term]}


@pytest.mark.parametrize(
    ("raw", "labels", "matches"),
    [
        pytest.param({}, {}, True, id="an empty selector matches everything"),
        pytest.param({}, PROD, True, id="an empty selector matches labelled objects too"),
        pytest.param({"matchLabels": {"env": "prod"}}, PROD, True, id="matchLabels matches an equal value"),
        pytest.param({"matchLabels": {"env": "dev"}}, PROD, False, id="matchLabels refuses another value"),
        pytest.param({"matchLabels": {"owner": "x"}}, PROD, False, id="matchLabels refuses a missing key"),
        pytest.param({"matchLabels": {"env": ""}}, {}, False, id="an empty wanted value still needs the key"),
        pytest.param({"matchLabels": {"env": "prod", "team": "b"}}, PROD, False, id="all matchLabels must hold"),
        pytest.param(expr("env", "In", "prod", "staging"), PROD, True, id="In matches a listed value"),
        pytest.param(expr("env", "In", "dev"), PROD, False, id="In refuses an unlisted value"),
        pytest.param(expr("owner", "In", "x"), PROD, False, id="In refuses a missing key"),
        pytest.param(expr("env", "NotIn", "dev"), PROD, True, id="NotIn matches an unlisted value"),
        pytest.param(expr("env", "NotIn", "prod"), PROD, False, id="NotIn refuses a listed value"),
        pytest.param(expr("owner", "NotIn", "x"), PROD, True, id="NotIn matches a missing key"),
        pytest.param(expr("team", "Exists"), PROD, True, id="Exists matches a present key"),
        pytest.param(expr("owner", "Exists"), PROD, False, id="Exists refuses a missing key"),
        pytest.param(expr("owner", "DoesNotExist"), PROD, True, id="DoesNotExist matches a missing key"),
        pytest.param(expr("env", "DoesNotExist"), PROD, False, id="DoesNotExist refuses a present key"),
        pytest.param(
            {"matchLabels": {"env": "prod"}, **expr("team", "In", "b")},
            PROD,
            False,
            id="matchLabels and matchExpressions are ANDed",
        ),
    ],
)
def test_selector_matches(raw: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector(raw), labels) is matches
    assert selector(raw).matches(labels) is matches


def test_no_selector_matches_nothing() -> None:
    assert selector_matches(None, PROD) is False


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(expr("env", "In"), id="In without values"),
        pytest.param(expr("env", "NotIn"), id="NotIn without values"),
        pytest.param(expr("env", "Exists", "x"), id="Exists with values"),
        pytest.param(expr("env", "DoesNotExist", "x"), id="DoesNotExist with values"),
        pytest.param(expr("env", "Matches", "x"), id="an unknown operator"),
    ],
)
def test_malformed_requirements_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        selector(raw)


@pytest.mark.parametrize(
    ("policy", "namespace", "labels", "allowed"),
    [
        pytest.param({}, "team-a", {}, False, id="nothing is allowed by default"),
        pytest.param({"allowedNamespaces": {}}, "team-a", PROD, False, id="an empty allowedNamespaces allows nothing"),
        pytest.param(
            {"allowedNamespaces": {"names": ["team-a"]}}, "team-a", {}, True, id="a listed namespace is allowed"
        ),
        pytest.param(
            {"allowedNamespaces": {"names": ["team-a"]}}, "team-b", PROD, False, id="an unlisted namespace is not"
        ),
        pytest.param(
            {"allowedNamespaces": {"selector": {"matchLabels": {"env": "prod"}}}},
            "team-b",
            PROD,
            True,
            id="a namespace matching the selector is allowed",
        ),
        pytest.param(
            {"allowedNamespaces": {"names": ["team-a"], "selector": {"matchLabels": {"env": "dev"}}}},
            "team-a",
            PROD,
            True,
            id="matching either names or selector is enough",
        ),
        pytest.param(
            {"allowedNamespaces": {"selector": {}}}, "anyone", {}, True, id="an empty selector allows every namespace"
        ),
    ],
)
def test_key_policy_allows_namespace(
    policy: dict[str, Any], namespace: str, labels: dict[str, str], allowed: bool
) -> None:
    assert KeyPolicy.model_validate(policy).allows_namespace(namespace, labels) is allowed


def test_allowed_namespaces_default_is_closed() -> None:
    assert AllowedNamespaces().allows("default", {}) is False
