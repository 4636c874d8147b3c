"""Gather what a key's plan needs, then execute the plan's actions in order (no decisions here).

:func:`reconcile_key` is one pass: :func:`gather` reads the world (destinations, namespace labels,
the project, a listing only when :func:`~openai_operator.reconcile.facts.needs_account_listing`
says so), :func:`~openai_operator.reconcile.key_plan.plan_key` decides, :class:`_Execution` runs
the actions, saving status after each step that cannot be undone (the intent before a create, the
new ids right after it, the promotion). What an action does to status comes from the planner's
transition functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
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
from openai_operator.k8s.restart import restart_targets
from openai_operator.model.annotations import parse_trigger_annotations
from openai_operator.model.destinations import destination_locations
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeySpec, parse_key_spec
from openai_operator.model.status import Delivery, KeyStatus
from openai_operator.openai.errors import KeyRejectedError
from openai_operator.openai.models import IssuedKey
from openai_operator.operations.outcome import Outcome
from openai_operator.reconcile.actions import (
    Action,
    Deliver,
    Mint,
    Promote,
    RemoveDestination,
    RestartTargets,
    Revoke,
    UpdateScopes,
    Verify,
)
from openai_operator.reconcile.facts import (
    DestinationState,
    KeyFacts,
    KeySettings,
    SeenServiceAccount,
    needs_account_listing,
)
from openai_operator.reconcile.key_plan import (
    KeyPlan,
    account_belongs,
    follow_up_failed,
    follow_up_requeue,
    follow_ups_succeeded,
    issue_failed,
    issue_failure_requeue,
    mint_abandoned,
    minted,
    plan_key,
    promoted,
    removed_destination,
    restarted,
    revoked,
    scopes_updated,
)
from openai_operator.reconcile.policy import ProjectView
from openai_operator.reconcile.schedule import validate_rotation
from openai_operator.secretvalue import fingerprint
from openai_operator.stores import KeyMaterial, Owner, SecretStore, StoreContext, store_at, stores_for

__all__ = ["KeyRef", "gather", "key_settings", "reconcile_key", "store_context"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class KeyRef:
    """The OpenAIKey being worked on."""

    namespace: str
    name: str
    uid: str
    generation: int | None

    @property
    def owner(self) -> Owner:
        return Owner(self.namespace, self.name, self.uid)


def key_settings(deps: Deps) -> KeySettings:
    config = deps.config
    return KeySettings(
        instance_id=deps.instance_id,
        key_expiry_margin=config.key_expiry_margin,
        default_key_lifetime=config.default_key_lifetime,
        min_rotation_interval=config.min_rotation_interval or None,
        verify_attempts=config.verify_attempts,
        vault_prefix=config.vault_path_prefix,
        resync_interval=config.key_resync_interval,
    )


def store_context(deps: Deps, namespace: str) -> StoreContext:
    return StoreContext(deps.kube, deps.vault_client_factory, deps.config.fingerprint_key, namespace)


class VerificationError(TransientError):
    """The new key's verification kept failing for reasons that may pass (5xx, timeouts); it was deleted."""


def failure_reason(error: OperatorError) -> str:
    """The Ready/Event reason for an error an issue step raised."""
    if isinstance(error, SpecError):
        return Reason.INVALID_SPEC
    if isinstance(error, DestinationConflictError):
        return Reason.DESTINATION_CONFLICT
    if isinstance(error, KeyRejectedError | VerificationError):
        return Reason.VERIFICATION_FAILED
    if isinstance(error, TransientError):
        return Reason.ADMIN_API_UNAVAILABLE
    return Reason.ADMIN_API_REJECTED


async def _observe(owner: Owner, store: SecretStore) -> DestinationState:
    try:
        seen = await store.observe(owner)
    except DestinationConflictError as error:
        return DestinationState.not_ours(error.message)
    except (TransientError, PermanentError) as error:
        return DestinationState.unreadable(error.message)
    if seen is None:
        return DestinationState.absent()
    return DestinationState.holding(seen.fingerprint, seen.version)


async def gather(
    deps: Deps, ref: KeyRef, body: Mapping[str, Any], *, project: ProjectView | None,
    holders: Callable[[], list[tuple[str, str]]], known_namespace_labels: Mapping[str, str] | None = None,
) -> tuple[KeyFacts, dict[str, SecretStore]]:
    """Read everything the planner needs for one pass over the key.

    ``known_namespace_labels``: the namespace's labels as the operator's namespace watch has them
    (kept current by watch events); without them the namespace is read.
    """
    status = KeyStatus.from_dict(body.get("status"))
    facts = KeyFacts(namespace=ref.namespace, name=ref.name, uid=ref.uid, generation=ref.generation,
                     now=deps.clock(), status=status, settings=key_settings(deps), project=project)
    spec: KeySpec | None = None
    try:
        spec = parse_key_spec(body.get("spec") or {}, name=ref.name)
        if spec.rotation is not None:
            validate_rotation(spec.rotation)  # grace against the schedule's gaps: a spec error, not a crash
        tokens = parse_trigger_annotations(body.get("metadata", {}).get("annotations") or {})
    except SpecError as error:
        return replace(facts, spec_error=error), {}
    try:
        stores = stores_for(spec, store_context(deps, ref.namespace))
    except SpecError as error:
        return replace(facts, spec_error=error), {}
    except PermanentError as error:
        return replace(facts, spec_error=SpecError("spec.vault", error.message)), {}
    labels = (dict(known_namespace_labels) if known_namespace_labels is not None
              else await namespace_labels(deps.kube, ref.namespace))
    others = 0
    if project is not None and project.project_id is not None:
        limit = project.key_policy.max_keys
        if status.key_id is None and status.pending is None:
            others = deps.quota.others_holding(project.project_id, (ref.namespace, ref.name),
                                               holders() if limit is not None else (), limit)
    observed = dict(zip(stores, await asyncio.gather(*(_observe(ref.owner, s) for s in stores.values())),
                        strict=True))
    listed = None
    if needs_account_listing(status):
        project_id = status.project_id or (project.project_id if project else None)
        if project_id is not None:
            accounts = await deps.admin.list_service_accounts(project_id)
            listed = tuple(SeenServiceAccount(a.id, a.name) for a in accounts)
        else:
            listed = ()
    return replace(facts, spec=spec, rotate_token=tokens.rotate, revoke_token=tokens.revoke,
                   namespace_labels=labels, other_keys_holding=others, destinations=observed,
                   listed_accounts=listed), stores


async def reconcile_key(
    deps: Deps, ref: KeyRef, body: Mapping[str, Any], *, project: ProjectView | None,
    holders: Callable[[], list[tuple[str, str]]], known_namespace_labels: Mapping[str, str] | None = None,
) -> Outcome:
    """One pass: gather, plan, execute. The returned status has been saved already."""
    facts, stores = await gather(deps, ref, body, project=project, holders=holders,
                                 known_namespace_labels=known_namespace_labels)
    plan = plan_key(facts)
    outcome = await _Execution(deps, ref, facts, plan, stores).run()
    final = KeyStatus.from_dict(outcome.status)
    if project is not None and project.project_id is not None and final.key_id is None and final.pending is None:
        deps.quota.release(project.project_id, (ref.namespace, ref.name))
    return outcome


class _Execution:
    """Runs one plan's actions in order and keeps status in step (through the planner's transitions)."""

    def __init__(self, deps: Deps, ref: KeyRef, facts: KeyFacts, plan: KeyPlan,
                 stores: Mapping[str, SecretStore]) -> None:
        self.deps, self.ref, self.facts, self.plan, self.stores = deps, ref, facts, plan, stores
        self.status = plan.status
        self.outcome = Outcome()
        self.saved = facts.status.to_patch()
        self.minted: IssuedKey | None = None
        self.deliveries: dict[str, Delivery] = {}
        self.follow_up_failed = False
        for note in plan.notes:
            self.outcome.note("Warning" if note.type == "Warning" else "Normal", note.reason, note.message)

    @property
    def project_id(self) -> str:
        """Where new credentials are minted: the referenced project."""
        project = self.facts.project
        assert project is not None
        assert project.project_id is not None
        return project.project_id

    def recorded_project_id(self) -> str | None:
        """Where recorded credentials live: the project they were minted in."""
        project = self.facts.project
        return self.status.project_id or (project.project_id if project is not None else None)

    async def save(self) -> None:
        patch = self.status.to_patch()
        if patch != self.saved:
            await self.deps.objects.patch_key_status(self.ref.namespace, self.ref.name, patch)
            self.saved = patch

    async def run(self) -> Outcome:
        try:
            if not any(isinstance(a, Mint) for a in self.plan.actions):
                await self.save()
            for action in self.plan.actions:
                await self._run(action)
        except OperatorError as error:
            await self._issue_failed(error)
        else:
            if self.follow_up_failed:
                self.outcome.requeue_after = follow_up_requeue(self.status, self.facts, self.plan.requeue_after)
            else:
                self.status = follow_ups_succeeded(self.status, self.facts)
                self.outcome.requeue_after = self.plan.requeue_after
        await self.save()
        self.outcome.status = self.saved
        return self.outcome

    async def _issue_failed(self, error: OperatorError) -> None:
        reason = failure_reason(error)
        rotating = self.status.key_id is not None
        self.status = issue_failed(self.status, self.facts, reason, error.message)
        if rotating:
            self.deps.metrics.record_rotation("failure", reason)
        self.outcome.note("Warning", reason, error.message)
        self.outcome.error = error
        self.outcome.requeue_after = issue_failure_requeue(self.status, self.facts)

    async def _run(self, action: Action) -> None:
        match action:
            case Revoke():
                await self._revoke(action)
            case Mint():
                await self._mint(action)
            case Verify():
                await self._verify(action)
            case Deliver():
                await self._deliver(action)
            case Promote():
                await self._promote()
            case UpdateScopes():
                await self.deps.admin.update_project_api_key(self.project_id, action.key_id,
                                                             scopes=list(action.scopes))
                self.status = scopes_updated(self.status, action.scopes)
                self.outcome.note("Normal", Reason.SPEC_CHANGED, f"Set the scopes of key {action.key_id} to "
                                  f"{list(action.scopes) or 'all permissions'}")
            case RemoveDestination():
                store = self.stores.get(action.kind)
                if store is None:
                    store = store_at(action.kind, action.location, store_context(self.deps, self.ref.namespace))
                await store.delete(self.ref.owner)
                self.status = removed_destination(self.status, action.kind)
                self.outcome.note("Normal", Reason.REVOKED, f"Removed the key from {action.kind} {action.location}")
            case RestartTargets():
                await self._restart(action)

    async def _revoke(self, action: Revoke) -> None:
        project_id = self.recorded_project_id()
        if project_id is None:
            self.status = revoked(self.status, action, self.facts.now)
            return
        try:
            name = action.known_name
            if name is None:
                try:
                    name = (await self.deps.admin.get_service_account(project_id, action.service_account_id)).name
                except NotFoundError:
                    name = None
            if name is not None and not account_belongs(self.facts, name):
                self.outcome.note("Warning", Reason.REVOCATION_FAILED,
                                  f"Not deleting service account {action.service_account_id}: its name {name!r} "
                                  f"does not belong to OpenAIKey {self.facts.ref}")
            elif name is not None:
                await self.deps.admin.delete_service_account(project_id, action.service_account_id)
                log.info("service account revoked", key=self.facts.ref, service_account_id=action.service_account_id,
                         why=action.why)
                self.outcome.note("Normal", Reason.PREVIOUS_REVOKED if action.why == "previous" else Reason.REVOKED,
                                  _revoked_message(action))
        except OperatorError as error:
            if not action.follow_up:
                raise
            self._follow_up_failed("revoke", Reason.REVOCATION_FAILED,
                                   f"could not revoke service account {action.service_account_id} yet: "
                                   f"{error.message}")
            return
        self.status = revoked(self.status, action, self.facts.now)
        if action.why == "current":
            await self.save()

    def _follow_up_failed(self, action: str, reason: str, message: str) -> None:
        """A follow-up failed: Degraded, a metric and an Event; the credential stays as it is."""
        self.follow_up_failed = True
        self.status = follow_up_failed(self.status, self.facts, reason, message)
        self.deps.metrics.record_follow_up_failure(action)
        self.outcome.note("Warning", reason, message)

    async def _mint(self, action: Mint) -> None:
        await self.save()  # the intent (status.pending) is on record before the account exists
        created = await self.deps.admin.create_service_account(
            self.project_id, action.pending.service_account_name, expires_in_seconds=action.expires_in_seconds
        )
        account, key = created.service_account, created.api_key
        if key is None:
            await self.deps.admin.delete_service_account(self.project_id, account.id)
            self.status = mint_abandoned(self.status)
            raise PermanentError(f"OpenAI created service account {account.id} without an API key")
        self.minted = key
        self.status = minted(
            self.status, service_account_id=account.id, key_id=key.id, redacted_key=key.value.redacted(),
            fingerprint=fingerprint(key.value, self.deps.config.fingerprint_key),
            expires_at=key.expires_at or (self.facts.now + timedelta(seconds=action.expires_in_seconds)),
            minted_at=self.deps.clock(),
        )
        await self.save()
        if action.scopes:
            await self.deps.admin.update_project_api_key(self.project_id, key.id, scopes=list(action.scopes))

    async def _abandon_mint(self) -> None:
        """Delete the minted account: no destination holds its key."""
        pending = self.status.pending
        assert pending is not None
        assert pending.service_account_id is not None
        await self.deps.admin.delete_service_account(self.project_id, pending.service_account_id)
        self.status = mint_abandoned(self.status)
        await self.save()

    async def _verify(self, action: Verify) -> None:
        assert self.minted is not None
        for attempt in range(1, action.attempts + 1):
            try:
                await self.deps.admin.verify_key(self.minted.value)
                return
            except TransientError as error:
                if attempt == action.attempts:
                    await self._abandon_mint()
                    raise VerificationError(f"the new key could not be verified after {attempt} attempts: "
                                            f"{error.message}") from None
                await asyncio.sleep(min(2.0 ** (attempt - 1), 5.0))
            except OperatorError:
                await self._abandon_mint()
                raise

    async def _deliver(self, action: Deliver) -> None:
        assert self.minted is not None
        assert self.status.pending is not None
        pending = self.status.pending
        material = KeyMaterial(api_key=self.minted.value, project_id=self.project_id,
                               base_url=self.deps.config.secret_base_url, key_id=self.minted.id,
                               revision=pending.revision)
        store = self.stores[action.kind]
        try:
            result = await store.write(self.ref.owner, material)
        except OperatorError:
            if not self.deliveries and await _surely_not_holding(self.ref.owner, store, pending.fingerprint):
                await self._abandon_mint()
            raise
        self.deliveries[action.kind] = Delivery(result.location, result.fingerprint, result.version)

    async def _promote(self) -> None:
        pending = self.status.pending
        assert pending is not None
        assert self.facts.spec is not None
        deliveries = dict(self.deliveries)
        if not deliveries:  # resuming a promotion whose status patch did not land: what is observed
            locations = destination_locations(self.facts.spec)
            for kind, location in locations.items():
                state = self.facts.destinations[kind]
                deliveries[kind] = Delivery(location, state.fingerprint, state.version)
        rotating = self.status.key_id is not None
        self.status = promoted(self.status, self.facts, deliveries)
        await self.save()
        if rotating:
            self.deps.metrics.record_rotation("success", pending.reason)
        where = ", ".join(f"{kind} {d.location}" for kind, d in deliveries.items())
        self.outcome.note("Normal", Reason.ROTATED if rotating else Reason.ISSUED,
                          f"Issued credential r{pending.revision} (key {pending.key_id}, service account "
                          f"{pending.service_account_id}) to {where}; cause: {pending.reason}")

    async def _restart(self, action: RestartTargets) -> None:
        spec = self.facts.spec
        assert spec is not None
        assert spec.rotation is not None
        if self.status.revision < action.revision:
            return  # the issue this restart follows did not complete
        try:
            result = await restart_targets(self.deps.kube, self.ref.namespace, spec.rotation.restart_targets,
                                           key_name=self.ref.name, revision=action.revision)
        except OperatorError as error:
            self._follow_up_failed("restart", Reason.RESTART_FAILED,
                                   f"could not restart the targets for credential r{action.revision}: "
                                   f"{error.message}")
            return
        if result.restarted:
            self.outcome.note("Normal", Reason.TARGETS_RESTARTED,
                              f"Restarted {', '.join(result.restarted)} for credential r{action.revision}")
        if result.missing:
            self.outcome.note("Warning", Reason.RESTART_FAILED,
                              f"Restart targets not found in namespace {self.ref.namespace}: "
                              f"{', '.join(result.missing)}")
        self.status = restarted(self.status, action.revision)


async def _surely_not_holding(owner: Owner, store: SecretStore, expected: str | None) -> bool:
    """After a failed write: does the destination demonstrably not hold the new key?"""
    try:
        seen = await store.observe(owner)
    except OperatorError:
        return False
    return seen is None or seen.fingerprint != expected


def _revoked_message(action: Revoke) -> str:
    what = {
        "previous": "previous credential",
        "current": "credential",
        "pending": "unfinished credential",
        "leftover": "service account left by an interrupted run",
    }[action.why]
    key = f" (key {action.key_id})" if action.key_id else ""
    return f"Revoked {what}: service account {action.service_account_id}{key}"
