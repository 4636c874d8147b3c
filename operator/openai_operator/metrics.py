"""Prometheus metrics for the operator, on a registry of its own, built at startup.

Why a class and a private registry rather than module-level metrics on the default registry:
importing this module creates nothing (practice 13), tests build as many independent
:class:`OperatorMetrics` as they like without "Duplicated timeseries" errors, and ``/metrics`` shows
only the operator's series (plus process/platform collectors when asked for).

Label sets are kept small and bounded: operations and reasons come from fixed catalogues, statuses
from HTTP codes, kinds from the two CRDs. Per-object series (next rotation time) are removed with
:meth:`OperatorMetrics.forget_key` when the object goes away, so deleted keys do not linger.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["MetricsServer", "OperatorMetrics", "make_metrics_app", "start_metrics_server"]

NAMESPACE: Final = "openai_operator"

_API_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_RECONCILE_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class OperatorMetrics:
    """All of the operator's metrics, registered on ``registry`` (a new one by default).

    Build one in the startup handler, pass :meth:`observe_admin_request` to the
    :class:`~openai_operator.openai.client.AdminClient` as its observer, and serve it with
    :func:`start_metrics_server`.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, process_metrics: bool = False) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        self._key_conditions: dict[tuple[str, str], dict[str, str]] = {}
        self.admin_api_requests = Counter(
            "admin_api_requests",
            "OpenAI API calls (one per attempt) by operation and HTTP status or transport error.",
            ["operation", "status"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.admin_api_latency = Histogram(
            "admin_api_request_duration_seconds",
            "Latency of OpenAI API calls (one per attempt) by operation.",
            ["operation"],
            namespace=NAMESPACE,
            buckets=_API_LATENCY_BUCKETS,
            registry=r,
        )
        self.admin_api_budget_wait = Counter(
            "admin_api_budget_wait_seconds",
            "Time Admin API requests spent waiting for the request budget (--admin-api-rate, or a 429's "
            "Retry-After that holds every call).",
            namespace=NAMESPACE,
            registry=r,
        )
        self.keys = Gauge(
            "keys",
            "OpenAIKey objects by condition type and status (e.g. Ready=True).",
            ["condition", "status"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds",
            "Duration of one reconcile pass by resource kind and result (ok, error).",
            ["kind", "result"],
            namespace=NAMESPACE,
            buckets=_RECONCILE_BUCKETS,
            registry=r,
        )
        self.rotations = Counter(
            "rotations",
            "Key rotations by result (success, failure) and reason (Scheduled, Manual, ...).",
            ["result", "reason"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.orphans_revoked = Counter(
            "orphans_revoked",
            "Operator-named service accounts deleted because no OpenAIKey records them.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.follow_up_failures = Counter(
            "followup_failures",
            "Follow-ups that failed after a credential was recorded, by action (restart, revoke); retried.",
            ["action"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.next_rotation = Gauge(
            "key_next_rotation_timestamp_seconds",
            "Unix time of the next scheduled rotation of each OpenAIKey.",
            ["namespace", "name"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.budget_alerts = Counter(
            "budget_alerts",
            "Budget alerts fired (once per period each), by kind (OpenAIProject, OpenAIKey) and threshold "
            "percent, or 'forecast' for the month-end forecast passing the budget.",
            ["kind", "threshold"],
            namespace=NAMESPACE,
            registry=r,
        )
        spend_labels = ["kind", "namespace", "name"]
        self.spend = Gauge(
            "spend_month_to_date_usd",
            "Spend this month (UTC) in USD from OpenAI's daily cost buckets, per OpenAIProject and OpenAIKey "
            "(namespace is empty for projects).",
            spend_labels, namespace=NAMESPACE, registry=r,
        )
        self.spend_forecast = Gauge(
            "spend_forecast_usd", "Month-end spend projected from the burn rate so far, in USD.",
            spend_labels, namespace=NAMESPACE, registry=r,
        )
        self.budget = Gauge(
            "budget_usd", "Monthly budget (spec.budget.monthlyUSD) in USD.",
            spend_labels, namespace=NAMESPACE, registry=r,
        )
        self.budget_remaining = Gauge(
            "budget_remaining_usd", "Monthly budget minus spend this month, in USD (negative past the budget).",
            spend_labels, namespace=NAMESPACE, registry=r,
        )
        self.spend_period_reset = Gauge(
            "spend_period_reset_timestamp_seconds",
            "Unix time at which the current budget period ends (spend, alerts and budget holds reset).",
            namespace=NAMESPACE, registry=r,
        )
        self.spend_polls = Counter(
            "spend_polls", "Costs polls of the organisation, by result (ok, error).",
            ["result"], namespace=NAMESPACE, registry=r,
        )
        self.spend_poll_duration = Histogram(
            "spend_poll_duration_seconds", "Wall time of one costs poll: the Costs API read and the fan-out.",
            namespace=NAMESPACE, buckets=_RECONCILE_BUCKETS, registry=r,
        )
        self.spend_last_success = Gauge(
            "spend_poll_last_success_timestamp_seconds",
            "Unix time of the last costs poll that succeeded (status.spend is as old as this, or older).",
            namespace=NAMESPACE, registry=r,
        )
        self.spend_bucket_age = Gauge(
            "spend_newest_bucket_age_seconds",
            "Age of the newest daily cost bucket with any cost (now minus its start); it grows while polls fail.",
            namespace=NAMESPACE, registry=r,
        )
        self.workload_identities = Gauge(
            "workload_identities",
            "OpenAIWorkloadIdentity objects by condition type and status (e.g. Ready=True).",
            ["condition", "status"], namespace=NAMESPACE, registry=r,
        )
        self.jwks_uploads = Counter(
            "jwks_uploads",
            "Uploads of the cluster's service-account key set (JWKS) to an OpenAI identity provider.",
            namespace=NAMESPACE, registry=r,
        )
        self.identity_mappings = Gauge(
            "identity_provider_mappings",
            "Federation rules (mappings) each OpenAI provider of an OpenAIIdentityProvider holds (at most 50).",
            ["provider", "provider_id"], namespace=NAMESPACE, registry=r,
        )
        self._identity_conditions: dict[tuple[str, str], dict[str, str]] = {}

    def observe_admin_request(self, operation: str, status: str, duration_seconds: float, /) -> None:
        """Record one API attempt; the signature matches ``AdminClient``'s observer hook."""
        self.admin_api_requests.labels(operation=operation, status=status).inc()
        self.admin_api_latency.labels(operation=operation).observe(duration_seconds)

    def observe_admin_budget_wait(self, seconds: float, /) -> None:
        """Record time an Admin API request waited for the request budget (pacing or a 429's hold)."""
        self.admin_api_budget_wait.inc(seconds)

    def observe_reconcile(self, kind: str, duration_seconds: float, *, ok: bool = True) -> None:
        """Record one reconcile pass of an ``OpenAIProject`` or ``OpenAIKey``."""
        self.reconcile_duration.labels(kind=kind, result="ok" if ok else "error").observe(duration_seconds)

    def track_key_conditions(self, namespace: str, name: str, conditions: Mapping[str, str]) -> None:
        """Remember one key's ``{condition type: status}`` and refresh the key-condition gauge."""
        self._key_conditions[(namespace, name)] = dict(conditions)
        self._refresh_key_conditions()

    def _refresh_key_conditions(self) -> None:
        counts: dict[tuple[str, str], int] = {}
        for conditions in self._key_conditions.values():
            for pair in conditions.items():
                counts[pair] = counts.get(pair, 0) + 1
        self.set_keys_by_condition(counts)

    def set_keys_by_condition(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Replace the key-condition gauge with ``{(condition, status): count}`` from a full count.

        Clearing first drops combinations that no longer occur, so the gauge is a snapshot rather
        than an accumulation of stale series.
        """
        self.keys.clear()
        for (condition, status), count in counts.items():
            self.keys.labels(condition=condition, status=status).set(count)

    def record_jwks_upload(self) -> None:
        """Count one JWKS upload (the cluster's signing keys changed, or a provider was created)."""
        self.jwks_uploads.inc()

    def set_identity_mappings(self, provider: str, provider_id: str, mappings: int) -> None:
        """Set how many mappings one OpenAI provider holds."""
        self.identity_mappings.labels(provider=provider, provider_id=provider_id).set(mappings)

    def track_identity_conditions(self, namespace: str, name: str, conditions: Mapping[str, str] | None) -> None:
        """Record (``None``: forget) one workload identity's conditions and refresh the gauge."""
        if conditions is None:
            self._identity_conditions.pop((namespace, name), None)
        else:
            self._identity_conditions[(namespace, name)] = dict(conditions)
        counts: dict[tuple[str, str], int] = {}
        for recorded in self._identity_conditions.values():
            for condition, status in recorded.items():
                counts[(condition, status)] = counts.get((condition, status), 0) + 1
        self.workload_identities.clear()
        for (condition, status), count in counts.items():
            self.workload_identities.labels(condition=condition, status=status).set(count)

    def record_rotation(self, result: str, reason: str = "Unspecified") -> None:
        """Count a rotation attempt's outcome (``success`` or ``failure``) and why it started."""
        self.rotations.labels(result=result, reason=reason).inc()

    def record_orphan_revoked(self, count: int = 1) -> None:
        """Count service accounts revoked as orphans by the inventory."""
        self.orphans_revoked.inc(count)

    def record_follow_up_failure(self, action: str) -> None:
        """Count a failed restart or revocation of a superseded credential (Degraded=True)."""
        self.follow_up_failures.labels(action=action).inc()

    def set_next_rotation(self, namespace: str, name: str, timestamp: float | None) -> None:
        """Set (or with ``None`` remove) the next-rotation time of one key."""
        if timestamp is None:
            with contextlib.suppress(KeyError):
                self.next_rotation.remove(namespace, name)
        else:
            self.next_rotation.labels(namespace=namespace, name=name).set(timestamp)

    def forget_key(self, namespace: str, name: str) -> None:
        """Drop the per-key series of a deleted OpenAIKey."""
        with contextlib.suppress(KeyError):
            self.next_rotation.remove(namespace, name)
        self.forget_spend("OpenAIKey", namespace, name)
        if self._key_conditions.pop((namespace, name), None) is not None:
            self._refresh_key_conditions()

    def record_budget_alert(self, kind: str, threshold: float | str) -> None:
        """Count a budget alert (each fires once per period): a threshold percent, or ``"forecast"``."""
        label = threshold if isinstance(threshold, str) else f"{threshold:g}"
        self.budget_alerts.labels(kind=kind, threshold=label).inc()

    def set_spend(self, kind: str, namespace: str, name: str, spend_usd: float | None, forecast_usd: float | None,
                  budget_usd: float | None) -> None:
        """Publish one object's spend, forecast, budget and remaining budget (``None`` drops the series)."""
        labels = (kind, namespace, name)
        for gauge, value in ((self.spend, spend_usd), (self.spend_forecast, forecast_usd),
                             (self.budget, budget_usd)):
            _set_or_remove(gauge, labels, value)
        remaining = budget_usd - spend_usd if budget_usd is not None and spend_usd is not None else None
        _set_or_remove(self.budget_remaining, labels, remaining)

    def forget_spend(self, kind: str, namespace: str, name: str) -> None:
        """Drop the spend series of a deleted object."""
        self.set_spend(kind, namespace, name, None, None, None)

    def observe_spend_poll(self, duration_seconds: float, *, ok: bool, at: float, period_end: float,
                           newest_bucket_age_seconds: float | None) -> None:
        """Record one costs poll; ``newest_bucket_age_seconds`` is ``None`` while no cost is known."""
        self.spend_polls.labels(result="ok" if ok else "error").inc()
        self.spend_poll_duration.observe(duration_seconds)
        if ok:
            self.spend_last_success.set(at)
        self.spend_period_reset.set(period_end)
        if newest_bucket_age_seconds is not None:
            self.spend_bucket_age.set(newest_bucket_age_seconds)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


def _set_or_remove(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    if value is None:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
    else:
        gauge.labels(*labels).set(value)


def make_metrics_app(metrics: OperatorMetrics, *, path: str = "/metrics") -> web.Application:
    """An aiohttp application serving ``metrics`` at ``path`` (separate so tests need no socket)."""

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get(path, handle)
    return app


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running metrics endpoint; ``await server.stop()`` in the cleanup handler."""

    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        """Stop listening and release the port."""
        await self.runner.cleanup()


async def start_metrics_server(
    metrics: OperatorMetrics,
    *,
    host: str = "0.0.0.0",  # noqa: S104
    port: int = 8080,
    path: str = "/metrics",
) -> MetricsServer:
    """Serve ``/metrics`` on the running event loop (Kopf's), without a thread.

    ``port=0`` picks a free port; the chosen one is in :attr:`MetricsServer.port`. Binding all
    interfaces is the default because Prometheus scrapes the pod IP; a NetworkPolicy limits who can.
    """
    runner = web.AppRunner(make_metrics_app(metrics, path=path), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host=host, port=port)
    await site.start()
    addresses = runner.addresses
    bound = int(addresses[0][1]) if addresses else port
    return MetricsServer(runner=runner, port=bound)
