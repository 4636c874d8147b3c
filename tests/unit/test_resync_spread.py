"""Resyncs spread over the interval: each key at its own phase, never later than one interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openai_operator.reconcile.spread import resync_delay

INTERVAL = timedelta(minutes=5)
NOW = datetime(2026, 12, 2, 3, 0, 7, tzinfo=UTC)


def test_every_delay_is_within_one_interval() -> None:
    for i in range(500):
        delay = resync_delay(f"ns/key-{i}", INTERVAL, NOW)
        assert timedelta(0) < delay <= INTERVAL


def test_a_thousand_keys_started_together_spread_over_the_interval() -> None:
    """Keys that all finish a pass at the same moment wake in ten roughly equal groups, not at once."""
    per_tenth = [0] * 10
    for i in range(1000):
        delay = resync_delay(f"team-{i % 7}/key-{i}", INTERVAL, NOW)
        per_tenth[min(int(delay / INTERVAL * 10), 9)] += 1
    assert all(60 <= count <= 140 for count in per_tenth), per_tenth


def test_a_key_keeps_its_phase_from_pass_to_pass() -> None:
    """Whenever a pass ends, the next wake-up lands on the same phase of the interval."""
    first = NOW + resync_delay("ns/a", INTERVAL, NOW)
    later = NOW + timedelta(seconds=42)
    second = later + resync_delay("ns/a", INTERVAL, later)
    gap = (second - first).total_seconds()
    assert min(abs(gap), abs(gap - INTERVAL.total_seconds())) < 1e-3, gap


def test_a_zero_interval_means_no_wait() -> None:
    assert resync_delay("ns/a", timedelta(0), NOW) == timedelta(0)
