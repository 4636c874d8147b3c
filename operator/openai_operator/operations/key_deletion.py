"""Deletion of an OpenAIKey (its finalizer): revoke what it holds and remove what it delivered, or
keep both (``deletionPolicy: Retain``).

Only credentials recorded in status are touched, and each only after reading the account and
checking that its name was made by this installation for this key, so a forged status cannot make
the operator delete someone else's account. A key that never held anything makes no Admin API
call. Destinations are removed from what status recorded as delivered (and what the spec names, when
it still parses), so a spec that no longer parses does not leave a Vault path behind.

Retained credentials are renamed ``retained.…`` (:func:`~openai_operator.model.naming.retained_name`):
no longer operator-named, no sweep or later finalizer ever revokes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai_operator.deps import Deps
from openai_operator.errors import NotFoundError, PermanentError, SpecError
from openai_operator.model.destinations import destination_locations
from openai_operator.model.naming import RETAINED_PREFIX, retained_name
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyDeletionPolicy, KeySpec, parse_key_spec
from openai_operator.model.status import KeyStatus
from openai_operator.operations.keys import KeyRef, key_settings, store_context
from openai_operator.operations.outcome import Outcome
from openai_operator.reconcile.facts import KeyFacts, needs_account_listing
from openai_operator.reconcile.key_plan import account_belongs
from openai_operator.reconcile.policy import ProjectView
from openai_operator.stores import SecretStore, store_at, stores_for

__all__ = ["finalize_key"]


def _credential_ids(status: KeyStatus) -> list[str]:
    ids = [p.service_account_id for p in status.previous]
    if status.pending is not None and status.pending.service_account_id is not None:
        ids.append(status.pending.service_account_id)
    if status.service_account_id is not None:
        ids.append(status.service_account_id)
    return list(dict.fromkeys(ids))


def _destination_stores(deps: Deps, ref: KeyRef, spec: KeySpec | None, status: KeyStatus,
                        outcome: Outcome) -> list[SecretStore]:
    """What the spec names and what status recorded as delivered, each once.

    Stores come from the spec where it still names the location (exact, whatever the Vault mount
    looks like) and from the recorded location otherwise. A destination that cannot be reached from
    here (Vault no longer configured) is reported, never skipped silently.
    """
    ctx = store_context(deps, ref.namespace)
    stores: dict[tuple[str, str], SecretStore] = {}
    if spec is not None:
        try:
            built = stores_for(spec, ctx)
        except PermanentError as error:
            outcome.note("Warning", Reason.DESTINATION_UNAVAILABLE, f"Destinations left in place: {error.message}")
            built = {}
        for kind, location in destination_locations(spec).items():
            if kind in built:
                stores[(kind, location)] = built[kind]
    for kind, delivery in status.destinations.items():
        if (kind, delivery.location) in stores:
            continue
        try:
            stores[(kind, delivery.location)] = store_at(kind, delivery.location, ctx)
        except PermanentError as error:
            outcome.note("Warning", Reason.DESTINATION_UNAVAILABLE,
                         f"Left {kind} {delivery.location} in place: {error.message}")
    return list(stores.values())


async def finalize_key(deps: Deps, ref: KeyRef, body: Mapping[str, Any], *, project: ProjectView | None) -> Outcome:
    """Revoke every credential of the key and remove what it delivered (unless Retain)."""
    outcome = Outcome()
    status = KeyStatus.from_dict(body.get("status"))
    try:
        spec: KeySpec | None = parse_key_spec(body.get("spec") or {}, name=ref.name)
    except SpecError:
        spec = None
    facts = KeyFacts(namespace=ref.namespace, name=ref.name, uid=ref.uid, generation=ref.generation,
                     now=deps.clock(), status=status, settings=key_settings(deps))
    project_id = status.project_id or (project.project_id if project else None)
    retain = spec is not None and spec.deletion_policy == KeyDeletionPolicy.RETAIN
    ids = _credential_ids(status)
    if project_id is not None and needs_account_listing(status):
        try:
            listed = await deps.admin.list_service_accounts(project_id)
        except NotFoundError:
            listed = []
        pending = status.pending
        assert pending is not None
        ids += [a.id for a in listed if a.name == pending.service_account_name and account_belongs(facts, a.name)]
    done = 0
    if project_id is not None and ids:
        try:
            for account_id in ids:
                done += await _settle(deps, facts, project_id, account_id, retain=retain, outcome=outcome)
        except PermanentError:
            # An archived project refuses every change, its keys included; they no longer work, so
            # there is nothing left to revoke and the key must not be stuck on its finalizer.
            if not (await deps.admin.get_project(project_id)).archived:
                raise
    stores = _destination_stores(deps, ref, spec, status, outcome)
    for store in stores:
        if retain:
            await store.release(ref.owner)
        else:
            await store.delete(ref.owner)
    if retain:
        outcome.note("Normal", Reason.RETAINED,
                     f"deletionPolicy is Retain: {done} credential(s) renamed retained.* and kept, destinations kept")
    elif done:
        outcome.note("Normal", Reason.REVOKED, f"Revoked {done} credential(s) of the deleted key")
    return outcome


async def _settle(deps: Deps, facts: KeyFacts, project_id: str, account_id: str, *, retain: bool,
                  outcome: Outcome) -> int:
    """Revoke (or, retaining, rename) one account after checking its name; 1 when something was done."""
    try:
        account = await deps.admin.get_service_account(project_id, account_id)
    except NotFoundError:
        return 0
    if not account_belongs(facts, account.name):
        if not account.name.startswith(f"{RETAINED_PREFIX}."):
            outcome.note("Warning", Reason.REVOCATION_FAILED,
                         f"Not touching service account {account_id}: its name {account.name!r} does not belong "
                         f"to OpenAIKey {facts.ref}")
        return 0
    try:
        if retain:
            await deps.admin.rename_service_account(project_id, account_id, retained_name(account.name))
        else:
            await deps.admin.delete_service_account(project_id, account_id)
    except NotFoundError:
        return 0
    return 1
