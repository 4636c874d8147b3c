"""The workload-identity executors (``operations/identity.py``) with fakes behind the ports: what
they call, in which order, and what they save."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import NotFoundError
from openai_operator.k8s.identity import Issuer, WorkloadPatchResult
from openai_operator.metrics import OperatorMetrics
from openai_operator.model.identity import ProviderSlot
from openai_operator.model.specs import KeyPolicy
from openai_operator.openai.models import (
    CreatedServiceAccount,
    FederationRule,
    IssuedKey,
    ServiceAccount,
    WorkloadIdentityProvider,
)
from openai_operator.operations.identity import (
    IdentityRef,
    finalize_identity,
    reconcile_identity,
    reconcile_identity_provider,
)
from openai_operator.reconcile.identity_plan import ProviderView
from openai_operator.reconcile.policy import ProjectView
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
JWKS = {"keys": [{"kty": "RSA", "kid": "a", "n": "x", "e": "AQAB"}]}


@dataclass
class FakeAdmin:
    calls: list[str] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    providers: dict[str, WorkloadIdentityProvider] = field(default_factory=dict)
    rules: dict[str, FederationRule] = field(default_factory=dict)

    async def create_service_account(self, project_id: str, name: str, *,
                                     expires_in_seconds: int | None = None) -> CreatedServiceAccount:
        self.calls.append(f"create_service_account {name} expires={expires_in_seconds}")
        account = ServiceAccount(f"svc_{len(self.accounts)}", name, "member", NOW)
        self.accounts[account.id] = name
        key = IssuedKey(f"key_{account.id}", None, NOW, None, SecretValue("sk-svcacct-" + "k" * 40))
        self.keys.add(key.id)
        return CreatedServiceAccount(account, key)

    async def get_service_account(self, project_id: str, service_account_id: str) -> ServiceAccount:
        if service_account_id not in self.accounts:
            raise NotFoundError("gone")
        return ServiceAccount(service_account_id, self.accounts[service_account_id], "member", NOW)

    async def list_service_accounts(self, project_id: str, *, page_size: int = 100) -> list[ServiceAccount]:
        return [ServiceAccount(i, n, "member", NOW) for i, n in self.accounts.items()]

    async def delete_service_account(self, project_id: str, service_account_id: str) -> bool:
        self.calls.append(f"delete_service_account {service_account_id}")
        return self.accounts.pop(service_account_id, None) is not None

    async def delete_project_api_key(self, project_id: str, key_id: str) -> bool:
        self.calls.append(f"delete_project_api_key {key_id}")
        self.keys.discard(key_id)
        return True

    async def list_identity_providers(self, *, page_size: int = 100) -> list[WorkloadIdentityProvider]:
        return list(self.providers.values())

    async def create_identity_provider(self, *, name: str, issuer: str, audience: str, jwks: Mapping[str, Any],
                                       description: str | None = None) -> WorkloadIdentityProvider:
        self.calls.append(f"create_identity_provider {name}")
        provider = WorkloadIdentityProvider(f"wip_{len(self.providers)}", name, issuer, audience, True,
                                            "uploaded_jwks", jwks, NOW)
        self.providers[provider.id] = provider
        return provider

    async def update_identity_provider(self, provider_id: str, *, jwks: Mapping[str, Any] | None = None,
                                       audience: str | None = None, issuer: str | None = None,
                                       enabled: bool | None = None) -> WorkloadIdentityProvider:
        self.calls.append(f"update_identity_provider {provider_id}")
        old = self.providers[provider_id]
        self.providers[provider_id] = WorkloadIdentityProvider(
            old.id, old.name, issuer or old.issuer, audience or old.audience, True, "uploaded_jwks",
            jwks if jwks is not None else old.jwks, NOW)
        return self.providers[provider_id]

    async def delete_identity_provider(self, provider_id: str) -> bool:
        return self.providers.pop(provider_id, None) is not None

    async def list_federation_rules(self, provider_id: str, *, service_account_id: str | None = None,
                                    page_size: int = 100) -> list[FederationRule]:
        return [r for r in self.rules.values() if r.provider_id == provider_id
                and (service_account_id is None or r.service_account_id == service_account_id)]

    async def get_federation_rule(self, provider_id: str, rule_id: str) -> FederationRule:
        if rule_id not in self.rules:
            raise NotFoundError("gone")
        return self.rules[rule_id]

    async def create_federation_rule(self, provider_id: str, *, project_id: str, service_account_id: str,
                                     attribute_matchers: Mapping[str, Any], scopes: Sequence[str] | None = None,
                                     name: str | None = None) -> FederationRule:
        self.calls.append(f"create_federation_rule {provider_id} {dict(attribute_matchers)}")
        rule = FederationRule(f"wifr_{len(self.rules)}", provider_id, project_id, service_account_id, name, True,
                              dict(attribute_matchers), tuple(scopes) if scopes is not None else None, NOW)
        self.rules[rule.id] = rule
        return rule

    async def update_federation_rule(self, provider_id: str, rule_id: str, *, attribute_matchers: Mapping[str, Any],
                                     scopes: Sequence[str] | None, enabled: bool = True) -> FederationRule:
        self.calls.append(f"update_federation_rule {rule_id}")
        return self.rules[rule_id]

    async def delete_federation_rule(self, provider_id: str, rule_id: str) -> bool:
        self.calls.append(f"delete_federation_rule {rule_id}")
        return self.rules.pop(rule_id, None) is not None


@dataclass
class FakeCluster:
    saved: list[dict[str, Any]] = field(default_factory=list)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    jwks: Mapping[str, Any] = field(default_factory=lambda: JWKS)

    async def read_issuer(self) -> Issuer:
        return Issuer("https://kubernetes.default.svc", self.jwks)

    async def get_identity_provider(self, name: str) -> dict[str, Any] | None:
        return None

    async def patch_identity_provider_status(self, name: str, status: Mapping[str, Any]) -> None:
        self.saved.append(dict(status))

    async def get_workload_identity(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def patch_workload_identity_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.saved.append(dict(status))

    async def apply_config_map(self, namespace: str, name: str, data: Mapping[str, str], *, owner_name: str,
                               owner_uid: str) -> None:
        self.config_maps[name] = dict(data)

    async def patch_workloads(self, namespace: str, workloads: Sequence[Any], **_: Any) -> WorkloadPatchResult:
        return WorkloadPatchResult(tuple(f"{w.kind}/{w.name}" for w in workloads), ())


class FakeKube:
    """The namespace read of the allowed-namespaces check: every namespace exists, without labels."""

    async def read(self, path: str) -> dict[str, Any] | None:
        return {"metadata": {"name": path.rsplit("/", 1)[-1], "labels": {}}}


def deps_with(admin: FakeAdmin, cluster: FakeCluster) -> Deps:
    config = OperatorConfig(admin_key=SecretValue("sk-admin-" + "a" * 40), fingerprint_key=b"f" * 32)
    return Deps(config=config, admin=None, kube=FakeKube(), objects=None,  # type: ignore[arg-type]
                metrics=OperatorMetrics(), vault_client_factory=None, clock=lambda: NOW, instance_id="inst",
                identity_admin=admin, identity_cluster=cluster)


PROJECT = ProjectView("p", "proj_1", True, KeyPolicy.model_validate({"allowedNamespaces": {"names": ["team"]}}))
PROVIDER = ProviderView("cluster", True, "https://api.openai.com/v1", (ProviderSlot("wip_0", 0),))
BODY = {"metadata": {"uid": "u1", "generation": 1}, "spec": {"projectRef": {"name": "p"}, "serviceAccountName": "app"}}


def identity_pass(admin: FakeAdmin, cluster: FakeCluster, body: dict[str, Any] = BODY,
                  project: ProjectView = PROJECT) -> Any:
    ref = IdentityRef("team", "app", "u1", 1)
    return asyncio.run(reconcile_identity(deps_with(admin, cluster), ref, body, project=project,
                                          providers=[PROVIDER], holders=[]))


def test_the_service_account_is_keyless_and_its_id_is_saved_before_the_rule() -> None:
    admin, cluster = FakeAdmin(), FakeCluster()
    outcome = identity_pass(admin, cluster)
    assert outcome.error is None
    assert admin.calls[:3] == [
        "create_service_account wif.inst.team.app expires=60",
        "delete_project_api_key key_svc_0",
        "create_federation_rule wip_0 {'sub': 'system:serviceaccount:team:app'}",
    ]
    assert admin.keys == set(), "the key the create returned is deleted at once"
    assert cluster.saved[0]["serviceAccountId"] == "svc_0"
    assert cluster.saved[0]["federationRuleId"] is None
    assert cluster.config_maps["app"]["OPENAI_SERVICE_ACCOUNT_ID"] == "svc_0"
    assert "sk-" not in repr(cluster.saved) + repr(cluster.config_maps) + repr(outcome.notes)


def _ready(status: dict[str, Any]) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == "Ready")
    return found["status"], found["reason"]


def test_the_saves_between_steps_do_not_claim_ready_before_the_rule_and_config_map_exist() -> None:
    admin, cluster = FakeAdmin(), FakeCluster()
    identity_pass(admin, cluster)
    *between, last = cluster.saved
    assert len(between) == 2  # after the service account, after the rule
    assert [_ready(s) for s in between] == [("False", "Mapping"), ("False", "Mapping")]
    assert _ready(last) == ("True", "Mapped")
    assert last["federationRuleId"] == "wifr_0"


def test_a_second_pass_changes_nothing_upstream() -> None:
    admin, cluster = FakeAdmin(), FakeCluster()
    identity_pass(admin, cluster)
    body = {**BODY, "status": cluster.saved[-1]}
    admin.calls.clear()
    identity_pass(admin, cluster, body)
    assert admin.calls == []


def test_a_refused_namespace_unmaps_and_deletes_the_account() -> None:
    admin, cluster = FakeAdmin(), FakeCluster()
    identity_pass(admin, cluster)
    body = {**BODY, "status": cluster.saved[-1]}
    closed = ProjectView("p", "proj_1", True, KeyPolicy())
    outcome = identity_pass(admin, cluster, body, project=closed)
    assert admin.rules == {}
    assert admin.accounts == {}
    assert [n.reason for n in outcome.notes] == ["Unmapped"]
    assert cluster.saved[-1]["federationRuleId"] is None


def test_deletion_removes_the_rule_then_the_account() -> None:
    admin, cluster = FakeAdmin(), FakeCluster()
    identity_pass(admin, cluster)
    body = {**BODY, "status": cluster.saved[-1]}
    admin.calls.clear()
    asyncio.run(finalize_identity(deps_with(admin, cluster), IdentityRef("team", "app", "u1", 1), body,
                                  project=PROJECT, providers=[PROVIDER]))
    assert admin.calls == ["delete_federation_rule wifr_0", "delete_service_account svc_0"]


def test_the_provider_pass_registers_then_re_uploads_on_a_key_change() -> None:
    admin, cluster = FakeAdmin(), FakeCluster()
    deps = deps_with(admin, cluster)
    body: dict[str, Any] = {"metadata": {"generation": 1}, "spec": {}}
    asyncio.run(reconcile_identity_provider(deps, "cluster", body, frozenset))
    assert admin.calls == ["create_identity_provider wif.inst.cluster.0"]
    assert cluster.saved[-1]["providerIds"] == ["wip_0"]
    admin.calls.clear()
    asyncio.run(reconcile_identity_provider(deps, "cluster", {**body, "status": cluster.saved[-1]}, frozenset))
    assert admin.calls == []
    cluster.jwks = {"keys": [*JWKS["keys"], {"kty": "EC", "kid": "b", "crv": "P-256", "x": "1", "y": "2"}]}
    outcome = asyncio.run(reconcile_identity_provider(deps, "cluster", {**body, "status": cluster.saved[-1]},
                                                      frozenset))
    assert admin.calls == ["update_identity_provider wip_0"]
    assert admin.providers["wip_0"].jwks == cluster.jwks
    assert cluster.saved[-1]["keyIds"] == ["a", "b"]
    assert [n.reason for n in outcome.notes] == ["JwksUploaded"]
