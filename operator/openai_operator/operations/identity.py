"""Gather and execute for the two workload-identity kinds; the decisions are in :mod:`..reconcile.identity_plan`.

Provider pass: read the issuer from the apiserver, find this object's OpenAI providers by name, list
their rules, plan, then create, re-upload and sweep as the plan says, and save the status.

Identity pass: check the project's ``keyPolicy``, observe the identity's service account and rule,
plan, then execute in order, saving each id as soon as it exists (a crash after a create never
loses what was made: the next pass finds it by name). Creating a rule happens under the provider's
lock, after a fresh count of its rules, so two identities never both take the 50th place.

The service account is keyless: the Admin API's create returns a first key, which is deleted at
once (it is created with a one-minute expiry as a backstop, should the delete fail); its value is
never read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from openai_operator.deps import Deps
from openai_operator.errors import (
    DestinationConflictError,
    NotFoundError,
    OperatorError,
    PermanentError,
    SpecError,
    TransientError,
)
from openai_operator.k8s.namespaces import namespace_labels
from openai_operator.model.conditions import ConditionType
from openai_operator.model.identity import (
    MAX_MAPPINGS_PER_PROVIDER,
    TOKEN_PATH,
    IdentityProviderStatus,
    ProviderSlot,
    WorkloadIdentitySpec,
    WorkloadIdentityStatus,
    identity_account_name,
    parse_identity_provider_spec,
    parse_workload_identity_spec,
    provider_name,
)
from openai_operator.model.reasons import Reason
from openai_operator.operations.inventory import quota_name
from openai_operator.operations.outcome import Outcome
from openai_operator.ports import IdentityAdmin, IdentityCluster
from openai_operator.reconcile.identity_plan import (
    ApplyConfigMap,
    CreateProvider,
    CreateRule,
    CreateServiceAccount,
    DeleteRule,
    IdentityFacts,
    IdentityPlan,
    ObservedMapping,
    ObservedProvider,
    ObservedRule,
    PatchWorkloads,
    ProviderFacts,
    ProviderView,
    Unmap,
    UpdateProvider,
    UpdateRule,
    config_map_data,
    first_free_slot,
    jwks_fingerprint,
    plan_identity,
    plan_provider,
)
from openai_operator.reconcile.policy import ProjectView, Refusal, check_identity_policy

__all__ = ["IdentityRef", "finalize_identity", "finalize_identity_provider", "reconcile_identity",
           "reconcile_identity_provider"]

log = structlog.get_logger(__name__)

BACKSTOP_KEY_SECONDS = 60
"""Lifetime of the key the create call returns, should deleting it at once fail."""


def _admin(deps: Deps) -> IdentityAdmin:
    if deps.identity_admin is None:
        raise PermanentError("workload identity is not configured in this operator")
    return deps.identity_admin


def _cluster(deps: Deps) -> IdentityCluster:
    if deps.identity_cluster is None:
        raise PermanentError("workload identity is not configured in this operator")
    return deps.identity_cluster


def _reason(error: OperatorError) -> str:
    if isinstance(error, SpecError):
        return Reason.INVALID_SPEC
    if isinstance(error, DestinationConflictError):
        return Reason.DESTINATION_CONFLICT
    if isinstance(error, TransientError):
        return Reason.ADMIN_API_UNAVAILABLE
    return Reason.ADMIN_API_REJECTED


# --- the provider -------------------------------------------------------------------------------


async def _observe_providers(deps: Deps, name: str) -> tuple[list[ObservedProvider], int]:
    admin = _admin(deps)
    listed = await admin.list_identity_providers()
    prefix = provider_name(deps.instance_id, name, 0)[:-1]
    ours = sorted((p for p in listed if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()),
                  key=lambda p: int(p.name[len(prefix):]))
    observed = []
    for provider in ours:
        rules = await admin.list_federation_rules(provider.id)
        observed.append(ObservedProvider(
            provider.id, provider.name, provider.issuer, provider.audience,
            jwks_fingerprint(provider.jwks) if provider.jwks is not None else None,
            tuple(ObservedRule(r.id, r.name, r.service_account_id, r.created_at) for r in rules)))
    return observed, len(listed)


async def reconcile_identity_provider(deps: Deps, name: str, body: Mapping[str, Any],
                                      identities: Callable[[], frozenset[tuple[str, str]]]) -> Outcome:
    """One pass of an OpenAIIdentityProvider; returns the outcome with the saved status.

    ``identities`` reads the identity index; it is read after the listing, so an identity whose rule
    the listing shows is known by then (an identity exists before its rule is made).
    """
    admin, cluster = _admin(deps), _cluster(deps)
    generation = body["metadata"].get("generation")
    recorded = IdentityProviderStatus.from_dict(body.get("status"))
    now = deps.clock()
    outcome = Outcome()
    try:
        spec = parse_identity_provider_spec(body.get("spec"))
    except SpecError as error:
        status = recorded.with_condition(ConditionType.READY, False, Reason.INVALID_SPEC, str(error), now, generation)
        await cluster.patch_identity_provider_status(name, status.to_patch())
        outcome.status, outcome.error = status.to_patch(), error
        return outcome
    issuer = jwks = None
    issuer_error = None
    try:
        found = await cluster.read_issuer()
        issuer, jwks = found.issuer, found.jwks
    except OperatorError as error:
        issuer_error = f"cannot read the cluster's service-account issuer: {error.message}"
    listed_at = deps.clock()
    try:
        observed, org_count = await _observe_providers(deps, name)
    except OperatorError as error:
        status = recorded.with_condition(ConditionType.READY, False, _reason(error), error.message, now, generation)
        await cluster.patch_identity_provider_status(name, status.to_patch())
        outcome.status, outcome.error, outcome.requeue_after = status.to_patch(), error, spec.sync_interval
        return outcome
    plan = plan_provider(ProviderFacts(name, deps.instance_id, generation, spec, recorded, issuer, jwks, issuer_error,
                                       tuple(observed), org_count, identities(), listed_at, now,
                                       sweep=deps.config.clusterwide))
    status = plan.status
    try:
        for action in plan.actions:
            if isinstance(action, UpdateProvider):
                await admin.update_identity_provider(action.provider_id, jwks=action.jwks, audience=action.audience,
                                                     issuer=action.issuer)
                if action.jwks is not None:
                    deps.metrics.record_jwks_upload()
                    outcome.note("Normal", Reason.JWKS_UPLOADED,
                                 f"Uploaded the cluster's key set ({status.jwks_fingerprint}, key ids "
                                 f"{', '.join(status.key_ids)}) to provider {action.provider_id}")
            elif isinstance(action, CreateProvider):
                assert issuer is not None and jwks is not None  # noqa: PT018 (the plan creates only with both)
                created = await admin.create_identity_provider(
                    name=action.name, issuer=issuer, audience=spec.audience, jwks=jwks,
                    description=f"Kubernetes service-account issuer (OpenAIIdentityProvider {name})")
                status = replace(status, providers=(*status.providers, ProviderSlot(created.id, 0)))
                await cluster.patch_identity_provider_status(name, status.to_patch())
                outcome.note("Normal", Reason.PROVIDER_ADDED, f"Registered provider {created.id} for {issuer}")
            elif isinstance(action, DeleteRule):
                await admin.delete_federation_rule(action.provider_id, action.rule_id)
                deps.metrics.record_orphan_revoked()
                outcome.note("Normal", Reason.ORPHAN_REVOKED,
                             f"Deleted federation rule {action.name} ({action.rule_id}): no OpenAIWorkloadIdentity "
                             "holds it")
    except OperatorError as error:
        status = status.with_condition(ConditionType.READY, False, _reason(error), error.message, now, generation)
        outcome.error = error
    for slot in status.providers:
        deps.metrics.set_identity_mappings(name, slot.id, slot.mappings)
    await cluster.patch_identity_provider_status(name, status.to_patch())
    outcome.status = status.to_patch()
    outcome.requeue_after = plan.requeue_after
    return outcome


async def finalize_identity_provider(deps: Deps, name: str, body: Mapping[str, Any]) -> Outcome:
    """Delete this object's OpenAI providers and the operator's rules on them (identities then show
    ``ProviderNotReady``; their service accounts stay until they are deleted themselves)."""
    admin = _admin(deps)
    observed, _ = await _observe_providers(deps, name)
    outcome = Outcome()
    for provider in observed:
        for rule in provider.rules:
            await admin.delete_federation_rule(provider.id, rule.id)
        await admin.delete_identity_provider(provider.id)
        outcome.note("Normal", Reason.UNMAPPED, f"Deleted provider {provider.id} and its {len(provider.rules)} rules")
    return outcome


# --- one workload identity ----------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityRef:
    namespace: str
    name: str
    uid: str
    generation: int | None


async def _observe_mapping(deps: Deps, ref: IdentityRef, status: WorkloadIdentityStatus, project_id: str | None,
                           slots: Sequence[ProviderSlot]) -> ObservedMapping:
    admin = _admin(deps)
    account_name = identity_account_name(deps.instance_id, ref.namespace, ref.name)
    account_id: str | None = None
    if project_id is not None:
        if status.service_account_id and status.project_id == project_id:
            try:
                account = await admin.get_service_account(project_id, status.service_account_id)
                account_id = account.id if account.name == account_name else None
            except NotFoundError:
                account_id = None
        else:  # never recorded (or another project): find one made before a crash by its name
            account_id = next((a.id for a in await admin.list_service_accounts(project_id)
                               if a.name == account_name), None)
    rule = None
    if status.federation_rule_id and status.identity_provider_id:
        try:
            rule = await admin.get_federation_rule(status.identity_provider_id, status.federation_rule_id)
        except NotFoundError:
            rule = None
    if rule is None and account_id is not None:
        for slot in slots:
            found = await admin.list_federation_rules(slot.id, service_account_id=account_id)
            if found:
                rule = found[0]
                break
    if rule is None:
        return ObservedMapping(account_id)
    return ObservedMapping(account_id, rule.id, rule.provider_id or status.identity_provider_id,
                           rule.service_account_id, dict(rule.attribute_matchers), rule.scopes, rule.enabled)


async def _free_slot(deps: Deps, slots: Sequence[ProviderSlot]) -> str | None:
    counts = {}
    for slot in slots:
        counts[slot.id] = len(await _admin(deps).list_federation_rules(slot.id))
        if counts[slot.id] < MAX_MAPPINGS_PER_PROVIDER:
            break
    return first_free_slot(slots, counts)


def provider_for(spec_ref: str | None, providers: Sequence[ProviderView]) -> tuple[ProviderView | None, str | None]:
    """The identity's provider: the one named by ``spec.providerRef``, or the only one there is."""
    if spec_ref is not None:
        found = next((p for p in providers if p.name == spec_ref), None)
        if found is None or found.deleting:
            return None, f"OpenAIIdentityProvider {spec_ref!r} (spec.providerRef) does not exist"
        if not found.ready:
            return None, f"OpenAIIdentityProvider {spec_ref!r} is not Ready"
        return found, None
    live = [p for p in providers if not p.deleting]
    if not live:
        return None, "no OpenAIIdentityProvider exists: a platform admin creates one for the cluster"
    if len(live) > 1:
        return None, f"{len(live)} OpenAIIdentityProviders exist: set spec.providerRef"
    if not live[0].ready:
        return None, f"OpenAIIdentityProvider {live[0].name!r} is not Ready"
    return live[0], None


async def reconcile_identity(deps: Deps, ref: IdentityRef, body: Mapping[str, Any], *, project: ProjectView | None,
                             providers: Sequence[ProviderView], holders: Sequence[tuple[str, str]]) -> Outcome:
    """One pass of an OpenAIWorkloadIdentity: gather, plan, execute, save the status.

    ``holders``: the keys and identities holding one of the project's ``maxKeys`` slots (from the
    indexes); the quota ledger adds the ones admitted a moment ago, as for keys.
    """
    cluster = _cluster(deps)
    recorded = WorkloadIdentityStatus.from_dict(body.get("status"))
    now = deps.clock()
    outcome = Outcome()

    async def save(status: WorkloadIdentityStatus) -> None:
        await cluster.patch_workload_identity_status(ref.namespace, ref.name, status.to_patch())
        outcome.status = status.to_patch()

    try:
        spec = parse_workload_identity_spec(body.get("spec"), name=ref.name)
    except SpecError as error:
        await save(recorded.with_condition(ConditionType.READY, False, Reason.INVALID_SPEC, str(error), now,
                                           ref.generation))
        outcome.error = error
        return outcome
    labels = await namespace_labels(deps.kube, ref.namespace)
    holds = recorded.federation_rule_id is not None
    me = quota_name(ref.namespace, ref.name)
    limit = project.key_policy.max_keys if project is not None else None
    if project is not None and project.project_id is not None and limit is not None:
        others = deps.quota.others_holding(project.project_id, me, holders, limit)
    else:
        others = len([h for h in holders if h != me])
    refusal = check_identity_policy(spec, namespace=ref.namespace, namespace_labels=labels, project=project,
                                    other_credentials=others, holds_mapping=holds)
    if refusal is not None and project is not None and project.project_id is not None:
        deps.quota.release(project.project_id, me)
    project_id = project.project_id if project is not None else None
    provider, problem = provider_for(spec.provider_ref.name if spec.provider_ref else None, providers)
    slots = provider.slots if provider is not None else ()
    try:
        if refusal is not None and not (recorded.service_account_id or recorded.federation_rule_id):
            observed = ObservedMapping(None)
        else:
            observed = await _observe_mapping(deps, ref, recorded, project_id or recorded.project_id, slots)
        needs_slot = refusal is None and provider is not None and not (
            observed.rule_id and observed.rule_provider_id in {s.id for s in slots}
            and observed.rule_service_account_id == observed.service_account_id and observed.service_account_id)
        if needs_slot:
            assert provider is not None
            async with deps.lock("OpenAIIdentityProvider", None, provider.name):
                free = await _free_slot(deps, slots)
                plan = plan_identity(_facts(deps, ref, spec, recorded, refusal, project_id, provider, problem,
                                            observed, free, now))
                status = await _execute(deps, ref, spec, plan, observed, outcome, save)
        else:
            plan = plan_identity(_facts(deps, ref, spec, recorded, refusal, project_id, provider, problem, observed,
                                        None, now))
            status = await _execute(deps, ref, spec, plan, observed, outcome, save)
    except OperatorError as error:
        status = recorded.with_condition(ConditionType.READY, False, _reason(error), error.message, now,
                                         ref.generation)
        await save(status)
        outcome.error = error
        return outcome
    await save(status)
    outcome.requeue_after = plan.requeue_after
    if plan.repaired:
        outcome.note("Warning", Reason.MAPPING_REPAIRED, f"Repaired: {plan.repaired}")
    return outcome


def _facts(deps: Deps, ref: IdentityRef, spec: WorkloadIdentitySpec, recorded: WorkloadIdentityStatus,
           refusal: Refusal | None, project_id: str | None, provider: ProviderView | None, problem: str | None,
           observed: ObservedMapping, free: str | None, now: datetime) -> IdentityFacts:
    return IdentityFacts(ref.namespace, ref.name, deps.instance_id, ref.generation, spec, recorded, refusal,
                         project_id, provider, problem, observed, free, deps.config.base_url, now)


async def _unmap(deps: Deps, ref: IdentityRef, project_id: str | None, provider_id: str | None, rule_id: str | None,
                 account_id: str | None) -> bool:
    """Delete the rule, then the service account (after checking its name is this identity's)."""
    admin = _admin(deps)
    did = False
    if provider_id and rule_id:
        did = await admin.delete_federation_rule(provider_id, rule_id) or did
    if project_id and account_id:
        try:
            account = await admin.get_service_account(project_id, account_id)
        except NotFoundError:
            return did
        if account.name == identity_account_name(deps.instance_id, ref.namespace, ref.name):
            did = await admin.delete_service_account(project_id, account_id) or did
    return did


Save = Callable[[WorkloadIdentityStatus], Awaitable[None]]


async def _execute(deps: Deps, ref: IdentityRef, spec: WorkloadIdentitySpec, plan: IdentityPlan,
                   observed: ObservedMapping, outcome: Outcome, save: Save) -> WorkloadIdentityStatus:
    admin, cluster = _admin(deps), _cluster(deps)
    status = plan.status
    progress = plan.in_progress or plan.status
    account_id = observed.service_account_id
    rule_id = observed.rule_id
    for action in plan.actions:
        if isinstance(action, Unmap):
            if await _unmap(deps, ref, action.project_id, action.provider_id, action.rule_id,
                            action.service_account_id):
                outcome.note("Normal", Reason.UNMAPPED,
                             f"Deleted federation rule {action.rule_id} and service account "
                             f"{action.service_account_id}: the project's keyPolicy refuses this identity")
            account_id = rule_id = None
        elif isinstance(action, CreateServiceAccount):
            created = await admin.create_service_account(action.project_id, action.name,
                                                         expires_in_seconds=BACKSTOP_KEY_SECONDS)
            account_id = created.service_account.id
            await save(replace(progress, service_account_id=account_id, federation_rule_id=None))
            if created.api_key is not None:
                await admin.delete_project_api_key(action.project_id, created.api_key.id)
        elif isinstance(action, DeleteRule):
            await admin.delete_federation_rule(action.provider_id, action.rule_id)
            rule_id = None
        elif isinstance(action, CreateRule):
            assert account_id is not None
            rule = await admin.create_federation_rule(
                action.provider_id, project_id=action.project_id, service_account_id=account_id,
                attribute_matchers=action.matchers, scopes=action.scopes, name=action.name)
            rule_id = rule.id
            await save(replace(progress, service_account_id=account_id, federation_rule_id=rule_id))
            outcome.note("Normal", Reason.MAPPED,
                         f"Mapped {action.matchers['sub']} to service account {account_id} of project "
                         f"{action.project_id} (rule {rule_id} on provider {action.provider_id})")
        elif isinstance(action, UpdateRule):
            await admin.update_federation_rule(action.provider_id, action.rule_id,
                                               attribute_matchers=action.matchers, scopes=action.scopes)
        elif isinstance(action, ApplyConfigMap):
            assert account_id is not None
            await cluster.apply_config_map(ref.namespace, action.name, _config_data(deps, status, account_id),
                                           owner_name=ref.name, owner_uid=ref.uid)
        elif isinstance(action, PatchWorkloads):
            assert account_id is not None
            status = await _patch_workloads(deps, ref, spec, status, account_id, outcome)
    if status.federation_rule_id is not None or rule_id is not None:
        status = replace(status, service_account_id=account_id, federation_rule_id=rule_id)
    return status


def _config_data(deps: Deps, status: WorkloadIdentityStatus, account_id: str) -> dict[str, str]:
    return config_map_data(provider_id=status.identity_provider_id or "", service_account_id=account_id,
                           project_id=status.project_id or "", base_url=deps.config.base_url,
                           audience=status.audience or "", token_path=TOKEN_PATH)


async def _patch_workloads(deps: Deps, ref: IdentityRef, spec: WorkloadIdentitySpec, status: WorkloadIdentityStatus,
                           account_id: str, outcome: Outcome) -> WorkloadIdentityStatus:
    """Patch ``spec.workloads``; a failure here is ``Degraded``, not a broken mapping."""
    now = deps.clock()
    try:
        result = await _cluster(deps).patch_workloads(
            ref.namespace, spec.workloads, service_account=spec.service_account_name, config_map=spec.config_map.name,
            data=_config_data(deps, status, account_id), audience=status.audience or "",
            expiration_seconds=spec.token_expiration_seconds)
    except OperatorError as error:
        outcome.note("Warning", Reason.WORKLOAD_PATCH_FAILED, error.message)
        return status.with_condition(ConditionType.DEGRADED, True, Reason.WORKLOAD_PATCH_FAILED, error.message, now,
                                     ref.generation)
    if result.patched:
        outcome.note("Normal", Reason.WORKLOADS_PATCHED, f"Patched {', '.join(result.patched)}")
    if result.missing:
        message = f"not found: {', '.join(result.missing)}"
        outcome.note("Warning", Reason.WORKLOAD_PATCH_FAILED, message)
        return status.with_condition(ConditionType.DEGRADED, True, Reason.WORKLOAD_PATCH_FAILED, message, now,
                                     ref.generation)
    return status.with_condition(ConditionType.DEGRADED, False, Reason.FOLLOW_UPS_DONE, "every workload is patched",
                                 now, ref.generation)


async def finalize_identity(deps: Deps, ref: IdentityRef, body: Mapping[str, Any], *,
                            project: ProjectView | None, providers: Sequence[ProviderView]) -> Outcome:
    """Deletion: the rule, then the service account (the ConfigMap goes with its ownerReference)."""
    recorded = WorkloadIdentityStatus.from_dict(body.get("status"))
    project_id = recorded.project_id or (project.project_id if project is not None else None)
    slots = [s for p in providers for s in p.slots]
    observed = await _observe_mapping(deps, ref, recorded, project_id, slots)
    outcome = Outcome()
    if project_id is not None:
        deps.quota.release(project_id, quota_name(ref.namespace, ref.name))
    if await _unmap(deps, ref, project_id, observed.rule_provider_id, observed.rule_id, observed.service_account_id):
        outcome.note("Normal", Reason.UNMAPPED, f"Deleted federation rule {observed.rule_id} and service account "
                                                f"{observed.service_account_id}")
    return outcome
