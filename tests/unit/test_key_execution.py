"""The executor of a key's plan, with fakes behind its small interfaces (no I/O).

Each test is a partial failure of an issue and checks the one thing that matters: no destination
is left holding a revoked key, and a credential some destination holds stays recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from builders import NAME, NAMESPACE, key_spec, project_view
from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import NotFoundError, OperatorError, TransientError
from openai_operator.metrics import OperatorMetrics
from openai_operator.model.status import KeyStatus
from openai_operator.openai.models import CreatedServiceAccount, IssuedKey, ServiceAccount
from openai_operator.operations.keys import KeyRef, _Execution
from openai_operator.reconcile.facts import DestinationState, KeyFacts, KeySettings
from openai_operator.reconcile.key_plan import plan_key
from openai_operator.secretvalue import SecretValue, fingerprint
from openai_operator.stores import Observed, Owner, WriteResult

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FP_KEY = b"k" * 32


@dataclass
class FakeAdmin:
    """The Admin API: accounts by id; ``fail`` maps a method name to the error it raises."""

    accounts: dict[str, str] = field(default_factory=dict)
    fail: dict[str, OperatorError] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    minted: list[str] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    async def create_service_account(self, project_id: str, name: str, *,
                                     expires_in_seconds: int | None = None) -> CreatedServiceAccount:
        self._call("create")
        account_id = f"sa_{len(self.accounts) + 1}"
        self.accounts[account_id] = name
        value = f"sk-svcacct-{account_id}-{'x' * 40}"
        self.minted.append(value)
        return CreatedServiceAccount(ServiceAccount(account_id, name, "member", NOW),
                                     IssuedKey(f"key_{account_id}", None, NOW, None, SecretValue(value)))

    async def get_service_account(self, project_id: str, service_account_id: str) -> ServiceAccount:
        self._call("get")
        if service_account_id not in self.accounts:
            raise NotFoundError("gone")
        return ServiceAccount(service_account_id, self.accounts[service_account_id], "member", NOW)

    async def delete_service_account(self, project_id: str, service_account_id: str) -> bool:
        self._call("delete")
        return self.accounts.pop(service_account_id, None) is not None

    async def update_project_api_key(self, project_id: str, key_id: str, **_: Any) -> object:
        self._call("update_key")
        return None

    async def verify_key(self, key: SecretValue) -> None:
        self._call("verify")


@dataclass
class FakeStore:
    kind: str
    holds: str | None = None
    fail_write: OperatorError | None = None
    write_lands_anyway: bool = False

    async def write(self, owner: Owner, material: Any) -> WriteResult:
        fp = fingerprint(material.api_key, FP_KEY)
        if self.fail_write is not None:
            if self.write_lands_anyway:
                self.holds = fp
            raise self.fail_write
        self.holds = fp
        location = NAME if self.kind == "secret" else f"secret/openai/{NAMESPACE}/{NAME}"
        return WriteResult(location, fp, None, changed=True)

    async def observe(self, owner: Owner) -> Observed | None:
        return None if self.holds is None else Observed(self.holds, None)

    async def delete(self, owner: Owner) -> None:
        self.holds = None

    async def release(self, owner: Owner) -> None:
        return None


@dataclass
class FakeObjects:
    saved: list[dict[str, Any]] = field(default_factory=list)

    async def patch_key_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.saved.append(status)


def deps_with(admin: FakeAdmin, objects: FakeObjects) -> Deps:
    config = OperatorConfig(admin_key=SecretValue("sk-admin-" + "a" * 40), fingerprint_key=FP_KEY)
    return Deps(config=config, admin=admin, kube=None, objects=objects,  # type: ignore[arg-type]
                metrics=OperatorMetrics(), vault_client_factory=None, clock=lambda: NOW, instance_id="test1")


async def run(status: KeyStatus, stores: dict[str, FakeStore], admin: FakeAdmin, *, spec: Any = None,
              **facts: Any) -> tuple[KeyStatus, FakeObjects, Any]:
    objects = FakeObjects()
    deps = deps_with(admin, objects)
    observed = {kind: (DestinationState.holding(s.holds) if s.holds else DestinationState.absent())
                for kind, s in stores.items()}
    key_facts = KeyFacts(namespace=NAMESPACE, name=NAME, uid="uid-1", generation=1, now=NOW, status=status,
                         settings=KeySettings(instance_id="test1", verify_attempts=1), spec=spec or key_spec(),
                         project=project_view(), namespace_labels={}, destinations=observed, **facts)
    plan = plan_key(key_facts)
    outcome = await _Execution(deps, KeyRef(NAMESPACE, NAME, "uid-1", 1), key_facts, plan, stores).run()  # type: ignore[arg-type]
    return KeyStatus.from_dict(outcome.status), objects, outcome


def live(admin: FakeAdmin, value_fp: str | None) -> bool:
    """Whether the key a destination holds (by fingerprint) still belongs to a live account."""
    if value_fp is None:
        return True
    alive = {fingerprint(v, FP_KEY) for v in admin.minted
             if any(f"-{i}-" in v for i in admin.accounts)}
    return value_fp in alive


async def test_a_first_issue_delivers_a_verified_key_and_records_it() -> None:
    admin, secret = FakeAdmin(), FakeStore("secret")
    status, objects, _ = await run(KeyStatus(), {"secret": secret}, admin)
    assert admin.calls == ["create", "verify"]
    assert status.key_id == "key_sa_1"
    assert status.pending is None
    assert objects.saved[0]["pending"]["serviceAccountName"] == "k8s.test1.apps.chat.r1"
    assert objects.saved[1]["pending"]["serviceAccountId"] == "sa_1", "ids are saved before any delivery"
    assert live(admin, secret.holds)


async def test_a_key_that_does_not_verify_is_deleted_and_never_delivered() -> None:
    admin, secret = FakeAdmin(fail={"verify": TransientError("503")}), FakeStore("secret")
    status, _, outcome = await run(KeyStatus(), {"secret": secret}, admin)
    assert secret.holds is None
    assert admin.accounts == {}
    assert status.pending is None
    assert status.failed_attempts == 1
    assert outcome.error is not None


async def test_a_failed_rotation_leaves_the_old_key_in_the_secret_and_alive() -> None:
    admin = FakeAdmin()
    secret = FakeStore("secret")
    first, _, _ = await run(KeyStatus(), {"secret": secret}, admin)
    old = secret.holds
    admin.fail["verify"] = TransientError("503")
    after, _, _ = await run(first, {"secret": secret}, admin, rotate_token="now")
    assert secret.holds == old
    assert live(admin, secret.holds)
    assert after.key_id == first.key_id
    assert after.previous == ()


async def test_a_second_destination_failing_keeps_the_delivered_credential_recorded() -> None:
    admin = FakeAdmin()
    secret, vault = FakeStore("secret"), FakeStore("vault")
    spec = key_spec(vault={"path": "openai/apps/chat"})
    first, _, _ = await run(KeyStatus(), {"secret": secret, "vault": vault}, admin, spec=spec)
    vault.fail_write = TransientError("vault sealed")
    after, _, outcome = await run(first, {"secret": secret, "vault": vault}, admin, spec=spec, rotate_token="r")
    assert outcome.error is not None
    assert after.pending is not None
    assert after.pending.service_account_id in admin.accounts, "the Secret holds it: never deleted"
    assert live(admin, secret.holds)
    assert live(admin, vault.holds)
    assert first.service_account_id in admin.accounts, "the old key is still in Vault"


async def test_a_first_write_that_landed_despite_an_error_is_not_revoked() -> None:
    admin, secret = FakeAdmin(), FakeStore("secret", fail_write=TransientError("timeout"), write_lands_anyway=True)
    status, _, _ = await run(KeyStatus(), {"secret": secret}, admin)
    assert secret.holds is not None
    assert live(admin, secret.holds)
    assert status.pending is not None


async def test_a_failed_revocation_of_the_previous_key_degrades_without_undoing_the_rotation() -> None:
    admin = FakeAdmin()
    secret = FakeStore("secret")
    first, _, _ = await run(KeyStatus(), {"secret": secret}, admin)
    admin.fail["delete"] = TransientError("503")
    after, _, outcome = await run(first, {"secret": secret}, admin, revoke_token="leak")
    assert outcome.error is None
    assert after.key_id != first.key_id, "the rotation stands"
    assert [p.service_account_id for p in after.previous] == [first.service_account_id]
    assert after.previous[0].revoke_at == NOW
    assert live(admin, secret.holds)
    degraded = after.condition("Degraded")
    assert degraded is not None
    assert (degraded.status, degraded.reason) == ("True", "RevocationFailed")
    del admin.fail["delete"]
    healed, _, _ = await run(after, {"secret": secret}, admin, revoke_token="leak")
    assert healed.previous == ()
    assert healed.condition("Degraded").status == "False"  # type: ignore[union-attr]


async def test_the_leak_response_revokes_the_old_key_in_the_pass_that_promotes_the_new_one() -> None:
    """Found by the demo: the old key lived on until the next pass (a resync away in production)."""
    admin = FakeAdmin()
    secret = FakeStore("secret")
    first, _, _ = await run(KeyStatus(), {"secret": secret}, admin)
    leaked, _, _ = await run(first, {"secret": secret}, admin, revoke_token="leak")
    assert first.service_account_id not in admin.accounts
    assert leaked.previous == ()
    assert live(admin, secret.holds)


async def test_a_forged_previous_id_is_not_deleted() -> None:
    """Status ids are checked against the account's name before anything is deleted."""
    from dataclasses import replace

    from openai_operator.model.status import PreviousCredential

    admin = FakeAdmin(accounts={"sa_victim": "k8s.test1.other.victim.r1"})
    secret = FakeStore("secret")
    first, _, _ = await run(KeyStatus(), {"secret": secret}, admin)
    forged = replace(first, previous=(PreviousCredential("key_v", "sa_victim", NOW),))
    after, _, _ = await run(forged, {"secret": secret}, admin)
    assert "sa_victim" in admin.accounts
    assert after.previous == ()


async def test_the_inventory_never_takes_a_key_created_during_its_listing_for_an_orphan() -> None:
    """Found by the chaos test at 200 keys: the inventory snapshotted the key index before a slow
    listing, so accounts minted for keys created meanwhile were revoked as orphans while their
    Secrets held them."""
    from openai_operator.operations.inventory import KeyEntry, take_inventory

    index: list[KeyEntry] = [KeyEntry(NAMESPACE, "old", frozenset({"sa_old"}), "sa_old", NOW)]

    class ListingWhileAKeyArrives(FakeAdmin):
        async def list_service_accounts(self, project_id: str, *, page_size: int = 100) -> list[ServiceAccount]:
            # While the listing runs, a new key is indexed and its first account minted.
            index.append(KeyEntry(NAMESPACE, "new"))
            self.accounts["sa_new"] = "k8s.test1.apps.new.r1"
            return [ServiceAccount(i, n, "member", NOW) for i, n in self.accounts.items()]

    admin = ListingWhileAKeyArrives(accounts={"sa_old": "k8s.test1.apps.old.r1",
                                              "sa_ghost": "k8s.test1.apps.ghost.r1"})
    deps = deps_with(admin, FakeObjects())
    result = await take_inventory(deps, "proj_1", lambda: list(index), judge_orphans_in=lambda _namespace: True)
    assert "sa_new" in admin.accounts, "a key created during the listing keeps its credential"
    assert "sa_ghost" not in admin.accounts, "a real orphan is still revoked"
    assert [n.reason for n in result.outcome.notes] == ["OrphanRevoked"]


async def test_a_forged_pending_record_cannot_make_the_operator_delete_someone_elses_account() -> None:
    """status.pending names an account of ours but the id of another: the name is read back from
    OpenAI before the delete, so the other account survives (the name in status is not trusted)."""
    from builders import pending

    admin = FakeAdmin(accounts={"sa_2": "payments-prod-service-account"})
    forged = KeyStatus(pending=pending(2))  # serviceAccountName k8s.test1.apps.chat.r2, serviceAccountId sa_2
    await run(forged, {"secret": FakeStore("secret")}, admin)
    assert "sa_2" in admin.accounts
