"""OperatorMetrics: private registries, the recording helpers, and the /metrics handler (no socket)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from openai_operator.metrics import OperatorMetrics, make_metrics_app

pytestmark = pytest.mark.unit


def value(m: OperatorMetrics, sample: str, /, **labels: str) -> float | None:
    return m.registry.get_sample_value(sample, labels)


class TestOperatorMetrics:
    def test_instances_are_independent(self) -> None:
        """Two instances never collide (each has its own registry), unlike default-registry globals."""
        a, b = OperatorMetrics(), OperatorMetrics()
        a.record_orphan_revoked()
        assert value(a, "openai_operator_orphans_revoked_total") == 1.0
        assert value(b, "openai_operator_orphans_revoked_total") == 0.0

    def test_given_registry_is_used(self) -> None:
        """A caller-supplied registry receives the metrics."""
        reg = CollectorRegistry()
        OperatorMetrics(reg).record_rotation("success", "Scheduled")
        assert (
            reg.get_sample_value("openai_operator_rotations_total", {"result": "success", "reason": "Scheduled"}) == 1
        )

    def test_admin_request_observer(self) -> None:
        """The AdminClient hook counts attempts by operation/status and observes latency."""
        m = OperatorMetrics()
        m.observe_admin_request("get_project", "200", 0.2)
        m.observe_admin_request("get_project", "429", 0.1)
        m.observe_admin_request("get_project", "200", 0.3)
        assert value(m, "openai_operator_admin_api_requests_total", operation="get_project", status="200") == 2
        assert value(m, "openai_operator_admin_api_requests_total", operation="get_project", status="429") == 1
        assert value(m, "openai_operator_admin_api_request_duration_seconds_count", operation="get_project") == 3
        total = value(m, "openai_operator_admin_api_request_duration_seconds_sum", operation="get_project")
        assert total == pytest.approx(0.6)

    def test_reconcile_durations_by_kind_and_result(self) -> None:
        """Reconcile passes are timed per kind, split by result."""
        m = OperatorMetrics()
        m.observe_reconcile("OpenAIKey", 1.5)
        m.observe_reconcile("OpenAIKey", 0.5, ok=False)
        assert value(m, "openai_operator_reconcile_duration_seconds_count", kind="OpenAIKey", result="ok") == 1
        assert value(m, "openai_operator_reconcile_duration_seconds_count", kind="OpenAIKey", result="error") == 1

    def test_keys_by_condition_is_a_snapshot(self) -> None:
        """Setting the key counts replaces the previous snapshot, dropping vanished combinations."""
        m = OperatorMetrics()
        m.set_keys_by_condition({("Ready", "True"): 3, ("Ready", "False"): 1})
        m.set_keys_by_condition({("Ready", "True"): 4})
        assert value(m, "openai_operator_keys", condition="Ready", status="True") == 4
        assert value(m, "openai_operator_keys", condition="Ready", status="False") is None

    def test_next_rotation_per_key_and_forget(self) -> None:
        """Per-key next-rotation series are set, and removed when the key is forgotten."""
        m = OperatorMetrics()
        m.set_next_rotation("team-a", "app", 1_800_000_000.0)
        assert value(m, "openai_operator_key_next_rotation_timestamp_seconds", namespace="team-a", name="app") == 1.8e9
        m.set_next_rotation("team-a", "app", None)
        assert value(m, "openai_operator_key_next_rotation_timestamp_seconds", namespace="team-a", name="app") is None
        m.forget_key("team-a", "never-seen")

    def test_budget_alerts(self) -> None:
        """Budget alerts count per kind and threshold (rendered without a trailing .0)."""
        m = OperatorMetrics()
        m.record_budget_alert("OpenAIProject", 80)
        m.record_budget_alert("OpenAIProject", 80.0)
        assert value(m, "openai_operator_budget_alerts_total", kind="OpenAIProject", threshold="80") == 2

    def test_render_is_prometheus_text(self) -> None:
        """render() produces exposition text naming every metric family."""
        text = OperatorMetrics().render().decode()
        for family in (
            "openai_operator_admin_api_requests_total",
            "openai_operator_admin_api_request_duration_seconds",
            "openai_operator_keys",
            "openai_operator_reconcile_duration_seconds",
            "openai_operator_rotations_total",
            "openai_operator_orphans_revoked_total",
            "openai_operator_key_next_rotation_timestamp_seconds",
            "openai_operator_budget_alerts_total",
        ):
            assert f"# HELP {family.removesuffix('_total')}" in text or f"# HELP {family}" in text

    def test_process_metrics_are_opt_in(self) -> None:
        """Process collectors are added only when asked for."""
        assert "process_" not in OperatorMetrics().render().decode()


class TestMetricsApp:
    async def test_metrics_endpoint(self) -> None:
        """GET /metrics answers with the registry's text and Prometheus' content type."""
        m = OperatorMetrics()
        m.record_orphan_revoked(2)
        app = make_metrics_app(m)
        request = make_mocked_request("GET", "/metrics", app=app)
        match = await app.router.resolve(request)
        response = await match.handler(request)
        assert isinstance(response, web.Response)
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        assert response.body is not None
        assert b"openai_operator_orphans_revoked_total 2.0" in bytes(response.body)  # type: ignore[arg-type]


class TestKeyConditionTally:
    def test_counts_follow_each_keys_latest_conditions(self) -> None:
        """The gauge counts keys by their current conditions; a key's update or removal moves it."""
        reg = CollectorRegistry()
        m = OperatorMetrics(reg)
        m.track_key_conditions("a", "one", {"Ready": "True"})
        m.track_key_conditions("a", "two", {"Ready": "False"})
        m.track_key_conditions("b", "three", {"Ready": "False"})
        m.track_key_conditions("b", "three", {"Ready": "True"})
        assert reg.get_sample_value("openai_operator_keys", {"condition": "Ready", "status": "True"}) == 2
        assert reg.get_sample_value("openai_operator_keys", {"condition": "Ready", "status": "False"}) == 1
        m.forget_key("a", "two")
        assert reg.get_sample_value("openai_operator_keys", {"condition": "Ready", "status": "False"}) is None
        assert reg.get_sample_value("openai_operator_keys", {"condition": "Ready", "status": "True"}) == 2

    def test_clearing_the_next_rotation_keeps_the_key_counted(self) -> None:
        """A key without a rotation schedule still counts in the condition gauge."""
        reg = CollectorRegistry()
        m = OperatorMetrics(reg)
        m.track_key_conditions("a", "one", {"Ready": "True"})
        m.set_next_rotation("a", "one", None)
        assert reg.get_sample_value("openai_operator_keys", {"condition": "Ready", "status": "True"}) == 1
