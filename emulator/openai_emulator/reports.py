"""Costs, usage and audit-log queries over what the data plane and the Admin API recorded.

Buckets are aligned to the bucket width in UTC (daily buckets start at midnight), every bucket in
the requested range is emitted (empty ones with ``results: []``), and ``limit`` counts buckets.
``next_page`` is an opaque ``page_…`` token that encodes where the next page starts; it is only
meaningful together with the same query, as with the real API.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .clock import DAY
from .errors import bad_request
from .render import audit_event
from .state import AuditEvent, CostRecord, EmulatorState, UsageRecord

BUCKET_SECONDS = {"1m": 60, "1h": 3600, "1d": DAY}
#: (default, maximum) number of buckets per page, by bucket width, for the usage endpoints.
USAGE_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
COSTS_LIMITS = (7, 180)


@dataclass(frozen=True)
class BucketQuery:
    start_time: int
    end_time: int | None
    width: int
    limit: int
    page: str | None


def encode_page(start: int) -> str:
    return "page_" + base64.urlsafe_b64encode(f"emu:{start}".encode()).decode()


def decode_page(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token.removeprefix("page_").encode()).decode()
        prefix, value = raw.split(":", 1)
        if prefix != "emu":
            raise ValueError(prefix)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("Invalid 'page': not a page token returned by this endpoint.", param="page") from exc


def bucket_starts(state: EmulatorState, q: BucketQuery) -> tuple[list[int], int | None]:
    """The bucket starts of this page and the start of the next page (``None`` when done)."""
    if q.end_time is not None and q.end_time <= q.start_time:
        raise bad_request("Invalid 'end_time': must be after 'start_time'.", param="end_time")
    first = q.start_time - q.start_time % q.width
    end = q.end_time if q.end_time is not None else state.now() + 1
    if q.page is not None:
        first = decode_page(q.page)
    starts: list[int] = []
    t = first
    while t < end and len(starts) < q.limit:
        starts.append(t)
        t += q.width
    return starts, (t if t < end else None)


def _bucketed(
    starts: Sequence[int], width: int, records: Iterable[Any], key: Callable[[Any], tuple[Any, ...]]
) -> dict[int, dict[tuple[Any, ...], list[Any]]]:
    if not starts:
        return {}
    lo, hi = starts[0], starts[-1] + width
    out: dict[int, dict[tuple[Any, ...], list[Any]]] = {s: {} for s in starts}
    for r in records:
        if lo <= r.ts < hi:
            start = r.ts - (r.ts - lo) % width
            out[start].setdefault(key(r), []).append(r)
    return out


def _page(
    starts: list[int], width: int, results: dict[int, list[dict[str, Any]]], next_start: int | None
) -> dict[str, Any]:
    return {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": s, "end_time": s + width, "results": results.get(s, [])} for s in starts
        ],
        "has_more": next_start is not None,
        "next_page": encode_page(next_start) if next_start is not None else None,
    }


def costs(
    state: EmulatorState,
    q: BucketQuery,
    *,
    group_by: Sequence[str],
    project_ids: Sequence[str],
    api_key_ids: Sequence[str],
    line_items: Sequence[str],
) -> dict[str, Any]:
    starts, next_start = bucket_starts(state, q)

    def keep(r: CostRecord) -> bool:
        return (
            (not project_ids or r.project_id in project_ids)
            and (not api_key_ids or r.api_key_id in api_key_ids)
            and (not line_items or r.line_item in line_items)
        )

    def key(r: CostRecord) -> tuple[Any, ...]:
        return (
            r.project_id if "project_id" in group_by else None,
            r.line_item if "line_item" in group_by else None,
            r.api_key_id if "api_key_id" in group_by else None,
        )

    grouped = _bucketed(starts, q.width, (r for r in state.costs if keep(r)), key)
    results: dict[int, list[dict[str, Any]]] = {}
    for start, groups in grouped.items():
        rows = []
        for (project_id, item, api_key_id), recs in groups.items():
            quantity = sum(r.quantity or 0 for r in recs) if "line_item" in group_by else None
            units = {r.quantity_unit for r in recs}
            rows.append(
                {
                    "object": "organization.costs.result",
                    "amount": {"value": round(sum(r.amount_usd for r in recs), 10), "currency": "usd"},
                    "line_item": item,
                    "project_id": project_id,
                    "api_key_id": api_key_id,
                    "quantity": quantity,
                    "quantity_unit": units.pop() if "line_item" in group_by and len(units) == 1 else None,
                }
            )
        results[start] = rows
    return _page(starts, q.width, results, next_start)


COMPLETIONS_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")


def completions(
    state: EmulatorState,
    q: BucketQuery,
    *,
    group_by: Sequence[str],
    filters: dict[str, Sequence[str]],
    batch: bool | None,
) -> dict[str, Any]:
    starts, next_start = bucket_starts(state, q)

    def keep(r: UsageRecord) -> bool:
        for name, wanted in filters.items():
            if wanted and getattr(r, name.removesuffix("s")) not in wanted:
                return False
        return batch is None or r.batch == batch

    def key(r: UsageRecord) -> tuple[Any, ...]:
        return tuple(getattr(r, g) if g in group_by else None for g in COMPLETIONS_GROUPS)

    grouped = _bucketed(starts, q.width, (r for r in state.usage if keep(r)), key)
    results: dict[int, list[dict[str, Any]]] = {}
    for start, groups in grouped.items():
        rows = []
        for values, recs in groups.items():
            input_tokens = sum(r.input_tokens for r in recs)
            output_tokens = sum(r.output_tokens for r in recs)
            rows.append(
                {
                    "object": "organization.usage.completions.result",
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "input_cached_tokens": 0,
                    "input_uncached_tokens": input_tokens,
                    "input_text_tokens": input_tokens,
                    "output_text_tokens": output_tokens,
                    "input_audio_tokens": 0,
                    "output_audio_tokens": 0,
                    "num_model_requests": len(recs),
                    **dict(zip(COMPLETIONS_GROUPS, values, strict=True)),
                }
            )
        results[start] = rows
    return _page(starts, q.width, results, next_start)


def empty_usage(state: EmulatorState, q: BucketQuery) -> dict[str, Any]:
    """Usage endpoints for products the emulator does not serve: correct buckets, no results."""
    starts, next_start = bucket_starts(state, q)
    return _page(starts, q.width, {}, next_start)


def audit_logs(
    state: EmulatorState,
    *,
    effective_at: dict[str, int],
    project_ids: Sequence[str],
    event_types: Sequence[str],
    actor_ids: Sequence[str],
    actor_emails: Sequence[str],
    resource_ids: Sequence[str],
    limit: int,
    after: str | None,
    before: str | None,
) -> dict[str, Any]:
    """Newest first, like the real endpoint; every Admin-API event's actor is the admin key."""

    def keep(ev: AuditEvent) -> bool:
        t = ev.effective_at
        bounds = effective_at
        if ("gt" in bounds and not t > bounds["gt"]) or ("gte" in bounds and not t >= bounds["gte"]):
            return False
        if ("lt" in bounds and not t < bounds["lt"]) or ("lte" in bounds and not t <= bounds["lte"]):
            return False
        if project_ids and ev.project_id not in project_ids:
            return False
        if event_types and ev.type not in event_types:
            return False
        if actor_ids and state.admin_key_id not in actor_ids and state.owner.id not in actor_ids:
            return False
        if actor_emails and state.owner.email not in actor_emails:
            return False
        return not (resource_ids and ev.resource_id not in resource_ids)

    events = [ev for ev in reversed(state.audit) if keep(ev)]
    if after is not None:
        events = _after(state, events, after)
    if before is not None:
        events = _before(state, events, before)
    page = [audit_event(state, ev) for ev in events[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(events) > limit,
    }


def _after(state: EmulatorState, events: list[AuditEvent], ident: str) -> list[AuditEvent]:
    """Events older than the cursor (the list runs newest first)."""
    order = {ev.id: i for i, ev in enumerate(state.audit)}
    if ident not in order:
        raise bad_request(f"Invalid cursor: no audit log with id '{ident}'.", param="after")
    pos = order[ident]
    return [ev for ev in events if order[ev.id] < pos]


def _before(state: EmulatorState, events: list[AuditEvent], ident: str) -> list[AuditEvent]:
    order = {ev.id: i for i, ev in enumerate(state.audit)}
    if ident not in order:
        raise bad_request(f"Invalid cursor: no audit log with id '{ident}'.", param="before")
    pos = order[ident]
    return [ev for ev in events if order[ev.id] > pos]
