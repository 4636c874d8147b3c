"""The per-object locks of ``Deps``: shared while in use, gone with their last user."""

from __future__ import annotations

import asyncio
import gc

import pytest

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.metrics import OperatorMetrics
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit


def _deps() -> Deps:
    config = OperatorConfig(admin_key=SecretValue("sk-admin-" + "a" * 40), fingerprint_key=b"k" * 32)
    return Deps(config=config, admin=None, kube=None, objects=None,  # type: ignore[arg-type]
                metrics=OperatorMetrics(), vault_client_factory=None)


def test_two_users_of_one_object_are_kept_apart_and_the_lock_goes_with_them() -> None:
    deps = _deps()
    order: list[str] = []

    async def use(who: str, hold: float) -> None:
        async with deps.lock("OpenAIKey", "team", "app"):
            order.append(f"{who} in")
            await asyncio.sleep(hold)
            order.append(f"{who} out")

    async def run() -> None:
        await asyncio.gather(use("a", 0.05), use("b", 0))
        assert deps.lock("OpenAIKey", "team", "other") is not deps.lock("OpenAIKey", "team", "app")

    asyncio.run(run())
    assert order == ["a in", "a out", "b in", "b out"]
    gc.collect()
    assert len(deps.locks) == 0, "a deleted key's lock must not stay for the life of the process"
