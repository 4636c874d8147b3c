"""The one decision-maker of the key lifecycle: given the gathered facts, what happens next.

:func:`plan_key` returns a :class:`KeyPlan`: the status to start from (conditions already decided),
the actions in order, the Events to post, and when to look again. The executor runs the actions and
moves the status along with the transition functions below, which are pure as well; it decides
nothing. The order of an issue is what keeps workloads safe::

    revoke what is due ─► Mint (intent saved, account created, ids saved) ─► Verify
        ─► Deliver to each destination ─► Promote (old credentials start their grace)
        ─► follow-ups: restart targets

- verification comes before any delivery, so a key that does not work never reaches a workload;
- a credential that some destination may hold is never revoked until its successor is in every
  destination (a partly delivered one is *held*, see :mod:`~openai_operator.reconcile.revocation`);
- once promoted, a credential stays recorded whatever fails afterwards; a failed restart or
  revocation sets ``Degraded`` and is retried on its own.

Recovery needs no listing on the healthy path: the intent (``status.pending``) is saved before the
create and the account id right after it, so only a pass that died in between lists the project's
accounts, once, to find an account by its deterministic name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from openai_operator.model.conditions import ConditionType
from openai_operator.model.destinations import destination_locations
from openai_operator.model.naming import parse_service_account_name, service_account_name
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyPolicy, KeySpec
from openai_operator.model.status import Delivery, KeyStatus, PendingCredential, PreviousCredential
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
from openai_operator.reconcile.backoff import backoff_until, retry_delay
from openai_operator.reconcile.facts import KeyFacts
from openai_operator.reconcile.policy import Refusal, check_key_policy
from openai_operator.reconcile.revocation import bounded_previous, due_revocations, grace_for, refusal_deadline
from openai_operator.reconcile.schedule import rotation_period
from openai_operator.reconcile.spend import budget_hold, hold_ends, retire
from openai_operator.reconcile.triggers import IssueDecision, first_trigger, planned_next_rotation

__all__ = [
    "KeyPlan",
    "PlannedNote",
    "account_belongs",
    "follow_up_failed",
    "follow_up_requeue",
    "follow_ups_succeeded",
    "issue_failed",
    "key_lifetime",
    "mint_abandoned",
    "minted",
    "plan_key",
    "promoted",
    "restarted",
    "revoked",
    "scopes_updated",
]


@dataclass(frozen=True)
class PlannedNote:
    """An Event the plan decided to post."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class KeyPlan:
    status: KeyStatus
    """The status the pass starts from (conditions decided); saved before the first action."""
    actions: tuple[Action, ...] = ()
    notes: tuple[PlannedNote, ...] = ()
    requeue_after: timedelta | None = None
    """When to look again if every action succeeds (``None``: at the next resync)."""
    issue: IssueDecision | None = None


def _ready(status: KeyStatus, ok: bool, reason: str, message: str, facts: KeyFacts) -> KeyStatus:
    updated = status.with_condition(ConditionType.READY, ok, reason, message, facts.generation, facts.now)
    return replace(updated, observed_generation=facts.generation)


def _ready_reason(status: KeyStatus) -> str | None:
    ready = status.condition(ConditionType.READY)
    return ready.reason if ready is not None else None


def key_lifetime(spec: KeySpec, facts: KeyFacts) -> timedelta:
    """The backstop ``expires_in_seconds``: rotation period + grace + margin."""
    settings = facts.settings
    if spec.rotation is not None:
        period = rotation_period(spec.rotation, at=facts.now)
        return period + spec.rotation.grace_period + settings.key_expiry_margin
    return settings.default_key_lifetime


def account_belongs(facts: KeyFacts, name: str) -> bool:
    """Whether an account's name says it was made by this installation for this key."""
    parsed = parse_service_account_name(name)
    return parsed is not None and parsed.belongs_to(facts.settings.instance_id, facts.namespace, facts.name)


def _recorded_ids(status: KeyStatus) -> set[str]:
    ids = {p.service_account_id for p in status.previous}
    if status.service_account_id is not None:
        ids.add(status.service_account_id)
    if status.pending is not None and status.pending.service_account_id is not None:
        ids.add(status.pending.service_account_id)
    return ids


def _earliest(*times: datetime | None) -> datetime | None:
    found = [t for t in times if t is not None]
    return min(found) if found else None


def _requeue(facts: KeyFacts, at: datetime | None) -> timedelta | None:
    if at is None:
        return None
    return max(at - facts.now, timedelta(0))


def _timed_revocations(status: KeyStatus, now: datetime) -> datetime | None:
    """The next grace period to end (those already over are revoked by this plan, or retried as a follow-up)."""
    return _earliest(*(p.revoke_at for p in status.previous if p.revoke_at is not None and p.revoke_at > now))


def _degraded_retry(status: KeyStatus, now: datetime) -> datetime | None:
    """Follow-ups that failed are retried after as long as they have been failing (2 s, 4 s, 8 s, ...)."""
    degraded = status.condition(ConditionType.DEGRADED)
    if degraded is None or degraded.status != "True":
        return None
    failing_for = now - degraded.last_transition_time
    return now + min(max(failing_for, timedelta(seconds=2)), timedelta(minutes=10))


# --- the planner ---------------------------------------------------------------------------------


def plan_key(facts: KeyFacts) -> KeyPlan:
    """Decide the next steps for one OpenAIKey. Pure: no I/O, ``facts.now`` is the clock."""
    status = facts.status
    notes: list[PlannedNote] = []
    actions: list[Action] = list(due_revocations(status, facts.now))

    spec = facts.spec
    if spec is None:
        assert facts.spec_error is not None
        message = facts.spec_error.message
        if _ready_reason(status) != Reason.INVALID_SPEC:
            notes.append(PlannedNote("Warning", Reason.INVALID_SPEC, message))
        status = _ready(status, False, Reason.INVALID_SPEC, message, facts)
        status = replace(status, failed_attempts=0, last_failure_time=None)
        return KeyPlan(status, tuple(actions), tuple(notes),
                       _requeue(facts, _timed_revocations(status, facts.now)))

    refusal = _refusal(facts, spec)
    if refusal is not None:
        return _plan_refused(facts, spec, status, refusal, actions, notes)
    if status.refused_since is not None:
        status = replace(status, refused_since=None)
    if budget_hold(spec, status, facts.now):
        return _plan_budget_hold(facts, status, actions, notes)

    # Which destinations refuse us (foreign) or cannot be read: the issue path needs all of them.
    foreign = {k: s for k, s in facts.destinations.items() if s.foreign}
    unknown = {k: s for k, s in facts.destinations.items() if s.unknown}

    status, recovery, issue_reason, promote_pending = _recover_pending(facts, spec, status, unknown)
    actions.extend(recovery)

    due = planned_next_rotation(spec, status, namespace=facts.namespace, name=facts.name, now=facts.now)
    decision: IssueDecision | None = None
    if promote_pending:
        actions.append(Promote())
        if status.pending is not None and status.pending.revoke_immediately:
            actions.extend(_leak_revocations(status, actions))
    else:
        decision = issue_reason or first_trigger(facts, spec, due)

    waiting: datetime | None = None
    if decision is not None:
        until = backoff_until(status.failed_attempts, status.last_failure_time, identity=facts.ref,
                              generation=facts.generation, observed_generation=status.observed_generation)
        if until is not None and facts.now < until:
            decision, waiting = None, until
        elif foreign:
            kind, state = next(iter(foreign.items()))
            message = f"the {kind} destination belongs to someone else: {state.detail}"
            if _ready_reason(status) != Reason.DESTINATION_CONFLICT:
                notes.append(PlannedNote("Warning", Reason.DESTINATION_CONFLICT, message))
            status = _ready(status, False, Reason.DESTINATION_CONFLICT, message, facts)
            decision = None
        elif unknown:
            kind, state = next(iter(unknown.items()))
            # Delivering now could leave one destination behind: wait until every one can be read.
            status = issue_failed(status, facts, Reason.DESTINATION_UNAVAILABLE,
                                  f"the {kind} destination cannot be read: {state.detail}")
            notes.append(PlannedNote("Warning", Reason.DESTINATION_UNAVAILABLE,
                                     f"the {kind} destination cannot be read: {state.detail}"))
            waiting = backoff_until(status.failed_attempts, status.last_failure_time, identity=facts.ref,
                                    generation=None, observed_generation=None)
            decision = None

    if decision is not None:
        status, issue_actions = _plan_issue(facts, spec, status, decision)
        actions.extend(issue_actions)
        assert status.pending is not None
        if decision.revoke_immediately:
            actions.extend(_leak_revocations(status, actions))
        notes.append(PlannedNote("Normal", decision.reason,
                                 f"Issuing credential r{status.pending.revision}: {decision.message}"))
    elif not promote_pending:
        if status.key_id is not None and status.scopes != spec.scopes:
            actions.append(UpdateScopes(status.key_id, spec.scopes))
        if status.key_id is not None and waiting is None and not foreign and not unknown:
            status = replace(status, failed_attempts=0, last_failure_time=None, next_rotation_at=due,
                             project_id=facts.project.project_id if facts.project else status.project_id)
            if _ready_reason(status) != Reason.ISSUED or not _is_ready(status):
                status = _ready(status, True, Reason.ISSUED, f"credential r{status.revision} delivered and verified",
                                facts)

    revision_after = status.pending.revision if status.pending is not None and (decision or promote_pending) \
        else status.revision
    if spec.rotation is not None and spec.rotation.restart_targets and revision_after > status.restarted_revision:
        actions.append(RestartTargets(revision_after))

    requeue_at = _earliest(
        due if decision is None else None,
        waiting,
        _timed_revocations(status, facts.now),
        _degraded_retry(status, facts.now),
    )
    if decision is not None or promote_pending:
        # After the issue the superseded credential's grace starts and the schedule restarts.
        requeue_at = _earliest(requeue_at, facts.now + grace_for(spec, _policy(facts)))
    # This spec generation has been acted on (a later edit skips a failure's backoff).
    status = replace(status, observed_generation=facts.generation)
    return KeyPlan(status, tuple(actions), tuple(notes), _requeue(facts, requeue_at), decision)


def _leak_revocations(status: KeyStatus, planned: list[Action]) -> list[Action]:
    """The leak response: once the new credential is promoted (it is in every destination), revoke
    every older one in the same pass, not at the next one. They run after ``Promote``, so a failed
    issue never gets here; a failed revocation is a follow-up (Degraded, retried)."""
    already = {a.service_account_id for a in planned if isinstance(a, Revoke)}
    older = [(p.service_account_id, p.key_id) for p in status.previous]
    if status.service_account_id is not None:
        older.append((status.service_account_id, status.key_id))
    return [Revoke(account, "previous", key_id=key_id) for account, key_id in older if account not in already]


def _policy(facts: KeyFacts) -> KeyPolicy | None:
    return facts.project.key_policy if facts.project is not None else None


def _is_ready(status: KeyStatus) -> bool:
    ready = status.condition(ConditionType.READY)
    return ready is not None and ready.status == "True"


def _refusal(facts: KeyFacts, spec: KeySpec) -> Refusal | None:
    return check_key_policy(
        spec,
        namespace=facts.namespace,
        namespace_labels=facts.namespace_labels,
        project=facts.project,
        other_keys_holding_credentials=facts.other_keys_holding,
        holds_credential=facts.status.key_id is not None or facts.status.pending is not None,
        vault_prefix=facts.settings.vault_prefix.format(namespace=facts.namespace),
        min_rotation_interval=facts.settings.min_rotation_interval,
    )


def _plan_refused(
    facts: KeyFacts, spec: KeySpec, status: KeyStatus, refusal: Refusal, actions: list[Action],
    notes: list[PlannedNote],
) -> KeyPlan:
    """Policy refuses the key. What it holds keeps working for one grace period, then is removed and revoked.

    A project that is merely not Ready (an Admin API outage, say) is a state, not a decision: the
    key keeps its credential and only due revocations run, so an outage never turns into revoked keys.
    """
    holds = status.service_account_id is not None
    message = refusal.message
    requeue_at = _timed_revocations(status, facts.now)
    if holds and refusal.reason == Reason.PROJECT_NOT_READY:
        message = f"{refusal.message}; credential r{status.revision} kept until it is"
        status = replace(status, refused_since=None)
    elif holds:
        status = replace(status, refused_since=status.refused_since or facts.now)
        deadline = refusal_deadline(status, spec, facts.now, _policy(facts))
        if facts.now >= deadline:
            actions.extend(_withdraw_current(status))
            message = f"{refusal.message}; credential r{status.revision} revoked"
        else:
            message = f"{refusal.message}; credential r{status.revision} will be revoked at {deadline.isoformat()}"
            requeue_at = _earliest(requeue_at, deadline)
    if status.pending is not None:
        pending = status.pending
        if pending.service_account_id is not None and not _any_holds(facts, pending):
            actions.append(Revoke(pending.service_account_id, "pending", key_id=pending.key_id, follow_up=False))
    if _ready_reason(status) != refusal.reason:
        notes.append(PlannedNote("Warning", refusal.reason, message))
    status = _ready(status, False, refusal.reason, message, facts)
    return KeyPlan(status, tuple(actions), tuple(notes), _requeue(facts, requeue_at))


def _withdraw_current(status: KeyStatus) -> list[Action]:
    """Remove the current credential from every destination, then revoke it (never the other way round)."""
    assert status.service_account_id is not None
    actions: list[Action] = [RemoveDestination(kind, d.location) for kind, d in status.destinations.items()]
    actions.append(Revoke(status.service_account_id, "current", key_id=status.key_id, follow_up=False))
    return actions


def _plan_budget_hold(facts: KeyFacts, status: KeyStatus, actions: list[Action], notes: list[PlannedNote]) -> KeyPlan:
    """The key's budget is spent and ``onExceeded`` is ``Revoke``: no credential until the next period.

    Unlike a policy refusal there is no grace: every credential the key holds (current, superseded
    ones still in their grace, an unfinished one) is taken out of the destinations and revoked now,
    so nothing can spend further; the key is issued afresh when the next period starts.
    """
    resume = hold_ends(status)
    assert resume is not None
    budget_message = status.condition(ConditionType.BUDGET_EXCEEDED)
    why = budget_message.message if budget_message is not None else "the key's budget is spent"
    due = {a.service_account_id for a in actions if isinstance(a, Revoke)}
    revoked_any = False
    if status.service_account_id is not None:
        actions.extend(_withdraw_current(status))
        revoked_any = True
    for p in status.previous:
        if p.service_account_id not in due:
            actions.append(Revoke(p.service_account_id, "previous", key_id=p.key_id, follow_up=False))
            revoked_any = True
    if status.pending is not None and status.pending.service_account_id is not None:
        actions.append(Revoke(status.pending.service_account_id, "pending", key_id=status.pending.key_id,
                              follow_up=False))
        revoked_any = True
    elif status.pending is not None:
        status = replace(status, pending=None)
    message = f"{why}; no credential until {resume.isoformat()}, when a fresh one is issued"
    if revoked_any:
        notes.append(PlannedNote("Warning", Reason.BUDGET_EXCEEDED,
                                 f"{why}: credential r{status.revision} removed from every destination and revoked; "
                                 f"a fresh one is issued at {resume.isoformat()}"))
    status = _ready(status, False, Reason.BUDGET_EXCEEDED, message, facts)
    status = replace(status, failed_attempts=0, last_failure_time=None, next_rotation_at=None)
    return KeyPlan(status, tuple(actions), tuple(notes), _requeue(facts, resume))


def _any_holds(facts: KeyFacts, pending: PendingCredential) -> bool:
    """Whether some destination holds (or, unreadable, might hold) the pending credential."""
    for state in facts.destinations.values():
        if state.unknown or (state.present and pending.fingerprint and state.fingerprint == pending.fingerprint):
            return True
    return False


def _recover_pending(
    facts: KeyFacts, spec: KeySpec, status: KeyStatus, unknown: Mapping[str, object]
) -> tuple[KeyStatus, list[Action], IssueDecision | None, bool]:
    """What to do with an issue a previous pass left unfinished.

    Returns the status, the clean-up actions, the decision to resume (the interrupted issue's reason)
    and whether the pending credential is everywhere already and only needs promoting.
    """
    pending = status.pending
    if pending is None:
        return status, [], None, False
    what = "the rotation in flight" if status.key_id is not None else "the first issue"
    resume = IssueDecision(pending.reason, f"resuming {what}: r{pending.revision} was interrupted",
                           revoke_immediately=pending.revoke_immediately)
    if pending.service_account_id is None:
        # The create may or may not have happened: find it by name in the listing and delete it.
        recorded = _recorded_ids(status)
        leftovers = [
            Revoke(a.id, "leftover", known_name=a.name, follow_up=False)
            for a in facts.listed_accounts or ()
            if a.id not in recorded and account_belongs(facts, a.name)
        ]
        return replace(status, pending=None), list(leftovers), resume, False
    if unknown:
        # A destination cannot be read, so it may hold the pending key: keep everything as it is.
        return status, [], None, False
    kinds = destination_locations(spec)
    holders = [k for k in kinds if (s := facts.destinations.get(k)) is not None and s.present
               and pending.fingerprint is not None and s.fingerprint == pending.fingerprint]
    if kinds and len(holders) == len(kinds):
        return status, [], None, True
    if holders:
        # Some destinations hold it: it is never revoked before its successor is in all of them.
        assert pending.service_account_id is not None
        held = PreviousCredential(pending.key_id, pending.service_account_id, None)
        return replace(status, pending=None, previous=(*status.previous, held)), [], resume, False
    # Nothing holds it: delete it and issue again. The name in status is not trusted for the delete
    # (status could be forged): the executor reads the account's name back from OpenAI first.
    revoke = Revoke(pending.service_account_id, "pending", key_id=pending.key_id, follow_up=False)
    return replace(status, pending=None), [revoke], resume, False


def _plan_issue(
    facts: KeyFacts, spec: KeySpec, status: KeyStatus, decision: IssueDecision
) -> tuple[KeyStatus, list[Action]]:
    interrupted = facts.status.pending
    if interrupted is not None and status.pending is None and not any(
        p.service_account_id == interrupted.service_account_id for p in status.previous
    ):
        revision = interrupted.revision  # its account is gone (or being deleted first): reuse the name
    else:
        revision = max(status.revision, interrupted.revision if interrupted else 0) + 1
    name = service_account_name(facts.settings.instance_id, facts.namespace, facts.name, revision)
    pending = PendingCredential(revision=revision, service_account_name=name, started_at=facts.now,
                                reason=decision.reason, revoke_immediately=decision.revoke_immediately)
    status = replace(status, pending=pending)
    if status.key_id is not None:
        # The latch: a crash from here on resumes this rotation instead of evaluating the triggers again.
        status = status.with_condition(ConditionType.ROTATING, True, decision.reason, decision.message,
                                       facts.generation, facts.now)
    lifetime = key_lifetime(spec, facts)
    actions: list[Action] = [Mint(pending, int(lifetime.total_seconds()), spec.scopes),
                             Verify(facts.settings.verify_attempts)]
    actions.extend(Deliver(kind) for kind in destination_locations(spec))
    actions.append(Promote())
    return status, actions


# --- transitions (the executor moves status along with these) -----------------------------------


def minted(status: KeyStatus, *, service_account_id: str, key_id: str, redacted_key: str, fingerprint: str,
           expires_at: datetime | None, minted_at: datetime) -> KeyStatus:
    """The pending credential's account exists: record what identifies it (never the key)."""
    assert status.pending is not None
    pending = replace(status.pending, service_account_id=service_account_id, key_id=key_id,
                      redacted_key=redacted_key, fingerprint=fingerprint, expires_at=expires_at,
                      minted_at=minted_at)
    return replace(status, pending=pending)


def mint_abandoned(status: KeyStatus) -> KeyStatus:
    """The pending account was deleted before any destination held its key."""
    return replace(status, pending=None)


def promoted(status: KeyStatus, facts: KeyFacts, deliveries: Mapping[str, Delivery]) -> KeyStatus:
    """The pending credential is in every destination: it becomes current, the others start their grace."""
    pending = status.pending
    assert pending is not None
    assert pending.service_account_id is not None
    assert facts.spec is not None
    spec = facts.spec
    now = facts.now
    revoke_at = now if pending.revoke_immediately else now + grace_for(spec, _policy(facts))
    previous = [p if p.revoke_at is not None else replace(p, revoke_at=revoke_at) for p in status.previous]
    rotating = status.service_account_id is not None
    if status.service_account_id is not None:
        previous.append(PreviousCredential(status.key_id, status.service_account_id, revoke_at))
    status = replace(
        status,
        project_id=facts.project.project_id if facts.project else status.project_id,
        service_account_id=pending.service_account_id,
        key_id=pending.key_id,
        redacted_key=pending.redacted_key,
        revision=pending.revision,
        created_at=pending.minted_at or now,
        expires_at=pending.expires_at,
        last_rotated_at=now if rotating else status.last_rotated_at,
        previous=bounded_previous(tuple(previous), now),
        pending=None,
        destinations=dict(deliveries),
        rotate_token=facts.rotate_token,
        revoke_token=facts.revoke_token,
        scopes=spec.scopes,
        upstream_missing=None,
        failed_attempts=0,
        last_failure_time=None,
    )
    status = replace(status, next_rotation_at=planned_next_rotation(spec, status, namespace=facts.namespace,
                                                                    name=facts.name, now=now))
    if rotating or (status.condition(ConditionType.ROTATING) is not None):
        status = status.with_condition(ConditionType.ROTATING, False, Reason.ROTATED,
                                       f"rotated to r{pending.revision} ({pending.reason})", facts.generation, now)
    return _ready(status, True, Reason.ISSUED, f"credential r{pending.revision} delivered and verified", facts)


def revoked(status: KeyStatus, action: Revoke, at: datetime) -> KeyStatus:
    """One service account is gone (or refused to be deleted as not ours): drop it from status.

    Its key id moves to ``spend.retiredCredentials``: what it cost this period still counts.
    """
    status = retire(status, action.key_id, at)
    if action.why == "previous":
        return replace(status, previous=tuple(p for p in status.previous
                                              if p.service_account_id != action.service_account_id))
    if action.why == "current" and status.service_account_id == action.service_account_id:
        return replace(status, service_account_id=None, key_id=None, redacted_key=None, destinations={},
                       next_rotation_at=None, created_at=None, expires_at=None)
    if action.why == "pending" and status.pending is not None \
            and status.pending.service_account_id == action.service_account_id:
        return replace(status, pending=None)
    return status


def removed_destination(status: KeyStatus, kind: str) -> KeyStatus:
    return replace(status, destinations={k: v for k, v in status.destinations.items() if k != kind})


def scopes_updated(status: KeyStatus, scopes: tuple[str, ...]) -> KeyStatus:
    return replace(status, scopes=scopes)


def restarted(status: KeyStatus, revision: int) -> KeyStatus:
    return replace(status, restarted_revision=max(status.restarted_revision, revision))


def issue_failed(status: KeyStatus, facts: KeyFacts, reason: str, message: str) -> KeyStatus:
    """An issue step failed: count it (backoff), and say so in Ready when nothing usable is delivered.

    A key that still has its current credential stays Ready (that credential works and is still
    in every destination); ``Rotating`` stays as it was, so the next attempt resumes the rotation.
    """
    status = replace(status, failed_attempts=status.failed_attempts + 1, last_failure_time=facts.now,
                     observed_generation=facts.generation)
    if status.key_id is None or reason == Reason.DESTINATION_CONFLICT:
        status = _ready(status, False, reason, message, facts)
    return status


def issue_failure_requeue(status: KeyStatus, facts: KeyFacts) -> timedelta:
    """When a failed issue is tried again."""
    return retry_delay(status.failed_attempts, facts.ref)


def follow_up_failed(status: KeyStatus, facts: KeyFacts, reason: str, message: str) -> KeyStatus:
    """A restart or revocation failed after the credential was recorded: Degraded, retried on its own."""
    return status.with_condition(ConditionType.DEGRADED, True, reason, message, facts.generation, facts.now)


def follow_up_requeue(status: KeyStatus, facts: KeyFacts, planned: timedelta | None) -> timedelta | None:
    """When to look again after a pass in which a follow-up failed: its retry, or earlier if planned."""
    retry = _requeue(facts, _degraded_retry(status, facts.now))
    if retry is None:
        return planned
    return retry if planned is None else min(retry, planned)


def follow_ups_succeeded(status: KeyStatus, facts: KeyFacts) -> KeyStatus:
    """Every follow-up of this pass succeeded: clear a Degraded condition left by an earlier pass."""
    degraded = status.condition(ConditionType.DEGRADED)
    if degraded is None or degraded.status != "True":
        return status
    return status.with_condition(ConditionType.DEGRADED, False, Reason.FOLLOW_UPS_DONE,
                                 "restarts and revocations are done", facts.generation, facts.now)
