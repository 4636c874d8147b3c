"""``spec.members``, ``spec.membersPolicy``, ``spec.models`` and ``spec.serviceTiers`` against a real
kube-apiserver: bad values fail at ``kubectl apply`` with the offending field named, good ones are
accepted (the ``role`` default filled in)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import yaml

from testbed import Kubectl

pytestmark = pytest.mark.integration


def project(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIProject",
            "metadata": {"name": f"acc-{secrets.token_hex(4)}"}, "spec": spec}


def apply(kubectl: Kubectl, manifest: dict[str, Any]) -> Any:
    return kubectl("apply", "--server-side", "--field-manager=access-test", "-f", "-",
                   input=json.dumps(manifest), check=False)


def delete(kubectl: Kubectl, manifest: dict[str, Any]) -> None:
    kubectl("delete", "openaiproject", manifest["metadata"]["name"], "--wait=false", check=False)


INVALID = [
    pytest.param(project(members=[{"email": "not-an-email", "role": "member"}]), ["spec.members[0].email"],
                 id="a malformed member email is rejected naming the entry"),
    pytest.param(project(members=[{"email": "ana@example.com", "role": "reader"}]), ["spec.members[0].role"],
                 id="a role other than owner or member is rejected"),
    pytest.param(project(members=[{"role": "owner"}]), ["spec.members[0].email"],
                 id="a member without an email is rejected"),
    pytest.param(project(members=[{"email": "Ana@Example.com"}, {"email": "ana@example.COM", "role": "owner"}]),
                 ["spec.members", "more than once"], id="emails that differ only in case are duplicates"),
    pytest.param(project(membersPolicy="Exclusive"), ["spec.membersPolicy", "spec.members"],
                 id="Exclusive without members is rejected"),
    pytest.param(project(membersPolicy="Strict", members=[]), ["spec.membersPolicy"],
                 id="an unknown membersPolicy is rejected"),
    pytest.param(project(models={"allow": ["gpt-4o"], "deny": ["gpt-4o-mini"]}), ["spec.models", "exactly one"],
                 id="models with both allow and deny is rejected"),
    pytest.param(project(models={}), ["spec.models", "exactly one"], id="models with neither list is rejected"),
    pytest.param(project(models={"allow": []}), ["spec.models.allow"], id="an empty allow list is rejected"),
    pytest.param(project(models={"deny": []}), ["spec.models.deny"], id="an empty deny list is rejected"),
    pytest.param(project(models={"allow": ["gpt-4o", "gpt-4o"]}), ["spec.models.allow", "duplicate"],
                 id="a model listed twice in allow is rejected"),
    pytest.param(project(models={"deny": ["gpt-4o-mini", "gpt-4o-mini"]}), ["spec.models.deny", "duplicate"],
                 id="a model listed twice in deny is rejected"),
    pytest.param(project(models={"allow": ["gpt 4o"]}), ["spec.models.allow[0]"],
                 id="an invalid model id in allow is rejected"),
    pytest.param(project(models={"deny": ["-gpt"]}), ["spec.models.deny[0]"],
                 id="an invalid model id in deny is rejected"),
    pytest.param(project(serviceTiers={}), ["spec.serviceTiers"], id="an empty serviceTiers is rejected"),
    pytest.param(project(serviceTiers={"default": "flex"}), ["spec.serviceTiers.default"],
                 id="flex is not a default tier"),
    pytest.param(project(serviceTiers={"enabled": ["all", "flex"]}), ["spec.serviceTiers.enabled"],
                 id="all with other tiers is rejected"),
    pytest.param(project(serviceTiers={"enabled": ["standard"]}), ["spec.serviceTiers.enabled[0]"],
                 id="standard is not an optional tier"),
]


@pytest.mark.parametrize(("manifest", "fields"), INVALID)
def test_bad_access_fields_are_rejected_at_apply_naming_the_field(
    kubectl: Kubectl, crds: list[str], manifest: dict[str, Any], fields: list[str]
) -> None:
    result = apply(kubectl, manifest)
    if result.returncode == 0:
        delete(kubectl, manifest)
    assert result.returncode != 0, f"accepted:\n{yaml.safe_dump(manifest)}"
    for field in fields:
        assert field in result.stderr, result.stderr


def test_a_full_access_spec_is_accepted_with_the_role_default(kubectl: Kubectl, crds: list[str]) -> None:
    manifest = project(
        members=[{"email": "Ana@Example.com", "role": "owner"}, {"email": "ben@example.com"}],
        membersPolicy="Exclusive",
        models={"allow": ["gpt-4o-mini", "ft:gpt-4o-mini:org:custom:abc"]},
        serviceTiers={"default": "fast", "enabled": ["flex", "fast"]},
    )
    result = apply(kubectl, manifest)
    try:
        assert result.returncode == 0, result.stderr
        stored = json.loads(kubectl("get", "openaiproject", manifest["metadata"]["name"], "-o", "json").stdout)
    finally:
        delete(kubectl, manifest)
    assert stored["spec"]["members"][1] == {"email": "ben@example.com", "role": "member"}
    assert stored["spec"]["serviceTiers"] == {"default": "fast", "enabled": ["flex", "fast"]}


@pytest.mark.parametrize("spec", [{"members": [], "membersPolicy": "Exclusive"}, {"serviceTiers": {"enabled": []}},
                                  {"serviceTiers": {"enabled": ["all"]}}, {"models": {"deny": ["gpt-4o"]}}],
                         ids=["Exclusive with an empty list means none on purpose", "enabled [] allows only Standard",
                              "enabled [all] alone", "a deny list alone"])
def test_edge_values_that_mean_something_are_accepted(kubectl: Kubectl, crds: list[str], spec: dict[str, Any]) -> None:
    manifest = project(**spec)
    result = apply(kubectl, manifest)
    delete(kubectl, manifest)
    assert result.returncode == 0, result.stderr
