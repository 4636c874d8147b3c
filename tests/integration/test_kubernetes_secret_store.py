"""KubernetesSecretStore against the real apiserver (and kube-controller-manager for garbage collection).

Every owner is a real OpenAIKey object: the Secret carries an ownerReference to it, and the garbage
collector would delete a Secret whose owner uid does not exist.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from kube_rest import KubeRest, connection, secret_path
from openai_operator.errors import ConflictError, DestinationConflictError, PermanentError, TransientError
from openai_operator.k8s.api import KubeApi, KubeConnection
from openai_operator.model.specs import SecretDestination
from openai_operator.secretvalue import SecretValue, fingerprint
from openai_operator.stores import KeyMaterial, KubernetesSecretStore, Owner
from support import wait_for

if TYPE_CHECKING:
    from testbed import KubeCluster, Kubectl

FP_KEY = b"test-fingerprint-key"


def _key() -> SecretValue:
    return SecretValue("sk-proj-" + secrets.token_urlsafe(48))


def _material(revision: int = 1, base_url: str | None = None) -> KeyMaterial:
    return KeyMaterial(_key(), "proj_test", base_url, f"key_{secrets.token_hex(4)}", revision)


def _kube_api(kube: KubeCluster, token: str | None = None) -> KubeApi:
    """The operator's client on the test bed's apiserver (the kubeconfig's token, or ``token``).

    Its connection pool belongs to the running event loop: build it in the test that uses it.
    """
    found = connection(kube.kubeconfig)
    if token is not None:
        found = replace(found, headers={"Authorization": f"Bearer {token}"})
    return KubeApi(lambda: found)


@pytest.fixture(scope="module")
def rest(kube: KubeCluster) -> Iterator[KubeRest]:
    """The test's own reads of Secrets (never through the store under test)."""
    with KubeRest(kube.kubeconfig) as client:
        yield client


@pytest.fixture
async def api(kube: KubeCluster) -> AsyncIterator[KubeApi]:
    """The store's client, one per test (its connections are bound to the test's event loop)."""
    client = _kube_api(kube)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def make_owner(kubectl: Kubectl, crds: list[str], namespace: str) -> Callable[[str], Owner]:
    """Create an OpenAIKey (nothing reconciles it here) and return it as an Owner."""

    def make(name: str) -> Owner:
        manifest = {
            "apiVersion": "openai.operator.dev/v1alpha1",
            "kind": "OpenAIKey",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"projectRef": {"name": "p"}, "secret": {}},
        }
        uid = kubectl("create", "-f", "-", "-o", "jsonpath={.metadata.uid}", input=json.dumps(manifest)).stdout
        return Owner(namespace, name, uid.strip())

    return make


@pytest.fixture
def owner(make_owner: Callable[[str], Owner]) -> Owner:
    return make_owner("chatbot")


def _store(api: KubeApi, namespace: str, name: str = "openai", **dest: Any) -> KubernetesSecretStore:
    return KubernetesSecretStore(api, namespace, SecretDestination(name=name, **dest), FP_KEY)


def _read(rest: KubeRest, namespace: str, name: str = "openai") -> dict[str, Any]:
    return rest.get(secret_path(namespace, name))


def _meta(secret: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] | None = secret.get("metadata")
    assert meta is not None
    return meta


def _data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _absent(rest: KubeRest, namespace: str, name: str) -> bool:
    return rest.read(secret_path(namespace, name)) is None


async def test_create_writes_keys_labels_and_owner_reference(
    api: KubeApi, rest: KubeRest, namespace: str, owner: Owner
) -> None:
    """A new Secret holds the key and project id, our labels and annotations, and the ownerReference."""
    store = _store(api, namespace, labels={"team": "a"}, annotations={"note": "hi"})
    material = _material(revision=1)

    result = await store.write(owner, material)

    assert result.location == "openai"
    assert result.fingerprint == fingerprint(material.api_key, FP_KEY)
    assert result.version is None
    assert result.changed is True
    secret = _read(rest, namespace)
    assert secret["type"] == "Opaque"
    assert _data(secret) == {"OPENAI_API_KEY": material.api_key.reveal(), "OPENAI_PROJECT_ID": "proj_test"}
    assert _meta(secret)["labels"] == {
        "team": "a",
        "app.kubernetes.io/managed-by": "openai-operator",
        "openai.operator.dev/key": "chatbot",
        "openai.operator.dev/owner-uid": owner.uid,
    }
    assert _meta(secret)["annotations"] == {
        "note": "hi",
        "openai.operator.dev/key-id": material.key_id,
        "openai.operator.dev/revision": "1",
        "reloader.stakater.com/match": "true",
    }
    [ref] = _meta(secret)["ownerReferences"]
    assert (ref["apiVersion"], ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "openai.operator.dev/v1alpha1", "OpenAIKey", "chatbot", owner.uid, True, True,
    )


async def test_same_material_makes_no_write(api: KubeApi, rest: KubeRest, namespace: str, owner: Owner) -> None:
    """Writing what the Secret already holds changes nothing, not even its resourceVersion."""
    store = _store(api, namespace)
    material = _material()
    await store.write(owner, material)
    before = _meta(_read(rest, namespace))["resourceVersion"]

    result = await store.write(owner, material)

    assert result.changed is False
    assert result.fingerprint == fingerprint(material.api_key, FP_KEY)
    assert _meta(_read(rest, namespace))["resourceVersion"] == before


async def test_new_material_updates_and_keeps_others_metadata(
    api: KubeApi, rest: KubeRest, kubectl: Kubectl, namespace: str, owner: Owner
) -> None:
    """A new key replaces the data and our annotations; labels and annotations others added stay."""
    store = _store(api, namespace)
    await store.write(owner, _material(revision=1))
    kubectl("-n", namespace, "label", "secret", "openai", "reloader=enabled")
    kubectl("-n", namespace, "annotate", "secret", "openai", "example.com/seen=yes")
    new = _material(revision=2, base_url="http://127.0.0.1:9/v1")

    result = await store.write(owner, new)

    assert result.changed is True
    secret = _read(rest, namespace)
    assert _data(secret) == {
        "OPENAI_API_KEY": new.api_key.reveal(),
        "OPENAI_PROJECT_ID": "proj_test",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    }
    assert _meta(secret)["annotations"]["openai.operator.dev/key-id"] == new.key_id
    assert _meta(secret)["annotations"]["openai.operator.dev/revision"] == "2"
    assert _meta(secret)["annotations"]["example.com/seen"] == "yes"
    assert _meta(secret)["labels"]["reloader"] == "enabled"
    assert len(_meta(secret)["ownerReferences"]) == 1


async def test_foreign_secret_is_refused_and_untouched(
    api: KubeApi, rest: KubeRest, kubectl: Kubectl, namespace: str, owner: Owner
) -> None:
    """A same-named Secret without our labels is never written, observed as ours, or deleted."""
    kubectl("-n", namespace, "create", "secret", "generic", "openai", "--from-literal=OPENAI_API_KEY=theirs")
    before = _read(rest, namespace)
    store = _store(api, namespace)

    with pytest.raises(DestinationConflictError, match=f"Secret {namespace}/openai: exists and is not managed") as e:
        await store.write(owner, _material())
    assert e.value.destination == f"Secret {namespace}/openai"
    with pytest.raises(DestinationConflictError):
        await store.observe(owner)
    await store.delete(owner)

    after = _read(rest, namespace)
    assert _meta(after)["resourceVersion"] == _meta(before)["resourceVersion"]
    assert _data(after) == {"OPENAI_API_KEY": "theirs"}


async def test_a_secret_created_between_observe_and_write_is_still_checked(
    api: KubeApi, rest: KubeRest, kubectl: Kubectl, namespace: str, owner: Owner
) -> None:
    """After an observation of "absent" the write creates without reading again; a foreign Secret that
    appeared in between makes the create fail with 409, and the write still refuses it, untouched."""
    store = _store(api, namespace)
    assert await store.observe(owner) is None
    kubectl("-n", namespace, "create", "secret", "generic", "openai", "--from-literal=OPENAI_API_KEY=theirs")
    before = _read(rest, namespace)

    with pytest.raises(DestinationConflictError, match="exists and is not managed"):
        await store.write(owner, _material())

    after = _read(rest, namespace)
    assert _meta(after)["resourceVersion"] == _meta(before)["resourceVersion"]
    assert _data(after) == {"OPENAI_API_KEY": "theirs"}


async def test_a_write_after_observing_absence_creates_the_secret(
    api: KubeApi, namespace: str, owner: Owner
) -> None:
    store = _store(api, namespace)
    assert await store.observe(owner) is None
    material = _material()
    result = await store.write(owner, material)
    assert result.changed
    observed = await store.observe(owner)
    assert observed is not None
    assert observed.fingerprint == fingerprint(material.api_key, FP_KEY)


async def test_secret_of_another_owner_is_refused(
    api: KubeApi, rest: KubeRest, namespace: str, make_owner: Callable[[str], Owner]
) -> None:
    """Two OpenAIKeys naming the same Secret: the second is refused and cannot delete the first's."""
    first, second = make_owner("first"), make_owner("second")
    store = _store(api, namespace)
    material = _material()
    await store.write(first, material)
    before = _meta(_read(rest, namespace))["resourceVersion"]

    with pytest.raises(DestinationConflictError, match=f"owned by another OpenAIKey \\(first, uid {first.uid}\\)"):
        await store.write(second, _material())
    await store.delete(second)

    assert _meta(_read(rest, namespace))["resourceVersion"] == before
    assert (await store.observe(first)) is not None


async def test_delete_is_idempotent_and_only_removes_ours(
    api: KubeApi, rest: KubeRest, kubectl: Kubectl, namespace: str, owner: Owner
) -> None:
    """Delete removes our Secret, succeeds when it is already gone, and leaves other Secrets alone."""
    kubectl("-n", namespace, "create", "secret", "generic", "bystander", "--from-literal=x=y")
    store = _store(api, namespace)
    await store.delete(owner)  # never existed
    await store.write(owner, _material())

    await store.delete(owner)
    await store.delete(owner)

    assert _absent(rest, namespace, "openai")
    assert _data(_read(rest, namespace, "bystander")) == {"x": "y"}


async def test_observe_reports_fingerprint_drift_and_absence(
    api: KubeApi, kubectl: Kubectl, namespace: str, owner: Owner
) -> None:
    """observe: None when absent, the written fingerprint, a different one after a hand edit,
    and None for the fingerprint when the key field is removed."""
    store = _store(api, namespace)
    assert await store.observe(owner) is None
    material = _material()
    written = await store.write(owner, material)

    seen = await store.observe(owner)
    assert seen is not None
    assert (seen.fingerprint, seen.version) == (written.fingerprint, None)

    edited = base64.b64encode(b"sk-proj-hand-edited-value-000000").decode()
    kubectl("-n", namespace, "patch", "secret", "openai", "--type=merge", "-p",
            json.dumps({"data": {"OPENAI_API_KEY": edited}}))
    seen = await store.observe(owner)
    assert seen is not None
    assert seen.fingerprint is not None
    assert seen.fingerprint != written.fingerprint
    assert seen.fingerprint == fingerprint("sk-proj-hand-edited-value-000000", FP_KEY)

    kubectl("-n", namespace, "patch", "secret", "openai", "--type=json", "-p",
            json.dumps([{"op": "remove", "path": "/data/OPENAI_API_KEY"}]))
    seen = await store.observe(owner)
    assert seen is not None
    assert seen.fingerprint is None

    # A write repairs the drift.
    assert (await store.write(owner, material)).changed is True
    repaired = await store.observe(owner)
    assert repaired is not None
    assert repaired.fingerprint == written.fingerprint


async def test_concurrent_edit_makes_the_update_fail(
    api: KubeApi, rest: KubeRest, kubectl: Kubectl, namespace: str, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update carries the resourceVersion it read: an edit in between makes it a ConflictError."""
    store = _store(api, namespace)
    await store.write(owner, _material(revision=1))
    original = api.get

    async def read_then_someone_edits(path: str, **kwargs: Any) -> dict[str, Any]:
        secret = await original(path, **kwargs)
        kubectl("-n", namespace, "annotate", "secret", "openai", "example.com/edited=yes")
        return secret

    monkeypatch.setattr(api, "get", read_then_someone_edits)

    with pytest.raises(ConflictError, match="changed concurrently"):
        await store.write(owner, _material(revision=2))
    monkeypatch.undo()
    assert _meta(_read(rest, namespace))["annotations"]["openai.operator.dev/revision"] == "1"


async def test_owner_deletion_garbage_collects_the_secret(
    api: KubeApi, rest: KubeRest, kubectl: Kubectl, namespace: str, owner: Owner
) -> None:
    """Deleting the OpenAIKey removes its Secret through Kubernetes garbage collection.

    Slow when the CRDs were installed moments ago: the garbage collector picks up new resource types
    on its discovery resync (30 s), hence the generous deadline.
    """
    store = _store(api, namespace)
    await store.write(owner, _material())
    kubectl("-n", namespace, "delete", "openaikey", owner.name, "--wait=true")

    wait_for(lambda: _absent(rest, namespace, "openai"), timeout=120, what="the garbage collector to delete the Secret")


async def test_missing_permission_is_permanent_and_says_which(
    kube: KubeCluster, kubectl: Kubectl, namespace: str, owner: Owner
) -> None:
    """A ServiceAccount without RBAC on secrets gets a PermanentError naming the verb and namespace."""
    kubectl("-n", namespace, "create", "serviceaccount", "nobody")
    token = kubectl("-n", namespace, "create", "token", "nobody", "--duration=10m").stdout.strip()
    limited = _kube_api(kube, token=token)
    try:
        store = _store(limited, namespace)
        with pytest.raises(PermanentError, match=f"lacks permission to get secrets in namespace {namespace}") as e:
            await store.write(owner, _material())
    finally:
        await limited.aclose()
    assert "HTTP 403" in str(e.value)


async def test_unreachable_apiserver_is_transient(owner: Owner) -> None:
    """Connection failures are transient."""
    unreachable = KubeApi(lambda: KubeConnection("https://127.0.0.1:9"))
    try:
        store = _store(unreachable, owner.namespace)
        with pytest.raises(TransientError, match="the apiserver is unreachable"):
            await store.observe(owner)
    finally:
        await unreachable.aclose()
