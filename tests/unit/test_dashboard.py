"""The chart's Grafana dashboard queries only metrics the operator exports, with labels they have."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter, Gauge, Histogram

from openai_operator.metrics import OperatorMetrics

pytestmark = pytest.mark.unit

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "openai-operator" / "dashboards" / "openai-operator.json"
METRIC = re.compile(r"\b(openai_operator_[a-z_]+)(?:\{([^}]*)\})?")
LABEL = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")


def exported() -> dict[str, set[str]]:
    """Every series name the operator exposes, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for value in vars(OperatorMetrics()).values():
        if isinstance(value, Counter):
            names[value._name + "_total"] = set(value._labelnames)
        elif isinstance(value, Histogram):
            for suffix in ("_bucket", "_sum", "_count"):
                names[value._name + suffix] = set(value._labelnames) | ({"le"} if suffix == "_bucket" else set())
        elif isinstance(value, Gauge):
            names[value._name] = set(value._labelnames)
    return names


def queries() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_every_queried_metric_and_label_is_exported() -> None:
    series = exported()
    used = [(m.group(1), m.group(2) or "") for q in queries() for m in METRIC.finditer(q)]
    assert used, "the dashboard queries something"
    assert sorted({name for name, _ in used} - set(series)) == []
    wrong = [(name, label) for name, selector in used for label in LABEL.findall(selector)
             if label not in series[name]]
    assert wrong == []


def test_the_dashboard_covers_what_a_platform_team_watches() -> None:
    text = " ".join(queries())
    for needed in ("spend_month_to_date_usd", "budget_usd", "spend_forecast_usd", "rotations_total",
                   "admin_api_requests_total", "openai_operator_keys"):
        assert needed in text
