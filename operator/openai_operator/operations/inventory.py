"""The per-project inventory: one paged list of service accounts per interval, not one per key.

It finds two kinds of drift (DESIGN.md section 2):

- operator-named service accounts — named by *this* installation — whose OpenAIKey no longer exists
  are orphans (left by a key deleted while the operator was down, or by a crash): they are revoked
  (reason ``OrphanRevoked``). Names of other installations and retained credentials never match;
- a key's current credential missing from the listing, confirmed by reading the account (a 404),
  was deleted outside the operator: the inventory records the id in that key's
  ``status.upstreamMissing`` and the key's own pass rotates (reason ``UpstreamKeyMissing``).

Only credentials minted before the listing began are judged, and each suspicion is confirmed with
one read, so a credential minted while the listing ran is never taken for a deleted one.
Orphans are judged only in namespaces this operator serves (all of them without ``--namespace``):
only there does the key index know every key. An operator restricted to some namespaces cannot
tell the namespace of a shortened account name, so it leaves those to an operator that serves all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from openai_operator.deps import Deps
from openai_operator.errors import NotFoundError
from openai_operator.model.identity import parse_identity_account_name
from openai_operator.model.naming import parse_service_account_name
from openai_operator.model.reasons import Reason
from openai_operator.operations.outcome import Outcome

__all__ = ["IdentityEntry", "InventoryResult", "KeyEntry", "identity_holders", "quota_name", "take_inventory"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class KeyEntry:
    """What the key index knows of one OpenAIKey of the project."""

    namespace: str
    name: str
    service_account_ids: frozenset[str] = frozenset()
    """Every account its status records (current, pending, previous)."""
    current: str | None = None
    created_at: datetime | None = None
    issuing: bool = False


@dataclass(frozen=True)
class IdentityEntry:
    """What the workload-identity index knows of one OpenAIWorkloadIdentity."""

    namespace: str
    name: str
    service_account_id: str | None = None
    holds: bool = False
    """Whether its status records a federation rule (it counts toward ``maxKeys``)."""


def quota_name(namespace: str, name: str) -> tuple[str, str]:
    """How a workload identity is named among ``maxKeys`` holders (apart from a key of the same name)."""
    return (namespace, f"OpenAIWorkloadIdentity/{name}")


def identity_holders(index: Any, project: str | None) -> list[tuple[str, str]]:
    """The workload identities of ``project`` that hold a mapping (from the identity index, by project)."""
    found = index.get(project) if index is not None and project else None
    return [quota_name(e.namespace, e.name) for e in found or () if e.holds]


def _identity_orphans(deps: Deps, accounts: Sequence[tuple[str, str]], identities: Sequence[IdentityEntry],
                      judged: Callable[[str], bool]) -> list[tuple[str, str]]:
    recorded = {i.service_account_id for i in identities if i.service_account_id}
    found = []
    for account_id, name in accounts:
        parsed = parse_identity_account_name(name)
        if parsed is None or parsed.instance != deps.instance_id or account_id in recorded:
            continue
        if not deps.config.clusterwide and (parsed.shortened or not judged(parsed.owner.split(".", 1)[0])):
            continue  # a namespace another operator (shard) serves, or one a shortened name hides
        if not any(parsed.belongs_to(deps.instance_id, i.namespace, i.name) for i in identities):
            found.append((account_id, name))
    return found


@dataclass
class InventoryResult:
    outcome: Outcome
    missing: list[tuple[KeyEntry, str]]
    """Keys whose current credential was deleted in OpenAI, with that account's id."""


def _orphans(deps: Deps, accounts: Sequence[tuple[str, str]], keys: Sequence[KeyEntry],
             judged: Callable[[str], bool]) -> list[tuple[str, str]]:
    recorded = set().union(*(k.service_account_ids for k in keys)) if keys else set()
    found = []
    for account_id, name in accounts:
        parsed = parse_service_account_name(name)
        if parsed is None or parsed.instance != deps.instance_id or account_id in recorded:
            continue
        if not deps.config.clusterwide and (parsed.namespace is None or not judged(parsed.namespace)):
            continue  # a namespace another operator (shard) serves, or one a shortened name hides
        if not any(parsed.belongs_to(deps.instance_id, k.namespace, k.name) for k in keys):
            found.append((account_id, name))
    return found


async def take_inventory(
    deps: Deps, project_id: str, keys: Callable[[], Sequence[KeyEntry]], *,
    judge_orphans_in: Callable[[str], bool] | None, identities: Callable[[], Sequence[IdentityEntry]] = tuple,
) -> InventoryResult:
    """List the project's service accounts once, revoke orphans, and report deleted credentials.

    ``judge_orphans_in``: the namespaces whose orphans may be revoked (``None``: none).

    ``keys`` reads the key index when called. It is read *after* the listing: a key is in the index
    before its first account is minted, so every key whose account the listing shows is known by
    then, while a snapshot taken before a slow listing misses keys created during it and would take
    their fresh credentials for orphans. Each orphan is checked against the index once more right
    before it is deleted.

    ``identities`` (every OpenAIWorkloadIdentity, read the same way) judges the keyless ``wif.``
    accounts: one whose identity no longer exists is an orphan too (its rule is swept by the
    provider's pass).
    """
    outcome = Outcome()
    taken_at = deps.clock()
    accounts = await deps.admin.list_service_accounts(project_id)
    ids = {a.id for a in accounts}
    if judge_orphans_in is not None:
        for account_id, name in _orphans(deps, [(a.id, a.name) for a in accounts], keys(), judge_orphans_in):
            if not _orphans(deps, [(account_id, name)], keys(), judge_orphans_in):
                continue
            await deps.admin.delete_service_account(project_id, account_id)
            deps.metrics.record_orphan_revoked()
            log.info("orphan revoked", project_id=project_id, service_account_id=account_id, name=name)
            outcome.note("Normal", Reason.ORPHAN_REVOKED,
                         f"Revoked service account {name} ({account_id}): no OpenAIKey holds it")
        for account_id, name in _identity_orphans(deps, [(a.id, a.name) for a in accounts], identities(),
                                                  judge_orphans_in):
            if not _identity_orphans(deps, [(account_id, name)], identities(), judge_orphans_in):
                continue
            await deps.admin.delete_service_account(project_id, account_id)
            deps.metrics.record_orphan_revoked()
            log.info("orphan revoked", project_id=project_id, service_account_id=account_id, name=name)
            outcome.note("Normal", Reason.ORPHAN_REVOKED,
                         f"Revoked service account {name} ({account_id}): no OpenAIWorkloadIdentity holds it")
    missing = []
    for key in keys():
        current = key.current
        if current is None or current in ids or key.created_at is None or key.created_at >= taken_at:
            continue
        try:
            await deps.admin.get_service_account(project_id, current)
        except NotFoundError:
            missing.append((key, current))
    return InventoryResult(outcome, missing)
