"""The rotate/revoke trigger annotations: tokens the status schema can record, or a SpecError naming the annotation."""

from __future__ import annotations

import pytest

from openai_operator.errors import SpecError
from openai_operator.model.annotations import TriggerTokens, parse_trigger_annotations
from openai_operator.model.limits import MAX_TRIGGER_TOKEN_LENGTH
from openai_operator.model.resources import REVOKE_ANNOTATION, ROTATE_ANNOTATION

pytestmark = pytest.mark.unit

LONGEST = "t" * MAX_TRIGGER_TOKEN_LENGTH


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param(None, TriggerTokens(None, None), id="an object without annotations has no tokens"),
        pytest.param({"note": "x"}, TriggerTokens(None, None), id="other annotations are ignored"),
        pytest.param({ROTATE_ANNOTATION: "2026-11-23"}, TriggerTokens("2026-11-23", None), id="a rotate token is read"),
        pytest.param({REVOKE_ANNOTATION: "leak-1"}, TriggerTokens(None, "leak-1"), id="a revoke token is read"),
        pytest.param(
            {ROTATE_ANNOTATION: "a", REVOKE_ANNOTATION: "b"}, TriggerTokens("a", "b"), id="both tokens are read"
        ),
        pytest.param(
            {ROTATE_ANNOTATION: " padded "}, TriggerTokens(" padded ", None), id="a token is used verbatim, spaces kept"
        ),
        pytest.param(
            {ROTATE_ANNOTATION: LONGEST}, TriggerTokens(LONGEST, None), id="a token of the maximum length is read"
        ),
        pytest.param(
            {ROTATE_ANNOTATION: "ключ-🔑"}, TriggerTokens("ключ-🔑", None), id="a token may use any printable text"
        ),
    ],
)
def test_tokens_are_read(annotations: dict[str, str] | None, expected: TriggerTokens) -> None:
    assert parse_trigger_annotations(annotations) == expected


@pytest.mark.parametrize(
    ("annotations", "field", "message"),
    [
        pytest.param({ROTATE_ANNOTATION: ""}, ROTATE_ANNOTATION, "empty", id="an empty rotate token is refused"),
        pytest.param({REVOKE_ANNOTATION: "  \t"}, REVOKE_ANNOTATION, "empty", id="a blank revoke token is refused"),
        pytest.param(
            {ROTATE_ANNOTATION: LONGEST + "t"},
            ROTATE_ANNOTATION,
            f"at most {MAX_TRIGGER_TOKEN_LENGTH}",
            id="a rotate token longer than the status schema allows is refused",
        ),
        pytest.param(
            {REVOKE_ANNOTATION: "x" * 10_000},
            REVOKE_ANNOTATION,
            f"at most {MAX_TRIGGER_TOKEN_LENGTH}",
            id="a revoke token longer than the status schema allows is refused",
        ),
        pytest.param(
            {ROTATE_ANNOTATION: "a\nb"}, ROTATE_ANNOTATION, "control", id="a token with a newline is refused"
        ),
        pytest.param(
            {ROTATE_ANNOTATION: "", REVOKE_ANNOTATION: ""},
            ROTATE_ANNOTATION,
            "empty",
            id="with both tokens bad the rotate annotation is named first",
        ),
        pytest.param(
            {ROTATE_ANNOTATION: "ok", REVOKE_ANNOTATION: "x" * 300},
            REVOKE_ANNOTATION,
            "at most",
            id="a good rotate token does not hide a bad revoke token",
        ),
    ],
)
def test_bad_tokens_name_the_annotation(annotations: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_trigger_annotations(annotations)
    assert caught.value.field_path == field
    assert message in caught.value.detail
