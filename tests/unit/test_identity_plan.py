"""Table tests of the workload-identity planners (``reconcile/identity_plan.py``) and the spec/naming rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from openai_operator.errors import SpecError
from openai_operator.model.identity import (
    IdentityProviderStatus,
    ProviderSlot,
    WorkloadIdentityStatus,
    identity_account_name,
    parse_identity_account_name,
    parse_identity_provider_spec,
    parse_workload_identity_spec,
)
from openai_operator.model.specs import KeyPolicy
from openai_operator.reconcile.identity_plan import (
    ApplyConfigMap,
    CreateProvider,
    CreateRule,
    CreateServiceAccount,
    DeleteRule,
    IdentityFacts,
    ObservedMapping,
    ObservedProvider,
    ObservedRule,
    PatchWorkloads,
    ProviderFacts,
    ProviderView,
    Unmap,
    UpdateProvider,
    UpdateRule,
    first_free_slot,
    jwks_fingerprint,
    plan_identity,
    plan_provider,
)
from openai_operator.reconcile.policy import ProjectView, check_identity_policy

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ISSUER = "https://kubernetes.default.svc.cluster.local"
KEY_A = {"kty": "RSA", "kid": "a", "n": "xyz", "e": "AQAB", "use": "sig", "alg": "RS256"}
KEY_B = {"kty": "RSA", "kid": "b", "n": "uvw", "e": "AQAB", "use": "sig", "alg": "RS256"}
JWKS = {"keys": [KEY_A]}


def test_fingerprint_ignores_key_order_and_sees_a_new_key() -> None:
    assert jwks_fingerprint({"keys": [KEY_A, KEY_B]}) == jwks_fingerprint({"keys": [KEY_B, KEY_A]})
    assert jwks_fingerprint({"keys": [KEY_A]}) != jwks_fingerprint({"keys": [KEY_A, KEY_B]})


# --- the provider -------------------------------------------------------------------------------


def rules(count: int, *, prefix: str = "wif.inst.team.app", created: datetime = NOW - timedelta(hours=1)
          ) -> tuple[ObservedRule, ...]:
    return tuple(ObservedRule(f"wifr_{i}", f"{prefix}{i}", f"svc_{i}", created) for i in range(count))


def slot(index: int, *, fingerprint: str | None = None, rule_list: tuple[ObservedRule, ...] = (),
         audience: str = "https://api.openai.com/v1") -> ObservedProvider:
    return ObservedProvider(f"wip_{index}", f"wif.inst.cluster.{index}", ISSUER, audience,
                            fingerprint if fingerprint is not None else jwks_fingerprint(JWKS), rule_list)


def provider_facts(observed: tuple[ObservedProvider, ...] = (), *, jwks: dict[str, Any] | None = JWKS,
                   issuer: str | None = ISSUER, org: int | None = None, spec: dict[str, Any] | None = None,
                   identities: frozenset[tuple[str, str]] = frozenset(),
                   status: IdentityProviderStatus | None = None) -> ProviderFacts:
    return ProviderFacts(
        name="cluster", instance="inst", generation=1, spec=parse_identity_provider_spec(spec or {}),
        status=status or IdentityProviderStatus(), issuer=issuer, jwks=jwks,
        issuer_error=None if issuer else "forbidden", observed=observed,
        org_providers=len(observed) if org is None else org, identities=identities, listed_at=NOW, now=NOW)


def ready(status: Any) -> tuple[str, str]:
    found = next(c for c in status.conditions if c.type == "Ready")
    return found.status, found.reason


def test_no_provider_yet_creates_the_first_slot() -> None:
    plan = plan_provider(provider_facts())
    assert plan.actions == (CreateProvider("wif.inst.cluster.0"),)


def test_unchanged_jwks_uploads_nothing_and_reports_capacity() -> None:
    plan = plan_provider(provider_facts((slot(0, rule_list=rules(3, prefix="x")),)))
    assert plan.actions == ()
    assert ready(plan.status) == ("True", "ProviderSynced")
    patch = plan.status.to_patch()
    assert (patch["mappingsUsed"], patch["mappingsCapacity"], patch["providerIds"]) == (3, 50, ["wip_0"])
    assert patch["keyIds"] == ["a"]


def test_a_new_signing_key_is_uploaded_to_every_slot_with_old_and_new_keys_together() -> None:
    both = {"keys": [KEY_A, KEY_B]}
    full = rules(50, prefix="x")
    plan = plan_provider(provider_facts((slot(0, rule_list=full), slot(1)), jwks=both))
    uploads = [a for a in plan.actions if isinstance(a, UpdateProvider)]
    assert [(u.provider_id, u.jwks) for u in uploads] == [("wip_0", both), ("wip_1", both)]
    assert plan.status.jwks_fingerprint == jwks_fingerprint(both)
    assert plan.status.last_sync_time == NOW


def test_a_changed_audience_is_pushed() -> None:
    plan = plan_provider(provider_facts((slot(0, audience="old"),), spec={"audience": "https://api.openai.com/v1"}))
    assert plan.actions == (UpdateProvider("wip_0", None, "https://api.openai.com/v1", None),)


def test_a_full_provider_gets_a_second_slot_for_the_same_issuer() -> None:
    plan = plan_provider(provider_facts((slot(0, rule_list=rules(50, prefix="x")),)))
    assert plan.actions == (CreateProvider("wif.inst.cluster.1"),)


def test_full_providers_at_the_org_limit_refuse_with_a_reason() -> None:
    plan = plan_provider(provider_facts((slot(0, rule_list=rules(50, prefix="x")),), org=50))
    assert not any(isinstance(a, CreateProvider) for a in plan.actions)
    assert ready(plan.status) == ("True", "ProviderLimitReached")


def test_an_unreadable_issuer_changes_nothing_upstream() -> None:
    plan = plan_provider(provider_facts((slot(0),), issuer=None, jwks=None))
    assert plan.actions == ()
    assert ready(plan.status) == ("False", "IssuerUnavailable")


@pytest.mark.parametrize(("name", "created", "known", "swept"), [
    pytest.param("wif.inst.team.gone", NOW - timedelta(hours=1), frozenset(), True, id="identity gone: swept"),
    pytest.param("wif.inst.team.app", NOW - timedelta(hours=1), frozenset({("team", "app")}), False, id="known"),
    pytest.param("wif.inst.team.gone", NOW + timedelta(seconds=1), frozenset(), False, id="newer than the listing"),
    pytest.param("wif.other.team.gone", NOW - timedelta(hours=1), frozenset(), False, id="another installation"),
    pytest.param("hand-made", NOW - timedelta(hours=1), frozenset(), False, id="not operator-named"),
])
def test_orphan_rules_are_swept_only_when_provably_ours_and_unowned(
        name: str, created: datetime, known: frozenset[tuple[str, str]], swept: bool) -> None:
    rule = ObservedRule("wifr_1", name, "svc_1", created)
    plan = plan_provider(provider_facts((slot(0, rule_list=(rule,)),), identities=known))
    assert (DeleteRule("wip_0", "wifr_1", name) in plan.actions) is swept


# --- one identity -------------------------------------------------------------------------------

PROVIDER = ProviderView("cluster", True, "https://api.openai.com/v1", (ProviderSlot("wip_0", 3),))


def identity_facts(*, spec: dict[str, Any] | None = None, observed: ObservedMapping | None = None,
                   status: WorkloadIdentityStatus | None = None, refusal: Any = None,
                   provider: ProviderView | None = PROVIDER, free: str | None = "wip_0") -> IdentityFacts:
    return IdentityFacts(
        namespace="team", name="app", instance="inst", generation=2,
        spec=parse_workload_identity_spec({"projectRef": {"name": "p"}, "serviceAccountName": "app", **(spec or {})},
                                          name="app"),
        status=status or WorkloadIdentityStatus(), refusal=refusal, project_id="proj_1", provider=provider,
        provider_problem=None if provider else "no OpenAIIdentityProvider exists", observed=observed or
        ObservedMapping(None), free_slot=free, base_url="https://api.openai.com/v1", now=NOW)


MAPPED = ObservedMapping("svc_1", "wifr_1", "wip_0", "svc_1", {"sub": "system:serviceaccount:team:app"}, None, True)


def test_a_new_identity_gets_a_keyless_account_an_exact_rule_and_its_config_map() -> None:
    plan = plan_identity(identity_facts())
    assert plan.actions == (
        CreateServiceAccount("proj_1", "wif.inst.team.app"),
        CreateRule("wip_0", "proj_1", "wif.inst.team.app", {"sub": "system:serviceaccount:team:app"}, None),
        ApplyConfigMap("app"),
    )
    assert ready(plan.status) == ("True", "Mapped")
    assert plan.status.subject == "system:serviceaccount:team:app"


def test_an_identity_in_step_only_refreshes_its_config_map() -> None:
    plan = plan_identity(identity_facts(observed=MAPPED))
    assert plan.actions == (ApplyConfigMap("app"),)
    assert plan.repaired is None


@pytest.mark.parametrize(("matchers", "scopes", "enabled"), [
    pytest.param({"sub": "system:serviceaccount:team:*"}, None, True, id="widened to a wildcard"),
    pytest.param({"sub": "system:serviceaccount:other:app"}, None, True, id="another namespace"),
    pytest.param({"sub": "system:serviceaccount:team:app"}, ("api.all.read",), True, id="permissions edited"),
    pytest.param({"sub": "system:serviceaccount:team:app"}, None, False, id="disabled"),
])
def test_an_edited_rule_is_put_back(matchers: dict[str, str], scopes: tuple[str, ...] | None, enabled: bool) -> None:
    observed = replace(MAPPED, rule_matchers=matchers, rule_scopes=scopes, rule_enabled=enabled)
    plan = plan_identity(identity_facts(observed=observed))
    assert plan.actions[0] == UpdateRule("wip_0", "wifr_1", {"sub": "system:serviceaccount:team:app"}, None)
    assert plan.repaired is not None


def test_a_service_account_deleted_upstream_is_recreated_with_a_new_rule() -> None:
    status = WorkloadIdentityStatus(service_account_id="svc_1", federation_rule_id="wifr_1",
                                    identity_provider_id="wip_0", project_id="proj_1")
    observed = replace(MAPPED, service_account_id=None)
    plan = plan_identity(identity_facts(observed=observed, status=status))
    kinds = [type(a) for a in plan.actions]
    assert kinds == [CreateServiceAccount, DeleteRule, CreateRule, ApplyConfigMap]
    assert plan.repaired is not None
    assert "svc_1" in plan.repaired


def test_a_rule_deleted_upstream_is_recreated() -> None:
    status = WorkloadIdentityStatus(service_account_id="svc_1", federation_rule_id="wifr_1",
                                    identity_provider_id="wip_0", project_id="proj_1")
    plan = plan_identity(identity_facts(observed=ObservedMapping("svc_1"), status=status))
    assert [type(a) for a in plan.actions] == [CreateRule, ApplyConfigMap]
    assert plan.repaired is not None


@pytest.mark.parametrize(("spec", "scopes"), [
    pytest.param({}, None, id="All: the service account's default permissions"),
    pytest.param({"permissions": "ReadOnly"}, ("api.all.read",), id="ReadOnly"),
    pytest.param({"permissions": "Restricted", "scopes": ["api.model.request"]}, ("api.model.request",),
                 id="Restricted"),
])
def test_permissions_become_the_rule_scopes(spec: dict[str, Any], scopes: tuple[str, ...] | None) -> None:
    rule = next(a for a in plan_identity(identity_facts(spec=spec)).actions if isinstance(a, CreateRule))
    assert rule.scopes == scopes


def test_a_refused_identity_that_holds_a_mapping_is_unmapped() -> None:
    from openai_operator.reconcile.policy import Refusal

    refusal = Refusal("NamespaceNotAllowed", "no")
    plan = plan_identity(identity_facts(observed=MAPPED, refusal=refusal))
    assert plan.actions == (Unmap("proj_1", "wip_0", "wifr_1", "svc_1"),)
    assert ready(plan.status) == ("False", "NamespaceNotAllowed")
    nothing = plan_identity(identity_facts(refusal=refusal))
    assert nothing.actions == ()


def test_no_provider_maps_nothing() -> None:
    plan = plan_identity(identity_facts(provider=None))
    assert plan.actions == ()
    assert ready(plan.status) == ("False", "ProviderNotReady")


def test_no_room_on_any_provider_waits_with_provider_full() -> None:
    plan = plan_identity(identity_facts(free=None))
    assert not any(isinstance(a, CreateRule) for a in plan.actions)
    assert ready(plan.status) == ("False", "ProviderFull")
    assert plan.requeue_after is not None


def test_workloads_are_patched_after_the_config_map() -> None:
    plan = plan_identity(identity_facts(spec={"workloads": [{"kind": "Deployment", "name": "web"}]}))
    assert plan.actions[-2:] == (ApplyConfigMap("app"), PatchWorkloads())


def test_the_first_slot_with_room_is_chosen_by_the_freshest_count() -> None:
    slots = (ProviderSlot("wip_0", 10), ProviderSlot("wip_1", 0))
    assert first_free_slot(slots, {"wip_0": 50}) == "wip_1"
    assert first_free_slot(slots, {}) == "wip_0"
    assert first_free_slot((ProviderSlot("wip_0", 50),), {}) is None


# --- spec, policy and names ---------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "field"), [
    pytest.param({"scopes": ["api.all.read"]}, "spec.scopes", id="scopes without Restricted"),
    pytest.param({"permissions": "Restricted"}, "spec.scopes", id="Restricted without scopes"),
    pytest.param({"serviceAccountName": "Not_A_Name"}, "spec.serviceAccountName", id="bad ServiceAccount name"),
    pytest.param({"tokenExpirationSeconds": 60}, "spec.tokenExpirationSeconds", id="token shorter than 10 min"),
    pytest.param({"workloads": [{"kind": "DaemonSet", "name": "x"}]}, "spec.workloads[0].kind", id="DaemonSet"),
])
def test_bad_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_workload_identity_spec({"projectRef": {"name": "p"}, "serviceAccountName": "app", **spec}, name="x")
    assert raised.value.field_path == field


def test_the_provider_spec_defaults_to_openais_audience() -> None:
    spec = parse_identity_provider_spec({})
    assert spec.audience == "https://api.openai.com/v1"
    assert spec.sync_interval == timedelta(minutes=1)


def project(**policy: Any) -> ProjectView:
    return ProjectView("p", "proj_1", True, KeyPolicy.model_validate(policy))


@pytest.mark.parametrize(("view", "others", "reason"), [
    pytest.param(project(allowedNamespaces={"names": ["team"]}), 0, None, id="allowed"),
    pytest.param(project(allowedNamespaces={"names": ["other"]}), 0, "NamespaceNotAllowed", id="namespace refused"),
    pytest.param(project(allowedNamespaces={"selector": {"matchLabels": {"tier": "gold"}}}), 0, None,
                 id="allowed by label"),
    pytest.param(project(allowedNamespaces={"names": ["team"]}, maxKeys=1), 1, "KeyQuotaExceeded", id="maxKeys"),
    pytest.param(None, 0, "ProjectNotFound", id="no project"),
])
def test_the_key_policy_gates_identities(view: ProjectView | None, others: int, reason: str | None) -> None:
    spec = parse_workload_identity_spec({"projectRef": {"name": "p"}, "serviceAccountName": "app"}, name="x")
    refusal = check_identity_policy(spec, namespace="team", namespace_labels={"tier": "gold"}, project=view,
                                    other_credentials=others, holds_mapping=False)
    assert (refusal.reason if refusal else None) == reason


@pytest.mark.parametrize(("namespace", "name"), [("team", "app"), ("n" * 63, "x" * 200)])
def test_identity_names_round_trip_and_stay_apart_from_key_names(namespace: str, name: str) -> None:
    made = identity_account_name("inst", namespace, name)
    assert len(made) <= 64
    parsed = parse_identity_account_name(made)
    assert parsed is not None
    assert parsed.belongs_to("inst", namespace, name)
    assert not parsed.belongs_to("inst", namespace, name + "x")
    assert not parsed.belongs_to("other", namespace, name)
    assert parse_identity_account_name("k8s.inst.team.app.r1") is None


def test_the_keyless_examples_parse() -> None:
    folder = Path(__file__).resolve().parents[2] / "examples" / "keyless"
    docs = [d for f in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    kinds = {d["kind"]: d for d in docs}
    parse_identity_provider_spec(kinds["OpenAIIdentityProvider"]["spec"])
    identity = parse_workload_identity_spec(kinds["OpenAIWorkloadIdentity"]["spec"], name="summarizer")
    assert identity.rule_scopes == ("api.model.request",)


def test_no_rule_is_swept_when_the_operator_does_not_see_every_namespace() -> None:
    rule = ObservedRule("wifr_1", "wif.inst.team.gone", "svc_1", NOW - timedelta(hours=1))
    facts = replace(provider_facts((slot(0, rule_list=(rule,)),)), sweep=False)
    assert not any(isinstance(a, DeleteRule) for a in plan_provider(facts).actions)
