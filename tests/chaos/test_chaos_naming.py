"""The chaos test's one helper for attributing service accounts, under both naming schemes."""

from __future__ import annotations

import pytest

from chaos.naming import belongs_to, operator_named, revision_of


@pytest.mark.parametrize(("account", "namespace", "name", "expected"), [
    ("k8s.team-a.chat.r1", "team-a", "chat", True),                  # today's scheme
    ("k8s.3f9a1c2b.team-a.chat.r12", "team-a", "chat", True),        # with the instance id
    ("k8s.team-a.chat.r1", "team-a", "chatty", False),
    ("k8s.team-a.chatty.r1", "team-a", "chat", False),
    ("k8s.3f9a1c2b.team-a.chat.r1", "team-b", "chat", False),
    ("k8s.Not_An_Id.team-a.chat.r1", "team-a", "chat", False),       # not an instance id
    ("k8s.abcdefghijklm.team-a.chat.r1", "team-a", "chat", False),   # 13 characters: too long
    ("k8s.team-a.chat.rx", "team-a", "chat", False),
    ("retained.team-a.chat.r1", "team-a", "chat", False),            # Retain renames them away
])
def test_belongs_to(account: str, namespace: str, name: str, expected: bool) -> None:
    assert belongs_to(account, namespace, name) is expected


def test_operator_named_and_revision() -> None:
    assert operator_named("k8s.a.b.r3")
    assert not operator_named("someone-else")
    assert revision_of("k8s.inst.a.b.r42") == 42
    assert revision_of("k8s.a.b") is None
