"""Pure planning for workload identity federation: the cluster's providers, and each workload's mapping.

Two planners, one per kind, each the only decision-maker of its lifecycle:

- :func:`plan_provider` — facts about the cluster's issuer (from the apiserver) and the OpenAI
  providers registered for it → which provider to create (one slot more when every slot holds
  :data:`~openai_operator.model.identity.MAX_MAPPINGS_PER_PROVIDER` mappings), which to re-upload
  (issuer, audience or JWKS changed), which federation rules are orphans, and the status.
- :func:`plan_identity` — facts about one OpenAIWorkloadIdentity (policy refusal, its provider,
  its OpenAI service account and rule as observed) → the actions that make upstream match the
  spec (create the service account, create/replace/repair the rule, publish the ConfigMap, patch
  the workloads, or unmap when the policy refuses) and the status.

The rule always matches ``{"sub": "system:serviceaccount:<ns>:<name>"}`` exactly: the namespace is
the object's own, so a tenant cannot widen it to another namespace or a wildcard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from openai_operator.model.conditions import ConditionType
from openai_operator.model.identity import (
    MAX_MAPPINGS_PER_PROVIDER,
    MAX_PROVIDERS_PER_ORG,
    IdentityProviderSpec,
    IdentityProviderStatus,
    ProviderSlot,
    WorkloadIdentitySpec,
    WorkloadIdentityStatus,
    identity_account_name,
    parse_identity_account_name,
    provider_name,
    subject_of,
)
from openai_operator.model.reasons import Reason
from openai_operator.reconcile.policy import Refusal

__all__ = [
    "ApplyConfigMap",
    "CreateProvider",
    "CreateRule",
    "CreateServiceAccount",
    "DeleteRule",
    "IdentityFacts",
    "IdentityPlan",
    "ObservedProvider",
    "ObservedRule",
    "PatchWorkloads",
    "ProviderFacts",
    "ProviderPlan",
    "ProviderView",
    "Unmap",
    "UpdateProvider",
    "UpdateRule",
    "config_map_data",
    "desired_matchers",
    "jwks_fingerprint",
    "jwks_key_ids",
    "plan_identity",
    "plan_provider",
]

PROVIDER_FULL_RETRY = timedelta(seconds=5)


def jwks_fingerprint(jwks: Mapping[str, Any]) -> str:
    """SHA-256 of the key set in canonical JSON (keys sorted by ``kid``): equal sets, equal prints.

    Public keys only, so the fingerprint reveals nothing; it tells whether an upload is due.
    """
    keys = sorted((k for k in jwks.get("keys") or () if isinstance(k, Mapping)), key=lambda k: str(k.get("kid")))
    canonical = json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def jwks_key_ids(jwks: Mapping[str, Any] | None) -> tuple[str, ...]:
    return tuple(sorted(str(k["kid"]) for k in (jwks or {}).get("keys") or ()
                        if isinstance(k, Mapping) and isinstance(k.get("kid"), str)))


# --- the provider -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedRule:
    id: str
    name: str | None
    service_account_id: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class ObservedProvider:
    """An OpenAI provider that carries this OpenAIIdentityProvider's name (or is recorded in its status)."""

    id: str
    name: str
    issuer: str
    audience: str
    jwks_fingerprint: str | None
    rules: tuple[ObservedRule, ...] = ()


@dataclass(frozen=True)
class ProviderFacts:
    name: str
    instance: str
    generation: int | None
    spec: IdentityProviderSpec
    status: IdentityProviderStatus
    issuer: str | None
    """From the apiserver's discovery document; ``None`` when it could not be read."""
    jwks: Mapping[str, Any] | None
    issuer_error: str | None
    observed: tuple[ObservedProvider, ...]
    """This provider's slots as OpenAI has them (found by name), in slot order."""
    org_providers: int
    identities: frozenset[tuple[str, str]]
    """Every OpenAIWorkloadIdentity (namespace, name) the operator knows, for the orphan-rule sweep."""
    listed_at: datetime
    now: datetime
    sweep: bool = True
    """Whether orphan rules may be judged: only when the operator sees every namespace's identities."""


@dataclass(frozen=True)
class CreateProvider:
    name: str


@dataclass(frozen=True)
class UpdateProvider:
    provider_id: str
    jwks: Mapping[str, Any] | None
    audience: str | None
    issuer: str | None


@dataclass(frozen=True)
class DeleteRule:
    provider_id: str
    rule_id: str
    name: str


ProviderAction = CreateProvider | UpdateProvider | DeleteRule


@dataclass(frozen=True)
class ProviderPlan:
    actions: tuple[ProviderAction, ...]
    status: IdentityProviderStatus
    requeue_after: timedelta


def plan_provider(facts: ProviderFacts) -> ProviderPlan:
    """Upload the cluster's JWKS to every slot, add a slot when all are full, sweep orphan rules."""
    spec, now, gen = facts.spec, facts.now, facts.generation
    status = replace(facts.status, observed_generation=gen)
    if facts.issuer is None or facts.jwks is None:
        status = status.with_condition(ConditionType.READY, False, Reason.ISSUER_UNAVAILABLE,
                                       facts.issuer_error or "the apiserver's issuer could not be read", now, gen)
        return ProviderPlan((), status, spec.sync_interval)
    fingerprint = jwks_fingerprint(facts.jwks)
    actions: list[ProviderAction] = []
    slots: list[ProviderSlot] = []
    for observed in facts.observed:
        jwks = facts.jwks if observed.jwks_fingerprint != fingerprint else None
        audience = spec.audience if observed.audience != spec.audience else None
        issuer = facts.issuer if observed.issuer.rstrip("/") != facts.issuer.rstrip("/") else None
        if jwks is not None or audience is not None or issuer is not None:
            actions.append(UpdateProvider(observed.id, jwks, audience, issuer))
        live = [r for r in observed.rules if not _orphan(r, facts)]
        actions.extend(DeleteRule(observed.id, r.id, r.name or "") for r in observed.rules if _orphan(r, facts))
        slots.append(ProviderSlot(observed.id, len(live)))
    full = all(s.mappings >= MAX_MAPPINGS_PER_PROVIDER for s in slots)
    message = f"{len(slots)} provider(s) for {facts.issuer}, JWKS {fingerprint[:19]}"
    if not slots or full:
        if facts.org_providers >= MAX_PROVIDERS_PER_ORG:
            status = replace(status, issuer=facts.issuer, audience=spec.audience, providers=tuple(slots))
            status = status.with_condition(
                ConditionType.READY, bool(slots), Reason.PROVIDER_LIMIT_REACHED,
                f"every provider of {facts.issuer} holds {MAX_MAPPINGS_PER_PROVIDER} mappings and the organisation "
                f"has {MAX_PROVIDERS_PER_ORG} providers: no further mapping can be added", now, gen)
            return ProviderPlan(tuple(actions), status, spec.sync_interval)
        actions.append(CreateProvider(provider_name(facts.instance, facts.name, _next_index(facts))))
    # lastSyncTime: every pass that compared the cluster's key set with OpenAI's (and uploaded it if needed).
    status = replace(status, issuer=facts.issuer, audience=spec.audience, providers=tuple(slots),
                     jwks_fingerprint=fingerprint, key_ids=jwks_key_ids(facts.jwks), last_sync_time=now)
    status = status.with_condition(ConditionType.READY, True, Reason.PROVIDER_SYNCED, message, now, gen)
    return ProviderPlan(tuple(actions), status, spec.sync_interval)


def _next_index(facts: ProviderFacts) -> int:
    prefix = provider_name(facts.instance, facts.name, 0)[:-1]
    used = {int(o.name[len(prefix):]) for o in facts.observed if o.name[len(prefix):].isdigit()}
    index = 0
    while index in used:
        index += 1
    return index


def _orphan(rule: ObservedRule, facts: ProviderFacts) -> bool:
    """Named by this installation, for no OpenAIWorkloadIdentity that exists, and older than the listing."""
    parsed = parse_identity_account_name(rule.name or "")
    if not facts.sweep or parsed is None or parsed.instance != facts.instance:
        return False
    if rule.created_at is None or rule.created_at >= facts.listed_at:
        return False
    return not any(parsed.belongs_to(facts.instance, ns, n) for ns, n in facts.identities)


# --- one workload identity ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderView:
    """What an identity needs of its OpenAIIdentityProvider (kept in an index)."""

    name: str
    ready: bool
    audience: str | None
    slots: tuple[ProviderSlot, ...]
    deleting: bool = False


@dataclass(frozen=True)
class ObservedMapping:
    """The identity's service account and rule as OpenAI has them now."""

    service_account_id: str | None
    """``None``: no account of the identity's name exists (never made, or deleted upstream)."""
    rule_id: str | None = None
    rule_provider_id: str | None = None
    rule_service_account_id: str | None = None
    rule_matchers: Mapping[str, Any] = field(default_factory=dict)
    rule_scopes: tuple[str, ...] | None = None
    rule_enabled: bool = True


@dataclass(frozen=True)
class IdentityFacts:
    namespace: str
    name: str
    instance: str
    generation: int | None
    spec: WorkloadIdentitySpec
    status: WorkloadIdentityStatus
    refusal: Refusal | None
    project_id: str | None
    provider: ProviderView | None
    provider_problem: str | None
    observed: ObservedMapping
    free_slot: str | None
    """The first provider slot with room (counting from the provider's status and this pass's listing)."""
    base_url: str
    now: datetime


@dataclass(frozen=True)
class CreateServiceAccount:
    project_id: str
    name: str


@dataclass(frozen=True)
class CreateRule:
    provider_id: str
    project_id: str
    name: str
    matchers: Mapping[str, str]
    scopes: tuple[str, ...] | None


@dataclass(frozen=True)
class UpdateRule:
    provider_id: str
    rule_id: str
    matchers: Mapping[str, str]
    scopes: tuple[str, ...] | None


@dataclass(frozen=True)
class ApplyConfigMap:
    name: str


@dataclass(frozen=True)
class PatchWorkloads:
    pass


@dataclass(frozen=True)
class Unmap:
    """Delete the rule and the service account (policy refuses, or the object is deleted)."""

    project_id: str | None
    provider_id: str | None
    rule_id: str | None
    service_account_id: str | None


IdentityAction = CreateServiceAccount | DeleteRule | CreateRule | UpdateRule | ApplyConfigMap | PatchWorkloads | Unmap


@dataclass(frozen=True)
class IdentityPlan:
    actions: tuple[IdentityAction, ...]
    status: WorkloadIdentityStatus
    requeue_after: timedelta | None = None
    repaired: str | None = None
    """What drift the plan repairs (for the Event), ``None`` when there is none."""
    in_progress: WorkloadIdentityStatus | None = None
    """What the executor saves between its steps (the ids made so far are added to it): ``status`` says
    Ready, which is only true once the last step is done."""


def desired_matchers(namespace: str, service_account: str) -> dict[str, str]:
    """Exactly the one subject: never a wildcard, never another namespace."""
    return {"sub": subject_of(namespace, service_account)}


def config_map_data(*, provider_id: str, service_account_id: str, project_id: str, base_url: str,
                    audience: str, token_path: str) -> dict[str, str]:
    """What the SDK needs (nothing secret): the ids, the API base, the audience and the token file."""
    return {
        "OPENAI_IDENTITY_PROVIDER_ID": provider_id,
        "OPENAI_SERVICE_ACCOUNT_ID": service_account_id,
        "OPENAI_PROJECT_ID": project_id,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_TOKEN_AUDIENCE": audience,
        "OPENAI_TOKEN_FILE": token_path,
    }


def plan_identity(facts: IdentityFacts) -> IdentityPlan:
    """The one decision of an identity's pass (see the module docstring)."""
    now, gen, spec = facts.now, facts.generation, facts.spec
    status = replace(facts.status, observed_generation=gen)
    observed = facts.observed
    if facts.refusal is not None:
        actions: tuple[IdentityAction, ...] = ()
        if observed.service_account_id or observed.rule_id:
            actions = (Unmap(facts.project_id or status.project_id, observed.rule_provider_id, observed.rule_id,
                             observed.service_account_id),)
        status = replace(status, identity_provider_id=None, service_account_id=None, federation_rule_id=None)
        status = status.with_condition(ConditionType.READY, False, facts.refusal.reason, facts.refusal.message,
                                       now, gen)
        return IdentityPlan(actions, status)
    assert facts.project_id is not None  # a refusal is planned above when the project has no id
    if facts.provider is None or not facts.provider.ready:
        status = status.with_condition(ConditionType.READY, False, Reason.PROVIDER_NOT_READY,
                                       facts.provider_problem or "the OpenAIIdentityProvider is not Ready", now, gen)
        return IdentityPlan((), status, PROVIDER_FULL_RETRY)
    matchers = desired_matchers(facts.namespace, spec.service_account_name)
    scopes = spec.rule_scopes
    account_name = identity_account_name(facts.instance, facts.namespace, facts.name)
    slot_ids = {s.id for s in facts.provider.slots}
    actions_list: list[IdentityAction] = []
    repaired: list[str] = []
    rule_ok = (observed.rule_id is not None and observed.rule_provider_id in slot_ids
               and observed.rule_service_account_id == observed.service_account_id
               and observed.service_account_id is not None)
    if observed.service_account_id is None:
        actions_list.append(CreateServiceAccount(facts.project_id, account_name))
        if status.service_account_id:
            repaired.append(f"service account {status.service_account_id} was deleted in OpenAI")
    if observed.rule_id is not None and not rule_ok:
        # Its service account is gone, or its provider is not one of ours: ids are immutable, replace it.
        actions_list.append(DeleteRule(observed.rule_provider_id or "", observed.rule_id, account_name))
    if rule_ok:
        assert observed.rule_id is not None
        assert observed.rule_provider_id is not None
        if (dict(observed.rule_matchers) != matchers or observed.rule_scopes != scopes
                or not observed.rule_enabled):
            actions_list.append(UpdateRule(observed.rule_provider_id, observed.rule_id, matchers, scopes))
            repaired.append(f"federation rule {observed.rule_id} differed from the spec")
        provider_id = observed.rule_provider_id
    else:
        if status.federation_rule_id and observed.rule_id is None and observed.service_account_id is not None:
            repaired.append(f"federation rule {status.federation_rule_id} was deleted in OpenAI")
        if facts.free_slot is None:
            status = status.with_condition(
                ConditionType.READY, False, Reason.PROVIDER_FULL,
                f"every provider of OpenAIIdentityProvider {facts.provider.name!r} holds "
                f"{MAX_MAPPINGS_PER_PROVIDER} mappings; waiting for a further provider", now, gen)
            return IdentityPlan(tuple(actions_list), status, PROVIDER_FULL_RETRY)
        provider_id = facts.free_slot
        actions_list.append(CreateRule(provider_id, facts.project_id, account_name, matchers, scopes))
    actions_list.append(ApplyConfigMap(spec.config_map.name))
    if spec.workloads:
        actions_list.append(PatchWorkloads())
    status = replace(status, project_id=facts.project_id, identity_provider_id=provider_id,
                     subject=matchers["sub"], config_map_name=spec.config_map.name,
                     audience=facts.provider.audience)
    in_progress = status.with_condition(
        ConditionType.READY, False, Reason.MAPPING,
        f"mapping {matchers['sub']} to an OpenAI service account of project {facts.project_id}", now, gen)
    status = status.with_condition(
        ConditionType.READY, True, Reason.MAPPED,
        f"{matchers['sub']} maps to an OpenAI service account of project {facts.project_id} "
        f"through provider {provider_id}", now, gen)
    return IdentityPlan(tuple(actions_list), status, None, "; ".join(repaired) or None, in_progress)


def first_free_slot(slots: Sequence[ProviderSlot], counts: Mapping[str, int]) -> str | None:
    """The first slot with fewer than 50 mappings, by the freshest count known."""
    for slot in slots:
        if counts.get(slot.id, slot.mappings) < MAX_MAPPINGS_PER_PROVIDER:
            return slot.id
    return None


__all__ += ["ObservedMapping", "first_free_slot"]
