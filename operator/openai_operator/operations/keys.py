"""Issue, deliver, verify and revoke the credentials of one OpenAIKey.

The order of the issue steps is what keeps keys safe (DESIGN.md section 2):

1. policy: the project is Ready and allows this namespace, quotas leave room;
2. service accounts named for this key but not recorded in status are deleted (a run died after
   creating one and before storing its value, which OpenAI returns only once);
3. a new service account ``k8s.<namespace>.<name>.r<N>`` is created with a backstop expiry, and its
   key restricted to ``spec.scopes``;
4. the value goes to every destination at once (refusing destinations the operator does not own);
5. the key is verified with ``GET /v1/models``;
6. only then is the credential promoted in status; an older credential moves to ``previous`` and is
   revoked when its grace period ends.

If anything fails between 3 and 6 the new service account is deleted on the spot (best effort; the
next run's step 2 catches what this misses), so a failure never leaves a live, unrecorded key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

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
from openai_operator.k8s.restart import restart_targets
from openai_operator.model.conditions import ConditionType
from openai_operator.model.naming import service_account_name
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyDeletionPolicy, KeySpec, parse_key_spec
from openai_operator.model.status import (
    Destinations,
    KeyStatus,
    PreviousCredential,
    SecretDestinationStatus,
    VaultDestinationStatus,
)
from openai_operator.openai.errors import KeyRejectedError
from openai_operator.operations.outcome import Outcome
from openai_operator.reconcile.key_plan import (
    DestinationState,
    KeyObservation,
    KeyPlan,
    SeenServiceAccount,
    backoff_until,
    grace_for,
    next_wake,
    plan_key,
    planned_next_rotation,
    unrecorded_service_accounts,
)
from openai_operator.reconcile.policy import ProjectView, check_key_policy
from openai_operator.reconcile.schedule import rotation_period
from openai_operator.stores import KeyMaterial, Owner, SecretStore, WriteResult, stores_for


@dataclass(frozen=True)
class KeyRef:
    """The OpenAIKey being worked on."""

    namespace: str
    name: str
    uid: str
    generation: int | None


def _ready(status: KeyStatus, ok: bool, reason: str, message: str, ref: KeyRef, now: datetime) -> KeyStatus:
    updated = status.with_condition(ConditionType.READY, ok, reason, message, ref.generation, now)
    return replace(updated, observed_generation=ref.generation)


def _ready_reason(status: KeyStatus) -> str | None:
    ready = status.condition(ConditionType.READY)
    return ready.reason if ready is not None else None


def key_lifetime(spec: KeySpec, deps: Deps, now: datetime) -> timedelta:
    """The backstop ``expires_in_seconds``: rotation period + grace + margin (DESIGN.md section 2)."""
    config = deps.config
    if spec.rotation is not None:
        period = rotation_period(spec.rotation, at=now)
        return period + spec.rotation.grace_period + config.key_expiry_margin
    return config.default_key_lifetime


async def reconcile_key(
    deps: Deps,
    ref: KeyRef,
    *,
    spec_raw: Mapping[str, Any],
    status_raw: Mapping[str, Any] | None,
    annotations: Mapping[str, str],
    project: ProjectView | None,
    other_keys_holding_credentials: int,
) -> Outcome:
    """Bring one OpenAIKey to its desired state; the returned status is always worth saving."""
    now = deps.clock()
    status = KeyStatus.from_dict(status_raw)
    outcome = Outcome()
    try:
        spec = parse_key_spec(spec_raw, name=ref.name)
    except SpecError as error:
        status = _ready(status, False, Reason.INVALID_SPEC, error.message, ref, now)
        outcome.status = status.to_patch()
        outcome.note("Warning", Reason.INVALID_SPEC, error.message)
        outcome.error = error
        return outcome

    labels = await namespace_labels(deps.core, ref.namespace)
    refusal = check_key_policy(
        spec,
        namespace=ref.namespace,
        namespace_labels=labels,
        project=project,
        other_keys_holding_credentials=other_keys_holding_credentials,
        holds_credential=status.key_id is not None,
        vault_prefix=deps.config.vault_prefix_for(ref.namespace),
    )
    if refusal is not None:
        if _ready_reason(status) != refusal.reason:
            outcome.note("Warning", refusal.reason, refusal.message)
        status = _ready(status, False, refusal.reason, refusal.message, ref, now)
        outcome.status = status.to_patch()
        return outcome

    assert project is not None  # guaranteed by check_key_policy
    assert project.project_id is not None
    project_id = project.project_id
    try:
        status = await _converge(deps, ref, spec, status, project_id, annotations, outcome, now)
    except OperatorError as error:
        reason = _failure_reason(error)
        status = replace(status, failed_attempts=status.failed_attempts + 1, last_failure_time=now,
                         observed_generation=ref.generation)
        if status.key_id is None or reason == Reason.DESTINATION_CONFLICT:
            # Without a delivered credential (or with a destination we may not write) the key is not
            # usable as specified. Otherwise the current credential keeps working and stays Ready.
            status = _ready(status, False, reason, error.message, ref, now)
        if status.key_id is not None:
            deps.metrics.record_rotation("failure", reason)
        outcome.note("Warning", reason, error.message)
        outcome.error = error
        outcome.wake_at = backoff_until(status, generation=ref.generation, namespace=ref.namespace, name=ref.name)
    outcome.status = status.to_patch()
    return outcome


def _failure_reason(error: OperatorError) -> str:
    if isinstance(error, SpecError):
        return Reason.INVALID_SPEC
    if isinstance(error, DestinationConflictError):
        return Reason.DESTINATION_CONFLICT
    if isinstance(error, KeyRejectedError):
        return Reason.VERIFICATION_FAILED
    if isinstance(error, TransientError):
        return Reason.ADMIN_API_UNAVAILABLE
    return Reason.ADMIN_API_REJECTED


async def _observe_destinations(
    ref: KeyRef, stores: Sequence[SecretStore]
) -> dict[str, DestinationState]:
    owner = Owner(ref.namespace, ref.name, ref.uid)
    destinations: dict[str, DestinationState] = {}
    for store in stores:
        seen = await store.observe(owner)
        destinations[store.kind] = (
            DestinationState(False) if seen is None else DestinationState(True, seen.fingerprint)
        )
    return destinations


def _upstream_ids(deps: Deps, project_id: str, status: KeyStatus) -> frozenset[str] | None:
    """The latest inventory's ids, if it was taken after the current credential was minted.

    ``created_at`` is read from the clock after OpenAI answered the create, and an inventory takes its
    time before it starts listing, so a snapshot newer than the credential began listing after the
    service account existed: an id missing from it was deleted, not merely not yet listed.
    """
    snapshot = deps.inventory.get(project_id)
    minted = status.created_at
    if snapshot is None or minted is None or snapshot.taken_at <= minted:
        return None
    return snapshot.service_account_ids


async def _converge(
    deps: Deps,
    ref: KeyRef,
    spec: KeySpec,
    status: KeyStatus,
    project_id: str,
    annotations: Mapping[str, str],
    outcome: Outcome,
    now: datetime,
) -> KeyStatus:
    stores = _stores(deps, ref, spec)
    observed = KeyObservation(
        service_accounts=(),
        destinations=await _observe_destinations(ref, stores),
        annotations=annotations,
        upstream_ids=_upstream_ids(deps, project_id, status),
    )

    def plan(observation: KeyObservation) -> KeyPlan:
        return plan_key(spec, status, observation, namespace=ref.namespace, name=ref.name, now=now,
                        generation=ref.generation)

    current = plan(observed)
    if current.issue is not None:
        # Only a run that is about to issue needs the project's service accounts: leftovers of an
        # interrupted issue are deleted before a new one is created. A steady key costs no list.
        accounts = await deps.admin.list_service_accounts(project_id)
        observed = replace(observed, service_accounts=[SeenServiceAccount(a.id, a.name) for a in accounts])
        current = plan(observed)

    for account in current.delete_unrecorded:
        await deps.admin.delete_service_account(project_id, account.id)
        outcome.note("Normal", Reason.REVOKED,
                     f"Deleted service account {account.name} ({account.id}): created by an interrupted "
                     "run and never recorded")

    if current.issue is not None:
        status = await _issue(deps, ref, spec, status, project_id, stores, current, outcome, now)
    elif status.key_id is not None and status.scopes != spec.scopes:
        # Scopes are a property of the key in OpenAI and can be changed in place: no new credential.
        await deps.admin.update_project_api_key(project_id, status.key_id, scopes=list(spec.scopes))
        status = replace(status, scopes=spec.scopes)
        outcome.note("Normal", Reason.SPEC_CHANGED,
                     f"Set the scopes of key {status.key_id} to {list(spec.scopes) or 'all permissions'}")
    if current.issue is None and current.waiting_for_backoff is None:
        status = replace(status, next_rotation_at=current.next_rotation_at, project_id=project_id)
        if _ready_reason(status) != Reason.ISSUED:
            status = _ready(status, True, Reason.ISSUED, f"credential r{status.revision} delivered and verified",
                            ref, now)
    # Otherwise a trigger fired but the last failure's backoff has not passed: the conditions stay as
    # that failure left them (a key without a credential stays Ready=False) until the next attempt.

    status = await _revoke_due(deps, status, project_id, outcome, now)
    if spec.rotation is not None and spec.rotation.restart_targets and status.revision > 0:
        await _restart_targets(deps, ref, spec, status, outcome)
    if current.waiting_for_backoff is None:
        status = replace(status, failed_attempts=0, last_failure_time=None)
    outcome.wake_at = next_wake(status, replace(current, next_rotation_at=status.next_rotation_at))
    return status


async def _revoke_due(deps: Deps, status: KeyStatus, project_id: str, outcome: Outcome, now: datetime) -> KeyStatus:
    """Revoke superseded credentials whose grace period is over (the successor is already stored)."""
    remaining = []
    for previous in status.previous:
        if previous.revoke_at > now:
            remaining.append(previous)
            continue
        await deps.admin.delete_service_account(project_id, previous.service_account_id)
        outcome.note("Normal", Reason.PREVIOUS_REVOKED,
                     f"Revoked previous credential {previous.key_id} (service account "
                     f"{previous.service_account_id})")
    return replace(status, previous=tuple(remaining))


async def _restart_targets(deps: Deps, ref: KeyRef, spec: KeySpec, status: KeyStatus, outcome: Outcome) -> None:
    assert spec.rotation is not None
    result = await restart_targets(deps.apps, ref.namespace, spec.rotation.restart_targets, key_name=ref.name,
                                   revision=status.revision)
    if result.restarted:
        outcome.note("Normal", Reason.TARGETS_RESTARTED,
                     f"Restarted {', '.join(result.restarted)} for credential r{status.revision}")
    if result.missing:
        outcome.note("Warning", Reason.RESTART_FAILED,
                     f"Restart targets not found in namespace {ref.namespace}: {', '.join(result.missing)}")


async def _issue(
    deps: Deps,
    ref: KeyRef,
    spec: KeySpec,
    status: KeyStatus,
    project_id: str,
    stores: Sequence[SecretStore],
    plan: KeyPlan,
    outcome: Outcome,
    now: datetime,
) -> KeyStatus:
    decision = plan.issue
    assert decision is not None
    rotating = status.key_id is not None
    if rotating:
        # Latch the rotation before any side effect: a crash from here on resumes this rotation
        # (same reason) instead of evaluating the triggers again and starting a second one.
        status = status.with_condition(ConditionType.ROTATING, True, decision.reason, decision.message,
                                       ref.generation, now)
        await deps.objects.patch_key_status(ref.namespace, ref.name, status.to_patch())
        outcome.note("Normal", decision.reason, f"Rotating: {decision.message}")

    revision = status.revision + 1
    name = service_account_name(ref.namespace, ref.name, revision)
    lifetime = key_lifetime(spec, deps, now)
    created = await deps.admin.create_service_account(
        project_id, name, expires_in_seconds=int(lifetime.total_seconds())
    )
    account = created.service_account
    minted_at = deps.clock()
    try:
        if created.api_key is None:
            raise PermanentError(f"OpenAI created service account {account.id} without an API key")
        key = created.api_key
        if spec.scopes:
            await deps.admin.update_project_api_key(project_id, key.id, scopes=list(spec.scopes))
        material = KeyMaterial(
            api_key=key.value, project_id=project_id, base_url=deps.config.secret_base_url,
            key_id=key.id, revision=revision,
        )
        owner = Owner(ref.namespace, ref.name, ref.uid)
        results = [await store.write(owner, material) for store in stores]
        await deps.admin.verify_key(key.value)
    except BaseException:
        with contextlib.suppress(Exception):
            await deps.admin.delete_service_account(project_id, account.id)
        raise

    previous = list(status.previous)
    if status.service_account_id is not None:
        revoke_at = now if decision.revoke_immediately else now + grace_for(spec)
        previous.append(PreviousCredential(status.key_id, status.service_account_id, revoke_at))
    status = replace(
        status,
        project_id=project_id,
        service_account_id=account.id,
        key_id=key.id,
        redacted_key=key.value.redacted(),
        revision=revision,
        created_at=minted_at,
        expires_at=key.expires_at or now + lifetime,
        last_rotated_at=now if rotating else status.last_rotated_at,
        previous=tuple(previous),
        destinations=_destinations(results, stores),
        rotate_token=plan.rotate_token,
        revoke_token=plan.revoke_token,
        scopes=spec.scopes,
    )
    status = replace(status, next_rotation_at=planned_next_rotation(spec, status, namespace=ref.namespace,
                                                                     name=ref.name, now=now))
    where = ", ".join(f"{s.kind} {r.location}" for s, r in zip(stores, results, strict=True))
    outcome.note("Normal", Reason.ROTATED if rotating else Reason.ISSUED,
                 f"Issued credential r{revision} (key {key.id}, service account {account.id}) to {where}; "
                 f"cause: {decision.message}")
    if rotating:
        deps.metrics.record_rotation("success", decision.reason)
        status = status.with_condition(ConditionType.ROTATING, False, Reason.ROTATED,
                                       f"rotated to r{revision} ({decision.reason})", ref.generation, now)
    return _ready(status, True, Reason.ISSUED, f"credential r{revision} delivered and verified", ref, now)


def _destinations(results: Sequence[WriteResult], stores: Sequence[SecretStore]) -> Destinations:
    secret = vault = None
    for store, result in zip(stores, results, strict=True):
        if store.kind == "secret":
            secret = SecretDestinationStatus(result.location, result.fingerprint)
        elif store.kind == "vault":
            vault = VaultDestinationStatus(result.location, result.version, result.fingerprint)
    return Destinations(secret=secret, vault=vault)


async def finalize_key(
    deps: Deps, ref: KeyRef, *, spec_raw: Mapping[str, Any], status_raw: Mapping[str, Any] | None,
    project: ProjectView | None,
) -> Outcome:
    """Deletion: revoke every credential of the key and remove what it delivered (unless Retain)."""
    outcome = Outcome()
    status = KeyStatus.from_dict(status_raw)
    try:
        spec: KeySpec | None = parse_key_spec(spec_raw, name=ref.name)
    except SpecError:
        spec = None
    if spec is not None and spec.deletion_policy == KeyDeletionPolicy.RETAIN:
        owner = Owner(ref.namespace, ref.name, ref.uid)
        for store in _stores(deps, ref, spec):
            await store.release(owner)
        outcome.note("Normal", Reason.REVOKED, "deletionPolicy is Retain: credentials and destinations kept")
        return outcome
    project_id = status.project_id or (project.project_id if project else None)
    if project_id is not None:
        ids = {status.service_account_id, *(p.service_account_id for p in status.previous)} - {None}
        try:
            accounts = await deps.admin.list_service_accounts(project_id)
        except NotFoundError:
            accounts = []
        seen = [SeenServiceAccount(a.id, a.name) for a in accounts]
        ids |= {a.id for a in unrecorded_service_accounts(ref.namespace, ref.name, status, seen)}
        try:
            for account_id in sorted(i for i in ids if i is not None):
                await deps.admin.delete_service_account(project_id, account_id)
        except PermanentError:
            # An archived project refuses every change, its keys included; they no longer work, so
            # there is nothing left to revoke and the key must not be stuck on its finalizer.
            if not (await deps.admin.get_project(project_id)).archived:
                raise
        if ids:
            outcome.note("Normal", Reason.REVOKED, f"Revoked {len(ids)} credential(s) of the deleted key")
    if spec is not None:
        owner = Owner(ref.namespace, ref.name, ref.uid)
        for store in _stores(deps, ref, spec):
            await store.delete(owner)
    return outcome


def _stores(deps: Deps, ref: KeyRef, spec: KeySpec) -> list[SecretStore]:
    return stores_for(spec, ref.namespace, core_api=deps.core, vault_client_factory=deps.vault_client_factory,
                      fingerprint_key=deps.config.fingerprint_key)
