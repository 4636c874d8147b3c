"""Fault injection: per-route latency, 5xx, 429 bursts with ``Retry-After``, dropped connections.

A :class:`FaultRule` matches requests by method and by a glob on either the route template
(``/v1/organization/projects/{project_id}/service_accounts``) or the concrete path. For each
matching request the injector applies, in order: latency, a dropped connection, a 429 from the
burst, a 5xx. Random choices use one seeded generator per rule, so a test that sets ``seed`` sees
the same sequence every run. ``times`` bounds how many matching requests a rule applies to, after
which it expires; counters (``matched``, ``injected``) let tests assert that a fault really fired.
"""

from __future__ import annotations

import fnmatch
import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ApiError, bad_request, invalid_type

Distribution = Literal["fixed", "uniform", "normal", "exponential"]
#: Upper bound for every number in a fault spec (latencies in ms: ten minutes).
MAX_NUMBER = 600_000


@dataclass
class Latency:
    distribution: Distribution = "fixed"
    ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    mean_ms: float = 0.0
    stddev_ms: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        if self.distribution == "fixed":
            value = self.ms
        elif self.distribution == "uniform":
            value = rng.uniform(self.min_ms, self.max_ms)
        elif self.distribution == "normal":
            value = rng.gauss(self.mean_ms, self.stddev_ms)
        else:
            value = rng.expovariate(1.0 / self.mean_ms) if self.mean_ms > 0 else 0.0
        return max(0.0, value) / 1000.0


@dataclass
class Decision:
    """What to do to one request."""

    delay: float = 0.0
    drop: bool = False
    error: ApiError | None = None


@dataclass
class FaultRule:
    id: str
    route: str = "*"
    method: str = "*"
    latency: Latency | None = None
    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_burst: int = 0
    retry_after: int = 1
    drop_rate: float = 0.0
    times: int | None = None
    seed: int | None = None
    matched: int = 0
    injected: int = 0
    _burst_left: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._burst_left = self.rate_limit_burst

    def matches(self, method: str, template: str, path: str) -> bool:
        if self.times is not None and self.matched >= self.times:
            return False
        if self.method not in ("*", method.upper()):
            return False
        return fnmatch.fnmatchcase(template, self.route) or fnmatch.fnmatchcase(path, self.route)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "method": self.method,
            "latency": None if self.latency is None else self.latency.__dict__.copy(),
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "rate_limit_burst": self.rate_limit_burst,
            "retry_after": self.retry_after,
            "drop_rate": self.drop_rate,
            "times": self.times,
            "seed": self.seed,
            "matched": self.matched,
            "injected": self.injected,
            "burst_left": self._burst_left,
            "expired": self.times is not None and self.matched >= self.times,
        }


class FaultInjector:
    def __init__(self) -> None:
        self.rules: dict[str, FaultRule] = {}
        self._next = 0

    def add(self, spec: dict[str, Any]) -> FaultRule:
        rule = parse_rule(spec, f"fault-{self._next + 1}")
        self._next += 1
        self.rules[rule.id] = rule
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def decide(self, method: str, template: str, path: str) -> Decision:
        decision = Decision()
        if not self.rules:
            return decision
        for rule in self.rules.values():
            if not rule.matches(method, template, path):
                continue
            rule.matched += 1
            fired = False
            if rule.latency is not None:
                decision.delay += rule.latency.sample(rule._rng)
                fired = True
            if not decision.drop and decision.error is None:
                if rule.drop_rate and rule._rng.random() < rule.drop_rate:
                    decision.drop, fired = True, True
                elif rule._burst_left > 0:
                    rule._burst_left -= 1
                    decision.error, fired = rate_limited(rule.retry_after), True
                elif rule.error_rate and rule._rng.random() < rule.error_rate:
                    decision.error, fired = server_error(rule.error_status), True
            if fired:
                rule.injected += 1
        return decision


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        f"Rate limit reached for requests. Please try again in {retry_after}s.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry_after)},
    )


def server_error(status: int) -> ApiError:
    return ApiError(
        status,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )


def _number(spec: dict[str, Any], name: str, default: float, lo: float = 0.0, hi: float | None = None) -> float:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(name, "a number", value)
    if not math.isfinite(value) or value > MAX_NUMBER:
        raise bad_request(f"Invalid '{name}': must be a finite number up to {MAX_NUMBER}.", param=name)
    if value < lo or (hi is not None and value > hi):
        raise bad_request(f"Invalid '{name}': must be between {lo} and {hi}.", param=name)
    return float(value)


def parse_rule(spec: dict[str, Any], ident: str) -> FaultRule:
    """Validate a control-API fault spec; unknown fields are refused so typos do not pass silently."""
    known = {
        "route", "method", "latency", "latency_ms", "error_rate", "error_status", "rate_limit_burst",
        "retry_after", "drop_rate", "times", "seed",
    }  # fmt: skip
    unknown = set(spec) - known
    if unknown:
        raise bad_request(f"Unknown fault fields: {sorted(unknown)}.", param=sorted(unknown)[0])
    for name in ("route", "method"):
        if name in spec and not isinstance(spec[name], str):
            raise invalid_type(name, "a string", spec[name])
    latency: Latency | None = None
    if "latency_ms" in spec:
        latency = Latency("fixed", ms=_number(spec, "latency_ms", 0.0))
    if "latency" in spec:
        raw = spec["latency"]
        if not isinstance(raw, dict):
            raise invalid_type("latency", "an object", raw)
        dist = raw.get("distribution", "fixed")
        if dist not in ("fixed", "uniform", "normal", "exponential"):
            raise bad_request("Invalid 'latency.distribution'.", param="latency.distribution")
        latency = Latency(
            dist,
            ms=_number(raw, "ms", 0.0),
            min_ms=_number(raw, "min_ms", 0.0),
            max_ms=_number(raw, "max_ms", 0.0),
            mean_ms=_number(raw, "mean_ms", 0.0),
            stddev_ms=_number(raw, "stddev_ms", 0.0),
        )
    error_status = int(_number(spec, "error_status", 500, 500, 599))
    times = spec.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise bad_request("Invalid 'times': must be a positive integer or null.", param="times")
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid_type("seed", "an integer", seed)
    return FaultRule(
        id=ident,
        route=spec.get("route", "*"),
        method=str(spec.get("method", "*")).upper(),
        latency=latency,
        error_rate=_number(spec, "error_rate", 0.0, 0.0, 1.0),
        error_status=error_status,
        rate_limit_burst=int(_number(spec, "rate_limit_burst", 0)),
        retry_after=max(1, int(_number(spec, "retry_after", 1))),
        drop_rate=_number(spec, "drop_rate", 0.0, 0.0, 1.0),
        times=times,
        seed=seed,
    )
