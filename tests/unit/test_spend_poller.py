"""The costs poller with fakes behind its small interfaces: one read per interval however many timers
tick it, Retry-After and backoff after a failure (status untouched), and a fan-out that reads and
writes only the objects whose spend changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError, PermanentError, TransientError
from openai_operator.metrics import OperatorMetrics
from openai_operator.model.status import KeyStatus
from openai_operator.openai.models import CostBucket, CostResult
from openai_operator.operations.spend import (
    SpendPoller,
    apply_spend,
    key_spend_entries,
    project_spend_entry,
    read_costs,
)
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 10, 6, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class FakeCosts:
    """``GET /organization/costs``: a fixed answer, or an error to raise."""

    rows: list[tuple[str, str | None, float]] = field(default_factory=list)
    fail: OperatorError | None = None
    calls: list[datetime] = field(default_factory=list)
    offset: timedelta = timedelta(0)

    async def costs(self, *, start_time: Any, group_by: Any = (), limit: Any = None, **_: Any) -> list[CostBucket]:
        self.calls.append(start_time)
        if self.fail is not None:
            raise self.fail
        results = tuple(CostResult(DEC, DEC + timedelta(days=1), usd, "usd", project, key)
                        for project, key, usd in self.rows)
        return [CostBucket(DEC, DEC + timedelta(days=1), results)]

    def server_time(self, local: datetime) -> datetime:
        return local + self.offset


@dataclass
class FakeObjects:
    keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def get_key(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"{namespace}/{name}")
        return self.keys.get((namespace, name))

    async def patch_key_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patches.append((f"{namespace}/{name}", status))
        self.keys[(namespace, name)]["status"].update(status)

    async def get_project(self, name: str) -> dict[str, Any] | None:
        self.reads.append(name)
        return self.projects.get(name)

    async def patch_project_status(self, name: str, status: dict[str, Any]) -> None:
        self.patches.append((name, status))
        self.projects[name]["status"].update(status)


def deps_with(admin: FakeCosts, objects: FakeObjects) -> Deps:
    config = OperatorConfig(admin_key=SecretValue("sk-admin-" + "a" * 40), fingerprint_key=b"k" * 32)
    return Deps(config=config, admin=admin, kube=None, objects=objects,  # type: ignore[arg-type]
                metrics=OperatorMetrics(), vault_client_factory=None, clock=lambda: NOW, instance_id="test1")


def key_body(name: str, key_id: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "apps", "generation": 1},
            "spec": {"projectRef": {"name": "team"}, "secret": {}},
            "status": {"keyId": key_id, "serviceAccountId": f"sa_{key_id}", "revision": 1}}


def views(objects: FakeObjects) -> tuple[list[Any], list[Any]]:
    """What the indexes would hold for these objects (built with the index entries' real functions)."""
    projects = [v for body in objects.projects.values()
                for v in project_spend_entry(body["metadata"]["name"], body["spec"], body["status"],
                                             body["metadata"]).values()]
    keys = {(v.namespace, v.name): v for body in objects.keys.values()
            for v in key_spend_entries("apps", body["metadata"]["name"], body["spec"], body["status"],
                                       body["metadata"]).values()}
    return projects, list(keys.values())


def no_events(body: Any, notes: Any) -> None:
    raise AssertionError("no alert is expected here")


def no_nudge(namespace: str, name: str) -> None:
    return None


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_one_read_per_interval_however_many_ticks() -> None:
    admin, objects, clock = FakeCosts(), FakeObjects(), Monotonic()
    poller = SpendPoller(deps_with(admin, objects), timedelta(minutes=5), post=no_events, nudge=no_nudge,
                         monotonic=clock)
    for _ in range(5):
        await poller.tick(lambda: ([], []))
    assert admin.calls == [DEC], "from the start of the month, once"
    clock.now += 301
    await poller.tick(lambda: ([], []))
    assert len(admin.calls) == 2


async def test_a_failed_read_honours_retry_after_and_writes_nothing() -> None:
    admin, objects, clock = FakeCosts(fail=TransientError("429", retry_after=120)), FakeObjects(), Monotonic()
    objects.keys[("apps", "a")] = key_body("a", "key_a")
    poller = SpendPoller(deps_with(admin, objects), timedelta(minutes=5), post=no_events, nudge=no_nudge,
                         monotonic=clock)
    await poller.tick(lambda: views(objects))
    clock.now += 119
    await poller.tick(lambda: views(objects))
    assert len(admin.calls) == 1, "not before the server's Retry-After"
    assert objects.patches == []
    clock.now += 2
    admin.fail = None
    await poller.tick(lambda: views(objects))
    assert len(admin.calls) == 2
    assert [p[0] for p in objects.patches] == ["apps/a"]


async def test_only_objects_whose_spend_changed_are_read_and_written() -> None:
    admin, objects = FakeCosts(rows=[("proj_1", "key_a", 1.0), ("proj_1", "key_b", 2.0)]), FakeObjects()
    deps = deps_with(admin, objects)
    for name in ("a", "b", "c"):
        objects.keys[("apps", name)] = key_body(name, f"key_{name}")
    first = await apply_spend(deps, await read_costs(deps), *views(objects))
    assert first.written == 3, "every key gets its first spend (c: zero)"
    objects.reads.clear()
    objects.patches.clear()
    second = await apply_spend(deps, await read_costs(deps), *views(objects))
    assert (second.written, objects.reads) == (0, []), "an unchanged poll reads and writes nothing"
    admin.rows.append(("proj_1", "key_c", 0.5))
    third = await apply_spend(deps, await read_costs(deps), *views(objects))
    assert (third.written, objects.reads) == (1, ["apps/c"])
    assert KeyStatus.from_dict(objects.keys[("apps", "c")]["status"]).spend.month_to_date_usd == 0.5  # type: ignore[union-attr]


async def test_the_month_is_openais() -> None:
    """A local clock a day behind OpenAI's on the 1st still reads OpenAI's new month."""
    admin, objects = FakeCosts(offset=timedelta(days=1)), FakeObjects()
    deps = deps_with(admin, objects)
    deps.clock = lambda: datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    report = await read_costs(deps)
    assert admin.calls == [DEC]
    assert report.period_start == DEC


async def test_one_object_that_cannot_be_written_does_not_stop_the_others_or_lose_their_alerts() -> None:
    """A PATCH refused for one key: the keys before and after it are still updated, and the alerts of
    those saved are still announced (an alert saved as fired but never posted would be lost for good)."""
    admin = FakeCosts(rows=[("proj_1", "key_a", 60.0), ("proj_1", "key_b", 70.0), ("proj_1", "key_c", 70.0)])
    objects = RefusingObjects(refuse="apps/b")
    deps = deps_with(admin, objects)
    for name in ("a", "b", "c"):
        body = key_body(name, f"key_{name}")
        body["spec"]["budget"] = {"monthlyUSD": 100}
        objects.keys[("apps", name)] = body
    posted: list[tuple[str, list[str]]] = []
    poller = SpendPoller(deps, timedelta(minutes=5), nudge=no_nudge,
                         post=lambda body, notes: posted.append((body["metadata"]["name"], [n.reason for n in notes])))
    await poller.tick(lambda: views(objects))
    assert [p[0] for p in objects.patches] == ["apps/a", "apps/c"]
    assert sorted(name for name, _ in posted) == ["a", "c"]
    assert all("BudgetThresholdCrossed" in reasons for _, reasons in posted)


@dataclass
class RefusingObjects(FakeObjects):
    refuse: str = ""

    async def patch_key_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        if f"{namespace}/{name}" == self.refuse:
            raise PermanentError("admission webhook refused the patch")
        await super().patch_key_status(namespace, name, status)


async def test_a_malformed_budget_leaves_the_objects_spend_status_alone() -> None:
    """Not "no budget": that would drop BudgetExceeded (lifting a Revoke hold) and re-fire alerts later."""
    admin, objects = FakeCosts(rows=[("proj_1", "key_a", 60.0)]), FakeObjects()
    body = key_body("a", "key_a")
    body["spec"]["budget"] = {"monthlyUSD": -5, "onExceeded": "Revoke"}
    objects.keys[("apps", "a")] = body
    deps = deps_with(admin, objects)
    out = await apply_spend(deps, await read_costs(deps), *views(objects))
    assert (out.written, objects.patches) == (0, [])


async def test_a_failed_spend_limit_read_still_brings_the_spend_up_to_date() -> None:
    admin, objects = FailingLimit(rows=[("proj_1", None, 3.0)]), FakeObjects()
    objects.projects["team"] = {"metadata": {"name": "team", "generation": 1}, "spec": {},
                                "status": {"projectId": "proj_1",
                                           "spendLimit": {"enforcement": "inactive", "managed": True}}}
    deps = deps_with(admin, objects)
    out = await apply_spend(deps, await read_costs(deps), *views(objects))
    assert out.failed == []
    assert objects.projects["team"]["status"]["spend"]["monthToDateUSD"] == 3.0


@dataclass
class FailingLimit(FakeCosts):
    async def get_spend_limit(self, project_id: str) -> Any:
        raise TransientError("503")
