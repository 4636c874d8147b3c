"""Two shards on the real test bed: each acts only on the keys of its namespaces, and a namespace that
moves from one shard to the other is handed over without two shards ever working on one key.

Shard ``a`` serves ``ns1`` and manages the project; shard ``b`` serves ``ns2`` (``--no-manage-projects``).
Each replica keeps a Lease (``--shard-lease-namespace``) naming its namespace patterns, and every
key records its shard in ``status.shard``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from harness import Emulator, OperatorProcess
from scenario import (
    apply,
    get,
    key_manifest,
    key_status,
    live_accounts_for,
    project_manifest,
    wait_ready,
    wait_revision,
)
from support import wait_for
from testbed import Kubectl


@pytest.fixture
def namespaces(kubectl: Kubectl) -> Iterator[tuple[str, str, str]]:
    """Two tenant namespaces and one for the shard Leases."""
    names = tuple(f"sh-{secrets.token_hex(3)}" for _ in range(3))
    for name in names:
        kubectl("create", "namespace", name)
    yield names  # type: ignore[misc]
    for name in names:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def _shard(base: OperatorProcess, name: str, leases: str, *args: str) -> OperatorProcess:
    log_dir = base.log_dir / f"shard-{name}-{secrets.token_hex(2)}"
    log_dir.mkdir()
    shard = OperatorProcess(env=base.env, log_dir=log_dir)
    shard.extra_args = [f"--shard={name}", f"--shard-lease-namespace={leases}", *args]
    return shard


def _mentions(shard: OperatorProcess, namespace: str) -> list[dict[str, Any]]:
    return [line for line in shard.log_lines() if namespace in str(line)]


def test_two_shards_act_only_on_their_namespaces_and_hand_one_over(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, namespaces: tuple[str, str, str]
) -> None:
    ns1, ns2, leases = namespaces
    a = _shard(operator_factory, "a", leases, f"--namespace={ns1}")
    b = _shard(operator_factory, "b", leases, f"--namespace={ns2}", "--no-manage-projects")
    b2 = _shard(operator_factory, "b", leases, f"--namespace={ns1}", f"--namespace={ns2}", "--no-manage-projects")
    try:
        a.start()
        b.start()
        project = f"p-{secrets.token_hex(3)}"
        apply(kubectl, project_manifest(project, keyPolicy={"allowedNamespaces": {"names": [ns1, ns2]}}))
        project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
        apply(kubectl, key_manifest("k1", ns1, project))
        apply(kubectl, key_manifest("k2", ns2, project))
        wait_ready(kubectl, "openaikey", "k1", "-n", ns1)
        wait_ready(kubectl, "openaikey", "k2", "-n", ns2)

        assert key_status(kubectl, ns1, "k1")["shard"] == "a"
        assert key_status(kubectl, ns2, "k2")["shard"] == "b"
        assert _mentions(a, ns1), "shard a logged its own key"
        assert _mentions(b, ns2), "shard b logged its own key"
        assert not _mentions(a, ns2), "shard a never touched a key of ns2"
        assert not _mentions(b, ns1), "shard b never touched a key of ns1"
        leases_seen = {item["metadata"]["labels"]["openai.operator.dev/shard"]
                       for item in get(kubectl, "leases", "-n", leases)["items"]}
        assert leases_seen == {"a", "b"}

        # ns1 moves to shard b: the new b replica starts while a still serves ns1 (a rollout's overlap).
        b.stop()
        b2.start()
        wait_for(lambda: any("another shard still serves this namespace" in str(line) and "k1" in str(line)
                             for line in b2.log_lines()),
                 timeout=60, what="the new b replica to see k1 and leave it to shard a")
        revision = key_status(kubectl, ns1, "k1")["revision"]
        kubectl("annotate", "openaikey", "k1", "-n", ns1, "--overwrite", "openai.operator.dev/rotate=while-a-serves")
        after = wait_revision(kubectl, ns1, "k1", above=revision)
        assert after["shard"] == "a", "shard a, which still serves ns1, rotated it"
        assert not any("openaikey" in str(line).lower() and "k1" in str(line) and "secret created" in str(line)
                       for line in b2.log_lines())

        # a stops (its Lease is deleted on the way out): b takes k1 over at its next look.
        a.stop()
        taken = wait_for(lambda: key_status(kubectl, ns1, "k1").get("shard") == "b", timeout=60,
                         what="shard b to take k1 over once no replica of a serves ns1")
        assert taken
        revision = key_status(kubectl, ns1, "k1")["revision"]
        kubectl("annotate", "openaikey", "k1", "-n", ns1, "--overwrite", "openai.operator.dev/rotate=after-handover")
        final = wait_revision(kubectl, ns1, "k1", above=revision)
        assert final["shard"] == "b"
        live = {account["id"] for account in live_accounts_for(emulator, project_id, ns1, "k1")}
        held = {final["serviceAccountId"], *(p["serviceAccountId"] for p in final.get("previous") or [])}
        assert live <= held, f"no account of k1 beyond the ones its status holds: {live - held}"
        assert final["serviceAccountId"] in live
    finally:
        for shard in (a, b, b2):
            shard.stop()
