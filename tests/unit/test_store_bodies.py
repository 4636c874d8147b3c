"""The pure parts of the stores: Secret bodies, updates that keep others' metadata, Vault data and
metadata, ownership checks, error classification, and the store factory."""

from __future__ import annotations

import base64

import httpx
import pytest

from openai_operator.errors import ConflictError, NotFoundError, PermanentError, TransientError
from openai_operator.k8s.api import KubeApi, KubeConnection, KubeStatusError, resource_path
from openai_operator.model.specs import SecretDestination, VaultDestination, parse_key_spec
from openai_operator.secretvalue import SecretValue
from openai_operator.stores import (
    KeyMaterial,
    KubernetesSecretStore,
    Owner,
    StoreContext,
    VaultStore,
    store_at,
    stores_for,
)
from openai_operator.stores import kubernetes as k8s_store
from openai_operator.stores import vault as vault_store

KEY = "sk-proj-" + "A1b2C3d4" * 6
OWNER = Owner("team-a", "chatbot", "0b1c2d3e-0000-4000-8000-000000000001")
MATERIAL = KeyMaterial(SecretValue(KEY), "proj_abc", None, "key_123", 3)
FP_KEY = b"fingerprint-key"


def _decode(data: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _no_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no apiserver call expected, got {request.method} {request.url.path}")


def _offline_kube(transport: httpx.AsyncBaseTransport | None = None) -> KubeApi:
    """A real client that cannot reach any server: every request goes to ``transport`` (by default,
    one that fails the test)."""
    return KubeApi(lambda: KubeConnection("https://unused.invalid"),
                   transport=transport or httpx.MockTransport(_no_request))


class TestSecretBody:
    def test_holds_key_project_labels_annotations_and_owner_reference(self) -> None:
        """A new Secret is Opaque, owned by the OpenAIKey and labelled with its uid; no base URL key."""
        dest = SecretDestination(name="openai", labels={"team": "a"}, annotations={"note": "x"})
        body = k8s_store.secret_body("team-a", dest, OWNER, MATERIAL)
        assert body["type"] == "Opaque"
        assert _decode(body["data"]) == {"OPENAI_API_KEY": KEY, "OPENAI_PROJECT_ID": "proj_abc"}
        assert body["metadata"] == {
            "name": "openai",
            "namespace": "team-a",
            "labels": {
                "team": "a",
                "app.kubernetes.io/managed-by": "openai-operator",
                "openai.operator.dev/key": "chatbot",
                "openai.operator.dev/owner-uid": OWNER.uid,
            },
            "annotations": {
                "note": "x",
                "openai.operator.dev/key-id": "key_123",
                "openai.operator.dev/revision": "3",
                "reloader.stakater.com/match": "true",
            },
            "ownerReferences": [
                {
                    "apiVersion": "openai.operator.dev/v1alpha1",
                    "kind": "OpenAIKey",
                    "name": "chatbot",
                    "uid": OWNER.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }

    def test_custom_data_keys_and_base_url(self) -> None:
        """Data keys come from spec.secret.keys; the base URL is written only when set."""
        dest = SecretDestination.model_validate(
            {"name": "s", "keys": {"apiKey": "KEY", "projectId": "PROJECT", "baseURL": "URL"}}
        )
        material = KeyMaterial(SecretValue(KEY), "proj_abc", "http://127.0.0.1:9/v1", "key_1", 1)
        data = _decode(k8s_store.secret_data(dest, material))
        assert data == {"KEY": KEY, "PROJECT": "proj_abc", "URL": "http://127.0.0.1:9/v1"}

    def test_metadata_never_carries_the_key(self) -> None:
        """Nothing in labels or annotations is derived from the value."""
        body = k8s_store.secret_body("ns", SecretDestination(name="s"), OWNER, MATERIAL)
        assert KEY not in repr(body["metadata"])
        assert base64.b64encode(KEY.encode()).decode() not in repr(body["metadata"])

    @pytest.mark.parametrize(
        ("name", "kept"),
        [("short", True), ("a.b-c", True), ("x" * 63, True), ("x" * 64, False), ("a." * 100 + "b", False)],
        ids=["short stays", "dots stay", "63 fits", "64 is shortened", "253-char subdomain is shortened"],
    )
    def test_label_value_fits(self, name: str, kept: bool) -> None:
        """Names that are valid label values are kept; longer ones are cut to 63 with a digest."""
        value = k8s_store.label_value(name)
        assert (value == name) is kept
        assert len(value) <= 63
        assert k8s_store._LABEL_VALUE.fullmatch(value)

    def test_long_label_values_stay_distinct(self) -> None:
        assert k8s_store.label_value("x" * 70 + "a") != k8s_store.label_value("x" * 70 + "b")


class TestSecretUpdate:
    def _existing(self) -> dict[str, object]:
        body = k8s_store.secret_body("ns", SecretDestination(name="s"), OWNER, MATERIAL)
        meta = dict(body["metadata"])
        meta.update(
            resourceVersion="42",
            uid="secret-uid",
            finalizers=["example.com/keep"],
            labels={**meta["labels"], "other": "kept", "openai.operator.dev/stale": "dropped"},
            annotations={**meta["annotations"], "reloader": "kept"},
            ownerReferences=[
                *meta["ownerReferences"],
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "cm-uid"},
            ],
        )
        return {**body, "metadata": meta}

    def test_keeps_others_metadata_and_resource_version(self) -> None:
        """An update keeps foreign labels, annotations, finalizers and non-controller owners, and the
        resourceVersion that makes it a compare-and-swap; stale reserved keys go."""
        existing = self._existing()
        new = KeyMaterial(SecretValue(KEY[::-1]), "proj_abc", "http://x/v1", "key_456", 4)
        desired = k8s_store.secret_body("ns", SecretDestination(name="s"), OWNER, new)
        updated = k8s_store.updated_body(existing, desired, OWNER)
        meta = updated["metadata"]
        assert meta["resourceVersion"] == "42"
        assert meta["finalizers"] == ["example.com/keep"]
        assert meta["labels"]["other"] == "kept"
        assert "openai.operator.dev/stale" not in meta["labels"]
        assert meta["annotations"]["reloader"] == "kept"
        assert meta["annotations"]["openai.operator.dev/key-id"] == "key_456"
        assert [r["uid"] for r in meta["ownerReferences"]] == [OWNER.uid, "cm-uid"]
        assert _decode(updated["data"]) == {
            "OPENAI_API_KEY": KEY[::-1],
            "OPENAI_PROJECT_ID": "proj_abc",
            "OPENAI_BASE_URL": "http://x/v1",
        }

    def test_same_material_is_no_change(self) -> None:
        existing = self._existing()
        existing["metadata"]["labels"].pop("openai.operator.dev/stale")  # type: ignore[index]
        desired = k8s_store.secret_body("ns", SecretDestination(name="s"), OWNER, MATERIAL)
        assert k8s_store._same(existing, k8s_store.updated_body(existing, desired, OWNER))

    def test_new_key_id_is_a_change(self) -> None:
        existing = self._existing()
        desired = k8s_store.secret_body(
            "ns", SecretDestination(name="s"), OWNER, KeyMaterial(SecretValue(KEY), "proj_abc", None, "key_9", 3)
        )
        assert not k8s_store._same(existing, k8s_store.updated_body(existing, desired, OWNER))

    @pytest.mark.parametrize(
        ("labels", "owned"),
        [
            (None, False),
            ({}, False),
            ({"app.kubernetes.io/managed-by": "openai-operator"}, False),
            ({"openai.operator.dev/owner-uid": "someone-else"}, False),
            ({"openai.operator.dev/owner-uid": OWNER.uid}, True),
        ],
        ids=["no labels", "empty labels", "managed-by without uid", "another uid", "our uid"],
    )
    def test_ownership_is_the_uid_label(self, labels: dict[str, str] | None, owned: bool) -> None:
        assert k8s_store.is_owned_by(labels, OWNER) is owned


class TestApiExceptionClassification:
    @pytest.mark.parametrize(
        ("status", "kind"),
        [
            (404, NotFoundError),
            (409, ConflictError),
            (429, TransientError),
            (500, TransientError),
            (503, TransientError),
            (401, PermanentError),
            (403, PermanentError),
            (422, PermanentError),
        ],
    )
    def test_status_to_error(self, status: int, kind: type[Exception]) -> None:
        error = k8s_store.classify_api_exception(
            KubeStatusError(status, "R"), "get", "Secret n/s", resource="secrets", namespace="n"
        )
        assert type(error) is kind

    async def test_body_is_never_copied(self) -> None:
        """An error body can echo Secret data; only status and reason survive (into the
        KubeStatusError, and from it into the project's error)."""
        echo = {"kind": "Status", "status": "Failure", "reason": "Unprocessable Entity", "code": 422,
                "message": 'Secret "s" is invalid: data: {"OPENAI_API_KEY": "c2stcHJvai1zZWNyZXQ="}',
                "details": {"causes": [{"message": "c2stcHJvai1zZWNyZXQ="}]}}
        kube = _offline_kube(httpx.MockTransport(lambda _request: httpx.Response(422, json=echo)))
        try:
            with pytest.raises(KubeStatusError) as raised:
                await kube.replace(resource_path("", "v1", "secrets", namespace="n", name="s"),
                                   {"data": {"OPENAI_API_KEY": "c2stcHJvai1zZWNyZXQ="}})
        finally:
            await kube.aclose()
        exc = raised.value
        assert "c2st" not in repr(exc.args) + str(exc) + repr(vars(exc))
        error = k8s_store.classify_api_exception(exc, "update", "Secret n/s", resource="secrets", namespace="n")
        assert "c2st" not in str(error)
        assert str(error) == "update Secret n/s: HTTP 422 Unprocessable Entity"

    def test_forbidden_names_the_missing_permission(self) -> None:
        exc = KubeStatusError(403, "Forbidden")
        error = k8s_store.classify_api_exception(exc, "create", "Secret n/s", resource="secrets", namespace="n")
        assert "permission to create secrets in namespace n" in str(error)

    def test_retry_after_is_kept(self) -> None:
        exc = KubeStatusError(429, "Too Many Requests", retry_after="7")
        error = k8s_store.classify_api_exception(exc, "get", "Secret n/s", resource="secrets", namespace="n")
        assert isinstance(error, TransientError)
        assert error.retry_after == 7.0


class TestVaultBodies:
    def test_data_and_custom_metadata(self) -> None:
        dest = VaultDestination(path="openai/team-a/chatbot", field="key")
        assert vault_store.vault_data(dest, MATERIAL) == {"key": KEY, "project_id": "proj_abc"}
        with_url = KeyMaterial(SecretValue(KEY), "proj_abc", "http://x/v1", "key_123", 3)
        assert vault_store.vault_data(dest, with_url)["base_url"] == "http://x/v1"
        assert vault_store.custom_metadata(OWNER, MATERIAL) == {
            "managed-by": "openai-operator",
            "owner": "team-a/chatbot",
            "owner-uid": OWNER.uid,
            "key-id": "key_123",
            "revision": "3",
        }

    @pytest.mark.parametrize(
        ("metadata", "owned"),
        [
            (None, False),
            ({"owner-uid": OWNER.uid}, False),
            ({"managed-by": "openai-operator", "owner-uid": "other"}, False),
            ({"managed-by": "openai-operator", "owner-uid": OWNER.uid}, True),
        ],
        ids=["no metadata", "uid without managed-by", "another uid", "ours"],
    )
    def test_ownership(self, metadata: dict[str, str] | None, owned: bool) -> None:
        assert vault_store.is_owned_by(metadata, OWNER) is owned

    def test_same_data_needs_every_field_equal(self) -> None:
        desired = {"api_key": KEY, "project_id": "p"}
        assert vault_store._same_data({"api_key": KEY, "project_id": "p"}, desired)
        assert not vault_store._same_data({"api_key": KEY, "project_id": "p", "x": "y"}, desired)
        assert not vault_store._same_data({"api_key": KEY + "x", "project_id": "p"}, desired)
        assert not vault_store._same_data(None, desired)


class TestFactory:
    core = _offline_kube()

    def test_one_store_per_destination(self) -> None:
        def factory() -> object:
            raise AssertionError("stores_for must not build a client")

        spec = parse_key_spec(
            {"projectRef": {"name": "p"}, "secret": {}, "vault": {"path": "openai/ns/x"}}, name="chatbot"
        )
        stores = stores_for(spec, StoreContext(self.core, factory, FP_KEY, "ns"))  # type: ignore[arg-type]
        assert list(stores) == ["secret", "vault"]
        assert isinstance(stores["secret"], KubernetesSecretStore)
        assert stores["secret"].name == "chatbot"
        assert isinstance(stores["vault"], VaultStore)
        assert stores["vault"].location == "secret/openai/ns/x"

    def test_a_recorded_location_gives_back_the_same_store(self) -> None:
        """Deletion works from what status recorded, even when the spec no longer parses."""
        ctx = StoreContext(self.core, lambda: None, FP_KEY, "ns")  # type: ignore[arg-type,return-value]
        secret = store_at("secret", "chatbot", ctx)
        vault = store_at("vault", "secret/openai/ns/x", ctx)
        assert isinstance(secret, KubernetesSecretStore)
        assert secret.name == "chatbot"
        assert isinstance(vault, VaultStore)
        assert vault.location == "secret/openai/ns/x"

    def test_vault_without_client_is_permanent(self) -> None:
        spec = parse_key_spec({"projectRef": {"name": "p"}, "vault": {"path": "openai/ns/x"}}, name="k")
        with pytest.raises(PermanentError, match="Vault is not configured for this operator"):
            stores_for(spec, StoreContext(self.core, None, FP_KEY, "ns"))
