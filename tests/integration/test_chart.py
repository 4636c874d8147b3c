"""The Helm chart, linted, rendered and installed for real into the test bed's apiserver.

There is no kubelet and no scheduler, so pods are created (which proves they pass the `restricted`
Pod Security admission) but never run: nothing here waits for a pod to be ready. What is checked is
what the apiserver decides: the rendering is valid (server-side dry run), ``helm install`` and
``helm uninstall`` work, and the ServiceAccount can do exactly what the operator needs, proven with
``kubectl auth can-i`` as that ServiceAccount.

The CRDs are cluster-wide and shared with the other tests (the ``crds`` fixture applied them);
``helm install`` leaves existing CRDs alone, and nothing here deletes them. Every install uses a
random release name, and the chart puts it into every cluster-scoped name, so installs never clash.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from openai_devstack.binaries import ensure_helm
from support import wait_for
from testbed import KubeCluster, Kubectl

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "openai-operator"
CRD_NAMES = (
    "openaiprojects.openai.operator.dev",
    "openaikeys.openai.operator.dev",
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
)

# The ClusterRole, rule by rule, as (apiGroup, resource, verb, resourceName); see templates/rbac.yaml.
OPERATOR_RULES = {
    *((group, resource, verb, "") for group, resources, verbs in (
        ("openai.operator.dev", ("openaiprojects", "openaikeys", "openaiidentityproviders",
                                 "openaiworkloadidentities"), ("get", "list", "watch", "patch")),
        ("openai.operator.dev", ("openaiprojects/status", "openaikeys/status", "openaiidentityproviders/status",
                                 "openaiworkloadidentities/status"), ("patch",)),
        ("openai.operator.dev", ("openaikeys/finalizers", "openaiworkloadidentities/finalizers"), ("update",)),
        ("", ("secrets",), ("get", "create", "update", "delete")),
        ("", ("configmaps",), ("get", "create", "patch")),
        ("nonResourceURLs", ("/.well-known/openid-configuration", "/openid/v1/jwks"), ("get",)),
        ("", ("namespaces",), ("get", "list", "watch")),
        ("", ("events",), ("create",)),
        ("kopf.dev", ("clusterkopfpeerings",), ("list", "watch")),
        ("apiextensions.k8s.io", ("customresourcedefinitions",), ("list", "watch")),
    ) for resource in resources for verb in verbs),
}
PEERING_RULES = {("kopf.dev", "clusterkopfpeerings", verb) for verb in ("get", "patch")}
RESTART_RULES = {("apps", resource, verb, "") for resource in ("deployments", "statefulsets", "daemonsets")
                 for verb in ("get", "patch")}


@dataclass(frozen=True)
class Helm:
    binary: Path
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def render(self, *args: str, release: str = "rel", namespace: str = "ops") -> list[dict[str, Any]]:
        """``helm template`` parsed; a key repeated in one mapping fails (PyYAML would keep the last)."""
        out = self("template", release, str(CHART), "--namespace", namespace, *args).stdout
        return [doc for doc in yaml.load_all(out, Loader=_StrictLoader) if doc]


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key repeated in one mapping (a template that renders one is broken)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str

    @property
    def fullname(self) -> str:
        return f"{self.name}-openai-operator"

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"


def _helm_env(base: dict[str, str], home: Path) -> dict[str, str]:
    """Helm's cache, config and data folders in a temporary folder, never the user's."""
    return {
        **base,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


@pytest.fixture(scope="module")
def offline_helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """Helm for lint and template: no cluster needed."""
    return Helm(ensure_helm(), _helm_env(dict(os.environ), tmp_path_factory.mktemp("helm")))


@pytest.fixture(scope="module")
def helm(kube: KubeCluster, offline_helm: Helm) -> Helm:
    """Helm talking to the test cluster."""
    return Helm(offline_helm.binary, {**offline_helm.env, **kube.env})


def _of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = _of(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in _container(docs)["env"]}


def _rules(cluster_role: dict[str, Any]) -> set[tuple[str, ...]]:
    """A ClusterRole's rules flattened to (group, resource, verb, resourceName) tuples."""
    flat: set[tuple[str, ...]] = set()
    for rule in cluster_role["rules"]:
        for url in rule.get("nonResourceURLs", []):
            for verb in rule["verbs"]:
                flat.add(("nonResourceURLs", url, verb, ""))
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [""]:
                        flat.add((group, resource, verb, name))
    return flat


# --- offline: lint and rendering ----------------------------------------------------------------


def test_lint(offline_helm: Helm) -> None:
    offline_helm("lint", "--strict", str(CHART))
    offline_helm(
        "lint", "--strict", str(CHART),
        "--set", "serviceMonitor.enabled=true,vault.address=http://vault.vault:8200,"
                 "vault.kubernetesAuth.role=openai-operator,vault.kubernetesAuth.authDelegator=true",
    )


def test_default_rendering(offline_helm: Helm) -> None:
    docs = offline_helm.render()
    assert sorted(doc["kind"] for doc in docs) == sorted([
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "ClusterKopfPeering",
        "Service", "NetworkPolicy", "Secret", "PodDisruptionBudget", "ClusterRole", "ClusterRole",
    ])
    tenant_roles = {doc["metadata"]["name"]: doc for doc in _of(docs, "ClusterRole")
                    if doc["metadata"]["name"].startswith("openai-key-")}
    assert _rules(tenant_roles["openai-key-editor"]) == {
        ("openai.operator.dev", resource, verb, "") for resource in ("openaikeys", "openaiworkloadidentities")
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")}, \
        "tenants never get openaikeys/status"
    assert tenant_roles["openai-key-editor"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] \
        == "true"
    assert _rules(tenant_roles["openai-key-viewer"]) == {
        ("openai.operator.dev", resource, verb, "") for resource in ("openaikeys", "openaiworkloadidentities")
        for verb in ("get", "list", "watch")}
    assert _one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    docs = [doc for doc in docs if doc["metadata"]["name"] not in tenant_roles]
    names = {doc["kind"]: doc["metadata"]["name"] for doc in docs}
    assert set(names.values()) == {
        "rel-openai-operator", "rel-openai-operator-metrics", "rel-openai-operator-fingerprint-key"}
    deployment = _one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(docs)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 8080, "health": 8081}
    env = _env(docs)
    assert env["OPENAI_ADMIN_KEY"] == {"secretKeyRef": {"name": "openai-admin-key", "key": "OPENAI_ADMIN_KEY"}}
    assert env["OPENAI_OPERATOR_PEERING_NAME"] == names["ClusterKopfPeering"]
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["OPENAI_BASE_URL"] == "https://api.openai.com/v1"
    assert env["OPENAI_OPERATOR_KEY_RESYNC_INTERVAL"] == "5m"
    assert "OPENAI_OPERATOR_PRIORITY" not in env
    assert "VAULT_ADDR" not in env
    assert env["OPENAI_OPERATOR_FINGERPRINT_KEY_FILE"] == "/etc/openai-operator/fingerprint/fingerprint-key"
    assert "OPENAI_OPERATOR_FINGERPRINT_KEY" not in env, "the key is mounted, never an env value"
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["fingerprint-key"] == (
        "/etc/openai-operator/fingerprint")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["fingerprint-key"]["secret"]["secretName"] == "rel-openai-operator-fingerprint-key"
    fingerprint_secret = _one(docs, "Secret")
    assert fingerprint_secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    value = base64.b64decode(fingerprint_secret["data"]["fingerprint-key"]).decode()
    assert len(value) == 64
    assert value.isalnum()
    again = _one(offline_helm.render(), "Secret")["data"]["fingerprint-key"]
    assert again != fingerprint_secret["data"]["fingerprint-key"], "a random value per install"
    assert _rules(_one(docs, "ClusterRole")) == OPERATOR_RULES | {
        (*rule, "rel-openai-operator") for rule in PEERING_RULES
    }


def test_toggles(offline_helm: Helm) -> None:
    docs = offline_helm.render(
        "--set", "serviceMonitor.enabled=true,networkPolicy.enabled=false,vault.address=https://vault:8200,"
                 "vault.kubernetesAuth.role=op,vault.kubernetesAuth.authDelegator=true,replicas=3",
    )
    assert _one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    assert not _of(docs, "NetworkPolicy")
    assert _one(docs, "Deployment")["spec"]["replicas"] == 3
    env = _env(docs)
    assert env["VAULT_ADDR"] == "https://vault:8200"
    assert env["OPENAI_OPERATOR_VAULT_KUBERNETES_ROLE"] == "op"
    delegator = [b for b in _of(docs, "ClusterRoleBinding") if b["roleRef"]["name"] == "system:auth-delegator"]
    assert [b["metadata"]["name"] for b in delegator] == ["rel-openai-operator-auth-delegator"]

    docs = offline_helm.render("--set", "fingerprintKey.existingSecret=mine,fingerprintKey.key=hmac")
    assert not _of(docs, "Secret"), "an existing fingerprint key Secret is used, none is created"
    volume = {v["name"]: v for v in _one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}["fingerprint-key"]
    assert volume["secret"]["secretName"] == "mine"
    assert volume["secret"]["items"] == [{"key": "hmac", "path": "fingerprint-key"}]

    docs = offline_helm.render("--set", "metrics.enabled=false,vault.address=http://vault:8200")
    assert not _of(docs, "Service")
    assert _env(docs)["OPENAI_OPERATOR_METRICS_PORT"] == "0"
    policy = _one(docs, "NetworkPolicy")["spec"]
    assert [rule["ports"][0]["port"] for rule in policy["ingress"]] == [8081]
    assert [[p["port"] for p in rule["ports"]] for rule in policy["egress"]] == [[53, 53], [443, 6443], [443], [8200]]

    docs = offline_helm.render("--set", "replicas=1,peering.priorityMode=fixed,peering.priority=7,peering.name=ops")
    env = _env(docs)
    assert env["OPENAI_OPERATOR_PRIORITY"] == "7"
    assert env["OPENAI_OPERATOR_PEERING_NAME"] == "ops"
    assert "command" not in _container(docs), "a fixed priority runs the image's entrypoint as is"
    assert _one(docs, "ClusterKopfPeering")["metadata"]["name"] == "ops"
    assert not _of(docs, "PodDisruptionBudget"), "one replica: nothing to keep available"


def test_metrics_are_protected_by_default_and_can_sit_behind_an_auth_proxy(offline_helm: Helm) -> None:
    default = offline_helm.render()
    ingress = _one(default, "NetworkPolicy")["spec"]["ingress"]
    metrics_rule = next(rule for rule in ingress if rule["ports"][0]["port"] == 8080)
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "openai.operator.dev/metrics-scraper": "true"}}}], "not open to every pod by default"

    docs = offline_helm.render("--set", "metrics.authProxy.enabled=true")
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    proxy = next(c for c in pod["containers"] if c["name"] == "kube-rbac-proxy")
    assert "--upstream=http://127.0.0.1:8080/" in proxy["args"]
    assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
    operator = next(c for c in pod["containers"] if c["name"] == "operator")
    assert operator["securityContext"]["readOnlyRootFilesystem"] is True, "the operator keeps its own settings"
    assert {m["name"] for m in operator["volumeMounts"]} == {"tmp", "fingerprint-key"}
    assert "volumeMounts" not in proxy
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["OPENAI_OPERATOR_METRICS_ADDRESS"] == "127.0.0.1", "the plain port is not reachable"
    assert _one(docs, "Service")["spec"]["ports"][0]["targetPort"] == "https-metrics"
    policy_ports = [rule["ports"][0]["port"] for rule in _one(docs, "NetworkPolicy")["spec"]["ingress"]]
    assert 8443 in policy_ports
    assert 8080 not in policy_ports
    roles = {d["metadata"]["name"]: d for d in _of(docs, "ClusterRole")}
    assert ("authentication.k8s.io", "tokenreviews", "create", "") in _rules(roles["rel-openai-operator"])
    assert roles["rel-openai-operator-metrics-reader"]["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


def test_dashboard_configmap_for_the_grafana_sidecar(offline_helm: Helm) -> None:
    assert not _of(offline_helm.render(), "ConfigMap")
    docs = offline_helm.render("--set", "dashboard.enabled=true,dashboard.namespace=monitoring")
    config_map = _one(docs, "ConfigMap")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    rendered = json.loads(config_map["data"]["openai-operator.json"])
    assert rendered == json.loads((CHART / "dashboards" / "openai-operator.json").read_text())


def test_restart_target_permissions_are_opt_in_and_can_be_limited_to_namespaces(offline_helm: Helm) -> None:
    """Patch on workloads is a cluster takeover if the operator is compromised: off by default,
    cluster-wide only when asked, or a Role in each chosen namespace."""
    def operator_role(docs: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
        return _rules(next(d for d in _of(docs, "ClusterRole") if d["metadata"]["name"] == "rel-openai-operator"))

    default = offline_helm.render()
    assert not operator_role(default) & RESTART_RULES
    assert not _of(default, "Role")
    wide = offline_helm.render("--set", "rbac.restartTargets.enabled=true")
    assert operator_role(wide) & RESTART_RULES == RESTART_RULES
    narrow = offline_helm.render(
        "--set", "rbac.restartTargets.enabled=true,rbac.restartTargets.namespaces={team-a,team-b}")
    assert not operator_role(narrow) & RESTART_RULES
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in _of(narrow, "Role")}
    assert set(roles) == {("team-a", "rel-openai-operator-restart-targets"),
                          ("team-b", "rel-openai-operator-restart-targets")}
    assert all(_rules(role) == RESTART_RULES for role in roles.values())
    bindings = list(_of(narrow, "RoleBinding"))
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "rel-openai-operator", "namespace": "ops"}]
               for b in bindings)


def test_shards_render_one_deployment_each_with_its_namespaces_peering_and_lease_rights(offline_helm: Helm) -> None:
    """Two shards: two Deployments (own selector, peering object, PDB), one managing projects, and a
    Role for the Leases; the default (no shards) keeps the one Deployment it always had."""
    docs = offline_helm.render(
        "--set", "replicas=2,shards[0].name=a,shards[0].namespaces={team-a-*},shards[0].manageProjects=true,"
                 "shards[1].name=b,shards[1].namespaces={team-b-*,other}")
    deployments = {d["metadata"]["name"]: d for d in _of(docs, "Deployment")}
    assert set(deployments) == {"rel-openai-operator-a", "rel-openai-operator-b"}
    for shard, namespaces, manages in (("a", ["team-a-*"], "true"), ("b", ["team-b-*", "other"], "false")):
        deployment = deployments[f"rel-openai-operator-{shard}"]
        assert deployment["spec"]["selector"]["matchLabels"]["openai.operator.dev/shard"] == shard
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [f"--namespace={n}" for n in namespaces]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["OPENAI_OPERATOR_SHARD"] == shard
        assert env["OPENAI_OPERATOR_MANAGE_PROJECTS"] == manages
        assert env["OPENAI_OPERATOR_PEERING_NAME"] == f"rel-openai-operator-{shard}"
        assert {"POD_NAME", "POD_NAMESPACE"} <= set(env)
    assert {d["metadata"]["name"] for d in _of(docs, "ClusterKopfPeering")} == {"rel-openai-operator-a",
                                                                               "rel-openai-operator-b"}
    assert {d["metadata"]["name"] for d in _of(docs, "PodDisruptionBudget")} == {"rel-openai-operator-a",
                                                                                "rel-openai-operator-b"}
    role = next(d for d in _of(docs, "Role") if d["metadata"]["name"] == "rel-openai-operator-shards")
    assert role["metadata"]["namespace"] == "ops"
    assert _rules(role) == {("coordination.k8s.io", "leases", verb, "")
                            for verb in ("get", "list", "create", "update", "delete")}
    default = offline_helm.render()
    assert [d["metadata"]["name"] for d in _of(default, "Deployment")] == ["rel-openai-operator"]
    assert "openai.operator.dev/shard" not in _of(default, "Deployment")[0]["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("adminKey.value=sk-admin-literal", "additional properties 'value' not allowed"),
        ("adminKey.existingSecret=", "/adminKey/existingSecret"),
        ("fingerprintKey.value=literal", "additional properties 'value' not allowed"),
        ("fingerprintKey.existingSecret=Not_A_Name", "/fingerprintKey/existingSecret"),
        ("peering.priorityMode=fixed", "pauses all of them"),
        ("settings.keyResyncInterval=5 minutes", "/settings/keyResyncInterval"),
        ("settings.logFormat=text", "/settings/logFormat"),
        ("serviceMonitor.enabled=true,metrics.enabled=false", "serviceMonitor.enabled needs metrics.enabled"),
        ("shards[0].name=a,shards[0].namespaces={x}", "exactly one shard must have manageProjects: true (0 have)"),
        ("shards[0].name=a,shards[0].namespaces={x},shards[0].manageProjects=true,"
         "shards[1].name=a,shards[1].namespaces={y}", 'the name "a" is used twice'),
        ("shards[0].name=A,shards[0].namespaces={x},shards[0].manageProjects=true", "/shards/0/name"),
    ],
)
def test_refuses_unsound_values(offline_helm: Helm, values: str, message: str) -> None:
    result = offline_helm("template", "rel", str(CHART), "--set", values, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_random_priority_command_runs_the_operator_with_distinct_priorities(offline_helm: Helm, tmp_path: Path) -> None:
    """The Deployment's command, run with this interpreter: it reaches ``run`` with a fresh priority.

    ``run_operator`` is replaced by a print, so nothing connects anywhere; everything before it (the
    command's code, the CLI parsing, the env variables from the Deployment) is the real thing.
    """
    container = _container(offline_helm.render())
    program, flag, code = container["command"]
    assert (program, flag) == ("python3", "-c")
    probe = (
        "import openai_operator.handlers.lifecycle as lifecycle\n"
        "lifecycle.run_operator = lambda config, options: print(options.priority, options.peering_name)\n"
        f"exec(compile({code!r}, '<command>', 'exec'))\n"
    )
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    key_file = tmp_path / "fingerprint-key"  # stands in for the mounted Secret
    key_file.write_text(secrets.token_urlsafe(48))
    env |= {"OPENAI_ADMIN_KEY": "admin-key-for-the-probe", "PATH": str(Path(sys.executable).parent),
            "OPENAI_OPERATOR_FINGERPRINT_KEY_FILE": str(key_file)}
    runs = [
        subprocess.run([sys.executable, "-c", probe, "--log-format", "console"],
                       env=env, capture_output=True, text=True, timeout=60, check=True).stdout.split()
        for _ in range(2)
    ]
    priorities = [int(priority) for priority, _ in runs]
    assert all(1 <= p <= 10**9 for p in priorities)
    assert priorities[0] != priorities[1]
    assert {name for _, name in runs} == {"rel-openai-operator"}


# --- against the apiserver ----------------------------------------------------------------------


def test_default_rendering_passes_server_side_dry_run(
    helm: Helm, kubectl: Kubectl, crds: list[str], namespace: str
) -> None:
    rendered = helm("template", f"oo-{secrets.token_hex(3)}", str(CHART), "--namespace", namespace,
                    "--include-crds").stdout
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered)
    applied = result.stdout.splitlines()
    assert len(applied) == len([doc for doc in yaml.safe_load_all(rendered) if doc])
    assert all("(server dry run)" in line for line in applied)


@pytest.fixture(scope="module")
def installed(helm: Helm, kubectl: Kubectl, crds: list[str]) -> Iterator[Release]:
    """One release in a fresh namespace that enforces the `restricted` Pod Security Standard."""
    release = Release(f"oo-{secrets.token_hex(3)}", f"t-chart-{secrets.token_hex(3)}")
    kubectl("create", "namespace", release.namespace)
    kubectl("label", "namespace", release.namespace, "pod-security.kubernetes.io/enforce=restricted")
    try:
        helm("install", release.name, str(CHART), "--namespace", release.namespace)
        yield release
    finally:
        helm("uninstall", release.name, "--namespace", release.namespace, check=False)
        kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)


def _get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return found


def test_install_creates_the_release_objects(installed: Release, kubectl: Kubectl) -> None:
    ns = ("-n", installed.namespace)
    deployment = _get(kubectl, "deployment", installed.fullname, *ns)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == installed.fullname
    _get(kubectl, "serviceaccount", installed.fullname, *ns)
    _get(kubectl, "service", f"{installed.fullname}-metrics", *ns)
    _get(kubectl, "networkpolicy", installed.fullname, *ns)
    binding = _get(kubectl, "clusterrolebinding", installed.fullname)
    assert binding["roleRef"]["name"] == installed.fullname
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": installed.fullname, "namespace": installed.namespace}
    ]
    assert _get(kubectl, "clusterkopfpeering", installed.fullname)["metadata"]["labels"][
        "app.kubernetes.io/instance"] == installed.name
    for crd in CRD_NAMES:
        conditions = {c["type"]: c["status"] for c in _get(kubectl, "crd", crd)["status"]["conditions"]}
        assert conditions["Established"] == "True", crd


def test_fingerprint_key_is_random_and_survives_an_upgrade(installed: Release, helm: Helm, kubectl: Kubectl) -> None:
    """The chart's Secret holds a random 64-character key; ``helm upgrade`` finds it (lookup) and keeps it."""
    name = f"{installed.fullname}-fingerprint-key"

    def value() -> str:
        data: str = _get(kubectl, "secret", name, "-n", installed.namespace)["data"]["fingerprint-key"]
        return base64.b64decode(data).decode()

    before = value()
    assert len(before) == 64
    assert before.isalnum()
    helm("upgrade", installed.name, str(CHART), "--namespace", installed.namespace, "--set", "replicas=2")
    assert value() == before


def test_pods_pass_restricted_pod_security(installed: Release, kubectl: Kubectl) -> None:
    """The ReplicaSet can create both pods in a namespace that enforces `restricted` (they never run here)."""

    def pods() -> list[str]:
        refused = kubectl("get", "events", "-n", installed.namespace, "--field-selector", "reason=FailedCreate",
                          "-o", "jsonpath={.items[*].message}").stdout
        if refused.strip():
            pytest.fail(f"the ReplicaSet could not create pods: {refused}")
        out = kubectl("get", "pods", "-n", installed.namespace, "-l", f"app.kubernetes.io/instance={installed.name}",
                      "-o", "name").stdout
        return out.split() if len(out.split()) == 2 else []

    wait_for(pods, timeout=30, what="the Deployment's two pods", interval=0.5)


def test_cluster_role_is_exactly_the_derived_rules(installed: Release, kubectl: Kubectl) -> None:
    role = _get(kubectl, "clusterrole", installed.fullname)
    assert _rules(role) == OPERATOR_RULES | {(*rule, installed.fullname) for rule in PEERING_RULES}


def test_service_account_can_do_what_the_operator_needs_and_no_more(installed: Release, kubectl: Kubectl) -> None:
    tenant = f"tenant-{secrets.token_hex(3)}"  # authorization needs no namespace to exist
    peering = f"clusterkopfpeerings.kopf.dev/{installed.fullname}"
    checks = [
        (("create", "secrets", "-n", tenant), True),
        (("get", "secrets", "-n", tenant), True),
        (("update", "secrets", "-n", tenant), True),
        (("delete", "secrets", "-n", tenant), True),
        (("list", "secrets", "-n", tenant), False),
        (("list", "secrets", "--all-namespaces"), False),
        (("watch", "secrets", "--all-namespaces"), False),
        (("patch", "openaikeys.openai.operator.dev", "--subresource=status", "-n", tenant), True),
        (("patch", "openaiprojects.openai.operator.dev", "--subresource=status"), True),
        (("watch", "openaikeys.openai.operator.dev", "--all-namespaces"), True),
        (("update", "openaikeys.openai.operator.dev", "-n", tenant), False),
        (("delete", "openaikeys.openai.operator.dev", "-n", tenant), False),
        (("create", "openaiprojects.openai.operator.dev"), False),
        (("patch", "deployments.apps", "-n", tenant), False),
        (("patch", "statefulsets.apps", "-n", tenant), False),
        (("patch", "daemonsets.apps", "-n", tenant), False),
        (("delete", "deployments.apps", "-n", tenant), False),
        (("create", "events", "-n", tenant), True),
        (("create", "configmaps", "-n", tenant), True),
        (("patch", "configmaps", "-n", tenant), True),
        (("list", "configmaps", "--all-namespaces"), False),
        (("delete", "configmaps", "-n", tenant), False),
        (("get", "/openid/v1/jwks"), True),
        (("get", "/.well-known/openid-configuration"), True),
        (("patch", "openaiworkloadidentities.openai.operator.dev", "--subresource=status", "-n", tenant), True),
        (("patch", "openaiidentityproviders.openai.operator.dev", "--subresource=status"), True),
        (("create", "openaiidentityproviders.openai.operator.dev"), False),
        (("get", f"namespaces/{tenant}"), True),
        (("list", "namespaces"), True),  # the namespace-label watch (keyPolicy selectors)
        (("watch", "namespaces"), True),
        (("delete", "namespaces"), False),
        (("get", "pods", "-n", tenant), False),
        (("patch", peering), True),
        (("patch", "clusterkopfpeerings.kopf.dev/someone-else"), False),
        (("list", "clusterkopfpeerings.kopf.dev"), True),
        (("watch", "customresourcedefinitions.apiextensions.k8s.io"), True),
        (("create", "customresourcedefinitions.apiextensions.k8s.io"), False),
        (("create", "clusterroles.rbac.authorization.k8s.io"), False),
        (("create", "clusterrolebindings.rbac.authorization.k8s.io"), False),
        (("create", "serviceaccounts/token", "-n", installed.namespace), False),
    ]
    wrong = []
    for args, expected in checks:
        result = kubectl("auth", "can-i", *args, f"--as={installed.service_account}", check=False)
        answer = result.stdout.strip()
        if answer not in ("yes", "no"):
            pytest.fail(f"kubectl auth can-i {' '.join(args)}: {result.stdout}{result.stderr}")
        if (answer == "yes") != expected:
            wrong.append(f"can-i {' '.join(args)}: {answer}, expected {'yes' if expected else 'no'}")
    assert not wrong, "\n".join(wrong)


def test_tenants_with_edit_manage_keys_but_never_their_status(installed: Release, kubectl: Kubectl) -> None:
    """The aggregated tenant roles: edit in a namespace grants OpenAIKeys there, not openaikeys/status."""
    tenant = f"tenant-{secrets.token_hex(3)}"
    kubectl("create", "namespace", tenant)
    try:
        kubectl("create", "rolebinding", "dev-edit", "--clusterrole=edit", "--user=dev", "-n", tenant)
        kubectl("create", "rolebinding", "auditor-view", "--clusterrole=view", "--user=auditor", "-n", tenant)

        def can(user: str, *args: str) -> bool:
            return kubectl("auth", "can-i", *args, "-n", tenant, f"--as={user}", check=False).stdout.strip() == "yes"
        wait_for(lambda: can("dev", "create", "openaikeys.openai.operator.dev"), timeout=30,
                 what="the aggregated editor role to reach edit")
        assert can("dev", "delete", "openaikeys.openai.operator.dev")
        assert not can("dev", "patch", "openaikeys.openai.operator.dev", "--subresource=status")
        assert not can("dev", "update", "openaikeys.openai.operator.dev", "--subresource=status")
        wait_for(lambda: can("auditor", "list", "openaikeys.openai.operator.dev"), timeout=30,
                 what="the aggregated viewer role to reach view")
        assert not can("auditor", "create", "openaikeys.openai.operator.dev")
        # Workload identities the same way: tenants manage them, never their status (its ids).
        assert can("dev", "create", "openaiworkloadidentities.openai.operator.dev")
        assert not can("dev", "patch", "openaiworkloadidentities.openai.operator.dev", "--subresource=status")
        assert can("auditor", "list", "openaiworkloadidentities.openai.operator.dev")
        assert not can("dev", "create", "openaiidentityproviders.openai.operator.dev")
    finally:
        kubectl("delete", "namespace", tenant, "--wait=false", check=False)


def test_uninstall_removes_the_release_objects(
    helm: Helm, kubectl: Kubectl, crds: list[str], namespace: str
) -> None:
    release = Release(f"oo-{secrets.token_hex(3)}", namespace)
    # A second release in the cluster: the tenant roles are cluster-wide and the first one made them.
    helm("install", release.name, str(CHART), "--namespace", namespace, "--set", "rbac.tenantRoles.create=false")
    cluster_objects = [
        f"clusterrole/{release.fullname}", f"clusterrolebinding/{release.fullname}",
        f"clusterkopfpeering/{release.fullname}",
    ]
    namespaced = [
        f"deployment/{release.fullname}", f"serviceaccount/{release.fullname}",
        f"service/{release.fullname}-metrics", f"networkpolicy/{release.fullname}",
    ]
    assert len(kubectl("get", *cluster_objects, "-o", "name").stdout.split()) == 3
    assert len(kubectl("get", *namespaced, "-n", namespace, "-o", "name").stdout.split()) == 4

    helm("uninstall", release.name, "--namespace", namespace)
    left = kubectl("get", *cluster_objects, "--ignore-not-found", "-o", "name").stdout
    left += kubectl("get", *namespaced, "-n", namespace, "--ignore-not-found", "-o", "name").stdout
    assert not left.strip(), f"left behind: {left}"
    kept = f"secret/{release.fullname}-fingerprint-key"  # helm.sh/resource-policy: keep, on purpose
    assert kubectl("get", kept, "-n", namespace, "-o", "name").stdout.strip() == kept
    kubectl("delete", kept, "-n", namespace)
    assert helm("list", "--namespace", namespace, "--short").stdout.strip() == ""
    for crd in CRD_NAMES:  # CRDs are never removed with a release (Helm's rule, and other tests use them)
        _get(kubectl, "crd", crd)
