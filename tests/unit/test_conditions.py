"""Conditions: ``set_condition`` keeps "since" truthful, and conditions round-trip through status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from openai_operator.model.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    conditions_from_list,
    conditions_to_list,
    get_condition,
    is_true,
    set_condition,
)
from openai_operator.model.reasons import Reason

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
READY = ConditionType.READY


def ready(status: ConditionStatus, reason: str = "Issued", since: datetime = T0, generation: int = 1) -> Condition:
    return Condition(READY, status, reason, "msg", since, generation)


@pytest.mark.parametrize(
    ("before", "status", "since"),
    [
        pytest.param([], True, T1, id="a new condition starts now"),
        pytest.param([ready("True")], True, T0, id="an unchanged status keeps its transition time"),
        pytest.param([ready("True")], False, T1, id="a changed status moves the transition time"),
        pytest.param([ready("Unknown")], "Unknown", T0, id="Unknown to Unknown is no transition"),
        pytest.param([ready("False")], "True", T1, id="the string True counts like the boolean"),
    ],
)
def test_set_condition_transition_time(
    before: list[Condition], status: bool | ConditionStatus, since: datetime
) -> None:
    after = set_condition(before, READY, status, Reason.ISSUED, "delivered", 2, T1)
    found = get_condition(after, READY)
    assert found is not None
    assert found.last_transition_time == since


def test_set_condition_always_updates_reason_message_and_generation() -> None:
    after = set_condition([ready("False", "Issuing")], READY, False, Reason.ADMIN_API_UNAVAILABLE, "503", 7, T1)
    assert after == [Condition(READY, "False", "AdminAPIUnavailable", "503", T0, 7)]


def test_set_condition_keeps_other_conditions_and_their_order() -> None:
    rotating = Condition(ConditionType.ROTATING, "False", "NotDue", "", T0, 1)
    budget = Condition(ConditionType.BUDGET_EXCEEDED, "False", "WithinBudget", "", T0, 1)
    before = [rotating, ready("True"), budget]
    after = set_condition(before, READY, False, Reason.PROJECT_NOT_READY, "waiting", 2, T1)
    assert [c.type for c in after] == ["Rotating", "Ready", "BudgetExceeded"]
    assert after[0] is rotating
    assert after[2] is budget


def test_set_condition_does_not_modify_its_input() -> None:
    before = [ready("True")]
    set_condition(before, READY, False, Reason.REVOKED, "", 2, T1)
    assert before == [ready("True")]


def test_set_condition_appends_a_missing_type() -> None:
    after = set_condition([ready("True")], ConditionType.ROTATING, True, Reason.SCHEDULED, "due", 1, T1)
    assert [c.type for c in after] == ["Ready", "Rotating"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            "verify failed for sk-proj-abcdefghijkl1234", "verify failed for sk-proj-[REDACTED]", id="keys are scrubbed"
        ),
        pytest.param("x" * 40000, "x" * 32768, id="long messages are cut to the schema limit"),
        pytest.param("plain", "plain", id="ordinary messages pass"),
    ],
)
def test_set_condition_messages_are_safe_to_publish(message: str, expected: str) -> None:
    (found,) = set_condition([], READY, False, Reason.VERIFICATION_FAILED, message, 1, T1)
    assert found.message == expected


@pytest.mark.parametrize(
    "now",
    [pytest.param(datetime(2026, 1, 1), id="a naive now is refused")],
)
def test_set_condition_needs_an_aware_now(now: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        set_condition([], READY, True, Reason.ISSUED, "", 1, now)


def test_an_invalid_status_is_refused() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], READY, "Maybe", Reason.ISSUED, "", 1, T1)  # type: ignore[arg-type]


def test_conditions_round_trip_through_status_dicts() -> None:
    eastern = timezone(timedelta(hours=-5))
    conditions = [
        Condition(READY, "True", "Issued", "ok", T0.astimezone(eastern), 3),
        Condition(ConditionType.ROTATING, "False", "NotDue", "", T1, None),
    ]
    raw = conditions_to_list(conditions)
    assert raw == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Issued",
            "message": "ok",
            "lastTransitionTime": "2026-11-01T08:00:00Z",
            "observedGeneration": 3,
        },
        {
            "type": "Rotating",
            "status": "False",
            "reason": "NotDue",
            "message": "",
            "lastTransitionTime": "2026-11-01T08:05:00Z",
        },
    ]
    assert conditions_from_list(raw) == conditions


def test_reading_tolerates_sparse_conditions() -> None:
    (found,) = conditions_from_list([{"type": "Ready", "status": "True"}, {"status": "False"}])
    assert (found.type, found.status, found.reason, found.message) == ("Ready", "True", "", "")
    assert found.last_transition_time == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param([], False, id="absent is not true"),
        pytest.param([ready("True")], True, id="True is true"),
        pytest.param([ready("Unknown")], False, id="Unknown is not true"),
    ],
)
def test_is_true(conditions: list[Condition], expected: bool) -> None:
    assert is_true(conditions, READY) is expected


def test_reasons_are_camel_case_and_unique() -> None:
    values = [r.value for r in Reason]
    assert len(values) == len(set(values))
    assert all(v[0].isupper() and v.isalnum() for v in values)


def test_status_views_set_conditions_without_touching_other_fields() -> None:
    from openai_operator.model.status import KeyStatus, ProjectStatus

    key = KeyStatus(revision=3, conditions=(ready("True"),))
    updated = key.with_condition(READY, True, Reason.ISSUED, "again", 4, T1)
    assert updated.revision == 3
    assert updated.condition(READY) == Condition(READY, "True", "Issued", "again", T0, 4)
    assert key.condition(READY) == ready("True")

    project = ProjectStatus().with_condition(
        ConditionType.RATE_LIMITS_SYNCED, False, Reason.RATE_LIMITS_FAILED, "", 1, T1
    )
    assert project.condition(ConditionType.RATE_LIMITS_SYNCED) is not None
    assert project.condition(READY) is None
