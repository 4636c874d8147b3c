"""The per-project inventory: one paged list of service accounts per interval, not one per key.

It serves two purposes (DESIGN.md section 2, drift):

- operator-named service accounts whose OpenAIKey no longer exists are orphans (left by a key
  deleted while the operator was down, or by a crash): they are revoked (reason ``OrphanRevoked``);
- the snapshot of ids is kept in memory, and each key compares its current credential with it: a
  credential missing from a snapshot taken after it was issued was deleted outside the operator, so
  the key rotates (reason ``UpstreamKeyMissing``).

Orphans are only judged when the operator watches every namespace; a namespaced operator does not
see every key and could mistake another namespace's credential for an orphan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from openai_operator.deps import Deps
from openai_operator.model.naming import parse_service_account_name
from openai_operator.model.reasons import Reason
from openai_operator.operations.outcome import Outcome


@dataclass(frozen=True)
class InventorySnapshot:
    taken_at: datetime
    service_account_ids: frozenset[str]


def orphans(accounts: Iterable[tuple[str, str]], keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Operator-named ``(id, name)`` accounts that belong to none of ``keys`` (``(namespace, name)``)."""
    keys = list(keys)
    found = []
    for account_id, name in accounts:
        parsed = parse_service_account_name(name)
        if parsed is None:
            continue
        if not any(parsed.belongs_to(namespace, key) for namespace, key in keys):
            found.append((account_id, name))
    return found


async def take_inventory(
    deps: Deps, project_id: str, keys: Iterable[tuple[str, str]], *, judge_orphans: bool
) -> Outcome:
    """List the project's service accounts once, revoke orphans, and keep the snapshot for the keys."""
    outcome = Outcome()
    taken_at = deps.clock()
    accounts = await deps.admin.list_service_accounts(project_id)
    ids = {a.id for a in accounts}
    if judge_orphans:
        for account_id, name in orphans(((a.id, a.name) for a in accounts), keys):
            await deps.admin.delete_service_account(project_id, account_id)
            ids.discard(account_id)
            deps.metrics.record_orphan_revoked()
            outcome.note("Normal", Reason.ORPHAN_REVOKED,
                         f"Revoked service account {name} ({account_id}): no OpenAIKey holds it")
    deps.inventory[project_id] = InventorySnapshot(taken_at, frozenset(ids))
    return outcome
