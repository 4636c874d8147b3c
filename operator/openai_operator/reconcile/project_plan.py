"""What an OpenAIProject needs next: create or adopt, rename, and which rate limits to change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openai_operator.model.specs import ProjectSpec, RateLimit

RATE_LIMIT_FIELDS: Mapping[str, str] = {
    "max_requests_per_minute": "max_requests_per_1_minute",
    "max_tokens_per_minute": "max_tokens_per_1_minute",
    "max_requests_per_day": "max_requests_per_1_day",
    "max_images_per_minute": "max_images_per_1_minute",
    "max_audio_megabytes_per_minute": "max_audio_megabytes_per_1_minute",
    "batch_max_input_tokens_per_day": "batch_1_day_max_input_tokens",
}
"""Spec field (snake case of the CRD's camelCase) → OpenAI rate-limit field."""


@dataclass(frozen=True)
class ObservedRateLimit:
    id: str
    model: str
    values: Mapping[str, int | None]
    """By OpenAI field name."""


@dataclass(frozen=True)
class RateLimitChange:
    rate_limit_id: str
    model: str
    values: Mapping[str, int]
    """Only the OpenAI fields that differ from what the project has."""


@dataclass(frozen=True)
class RateLimitPlan:
    changes: tuple[RateLimitChange, ...]
    unknown_models: tuple[str, ...]
    """Models the spec names that the project has no rate-limit row for (OpenAI pre-populates one
    row per model the organisation can use; there is no create)."""


def plan_rate_limits(desired: Sequence[RateLimit], observed: Sequence[ObservedRateLimit]) -> RateLimitPlan:
    by_model = {row.model: row for row in observed}
    changes: list[RateLimitChange] = []
    unknown: list[str] = []
    for wanted in desired:
        row = by_model.get(wanted.model)
        if row is None:
            unknown.append(wanted.model)
            continue
        diff: dict[str, int] = {}
        for spec_field, api_field in RATE_LIMIT_FIELDS.items():
            value = getattr(wanted, spec_field)
            if value is not None and row.values.get(api_field) != value:
                diff[api_field] = value
        if diff:
            changes.append(RateLimitChange(row.id, row.model, diff))
    return RateLimitPlan(tuple(changes), tuple(unknown))


@dataclass(frozen=True)
class ProjectPlan:
    create: bool = False
    adopt_id: str | None = None
    rename_to: str | None = None


def plan_project(spec: ProjectSpec, recorded_id: str | None, upstream_name: str | None) -> ProjectPlan:
    """Create when nothing is recorded or adopted; adopt ``spec.projectId``; rename on a name change."""
    if spec.project_id is not None and recorded_id != spec.project_id:
        return ProjectPlan(adopt_id=spec.project_id)
    if recorded_id is None:
        return ProjectPlan(create=True)
    if upstream_name is not None and upstream_name != spec.name:
        return ProjectPlan(rename_to=spec.name)
    return ProjectPlan()
