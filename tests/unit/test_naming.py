"""Service-account names: deterministic, bounded, and recognisable by the drift inventory."""

from __future__ import annotations

import pytest

from openai_operator.model.naming import (
    DIGEST_LENGTH,
    MAX_NAME_LENGTH,
    ServiceAccountName,
    owner_digest,
    parse_service_account_name,
    retained_name,
    service_account_name,
)

pytestmark = pytest.mark.unit

LONG_NAME = "a-really-long-application-name-that-goes-on.and-on.and-on"
LONGEST_NAMESPACE = "n" * 63
LONGEST_NAME = "x" * 253
INST = "c1a2b3d4"
DIGEST = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("namespace", "name", "revision", "expected"),
    [
        pytest.param("team-a", "chat", 1, f"k8s.{INST}.team-a.chat.r1", id="short names are kept whole"),
        pytest.param("team-a", "chat.backend", 12, f"k8s.{INST}.team-a.chat.backend.r12",
                     id="dotted names are kept whole"),
        pytest.param(
            "team-a",
            LONG_NAME,
            3,
            f"k8s.{INST}.team-a.a-really_{owner_digest('team-a', LONG_NAME)}.r3",
            id="long names are cut and carry a 128-bit digest",
        ),
    ],
)
def test_service_account_name(namespace: str, name: str, revision: int, expected: str) -> None:
    assert service_account_name(INST, namespace, name, revision) == expected


@pytest.mark.parametrize(
    ("namespace", "name", "revision"),
    [
        pytest.param("team-a", "chat", 1, id="a short name"),
        pytest.param("team-a", LONG_NAME, 999999, id="a long name with a six-digit revision"),
        pytest.param(LONGEST_NAMESPACE, LONGEST_NAME, 10**9, id="the longest namespace and name"),
        pytest.param("a", "b", 1, id="one-letter names"),
    ],
)
def test_names_fit_the_limit_and_parse_back(namespace: str, name: str, revision: int) -> None:
    value = service_account_name(INST, namespace, name, revision)
    assert len(value) <= MAX_NAME_LENGTH
    parsed = parse_service_account_name(value)
    assert parsed is not None
    assert parsed.revision == revision
    assert parsed.digest == owner_digest(namespace, name)
    assert len(parsed.digest) == DIGEST_LENGTH == 32
    assert parsed.belongs_to(INST, namespace, name)


def test_names_are_deterministic_and_differ_per_revision() -> None:
    assert service_account_name(INST, "ns", LONG_NAME, 1) == service_account_name(INST, "ns", LONG_NAME, 1)
    assert service_account_name(INST, "ns", LONG_NAME, 1) != service_account_name(INST, "ns", LONG_NAME, 2)


def test_shortened_names_of_different_keys_differ() -> None:
    """Two keys whose names share the readable prefix still get different service accounts."""
    first = service_account_name(INST, "team-a", LONG_NAME + "-one", 1)
    second = service_account_name(INST, "team-a", LONG_NAME + "-two", 1)
    assert first != second
    parsed = parse_service_account_name(first)
    assert parsed is not None
    assert not parsed.belongs_to(INST, "team-a", LONG_NAME + "-two")


def test_another_installations_names_never_belong_to_our_keys() -> None:
    """Two clusters sharing one OpenAI project: the same key name under another instance id is not ours."""
    theirs = parse_service_account_name(service_account_name("other", "team-a", "chat", 1))
    assert theirs is not None
    assert not theirs.belongs_to(INST, "team-a", "chat")
    assert theirs.belongs_to("other", "team-a", "chat")


def test_retained_names_are_no_longer_operator_made() -> None:
    name = service_account_name(INST, "team-a", "chat", 3)
    assert retained_name(name) == f"retained.{INST}.team-a.chat.r3"
    assert parse_service_account_name(retained_name(name)) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            f"k8s.{INST}.team-a.chat.r4",
            ServiceAccountName(INST, "team-a", "chat", 4, owner_digest("team-a", "chat"), False),
            id="a full name gives instance, namespace, name and revision",
        ),
        pytest.param(
            f"k8s.{INST}.team-a.chat.r2.r5",
            ServiceAccountName(INST, "team-a", "chat.r2", 5, owner_digest("team-a", "chat.r2"), False),
            id="the last revision suffix is the revision",
        ),
        pytest.param(
            f"k8s.{INST}.team-a.s_{DIGEST}.r7",
            ServiceAccountName(INST, None, None, 7, DIGEST, True),
            id="a shortened name gives only instance, revision and digest",
        ),
        pytest.param("my-service-account", None, id="a hand-made name is not ours"),
        pytest.param(f"k8s.{INST}.team-a.chat", None, id="a name without a revision is not ours"),
        pytest.param(f"k8s.{INST}.team-a.chat.r0", None, id="revision zero is never issued"),
        pytest.param(f"k8s.{INST}.team-a.chat.r01", None, id="a zero-padded revision is not ours"),
        pytest.param(f"k8s.{INST}.Team-A.chat.r1", None, id="upper case cannot come from Kubernetes names"),
        pytest.param(f"k8s.{INST}.team-a.chat.rx", None, id="a non-numeric revision is not ours"),
        pytest.param(f"k8s.{INST}." + "a" * 70 + ".b.r1", None, id="a full form longer than the limit is not ours"),
        pytest.param(f"k8s.{INST}.team-a.x_0123456789.r1", None, id="a 40-bit digest is not ours any more"),
        pytest.param(f"retained.{INST}.team-a.chat.r1", None, id="a retained credential is not ours"),
    ],
)
def test_parse_service_account_name(value: str, expected: ServiceAccountName | None) -> None:
    assert parse_service_account_name(value) == expected


@pytest.mark.parametrize(
    ("namespace", "name", "revision", "complaint"),
    [
        pytest.param("Team", "chat", 1, "not a namespace", id="namespaces are lower-case DNS labels"),
        pytest.param("team.a", "chat", 1, "not a namespace", id="namespaces have no dots"),
        pytest.param("team-a", "Chat", 1, "not an object name", id="names are lower-case"),
        pytest.param("team-a", "chat", 0, "revision must be", id="revisions start at one"),
    ],
)
def test_invalid_inputs_are_refused(namespace: str, name: str, revision: int, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        service_account_name(INST, namespace, name, revision)


def test_instance_ids_are_short_lower_case_words() -> None:
    with pytest.raises(ValueError, match="instance id"):
        service_account_name("Team.A", "team-a", "chat", 1)
