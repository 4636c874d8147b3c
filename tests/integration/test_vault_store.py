"""VaultStore, build_vault_client and VaultClientCache against a real OpenBao dev server (KV v2 at ``secret/``).

Each test writes under its own random path, so tests share the session's server without interfering.
The Kubernetes-auth test also uses the real apiserver: OpenBao reviews the ServiceAccount token
through the apiserver's TokenReview API.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hvac
import hvac.exceptions
import pytest
import yaml

from openai_operator.errors import (
    ConflictError,
    DestinationConflictError,
    PermanentError,
    TransientError,
)
from openai_operator.model.specs import VaultDestination
from openai_operator.secretvalue import SecretValue, fingerprint
from openai_operator.stores import KeyMaterial, Owner, VaultStore, build_vault_client
from openai_operator.stores.vault import VaultClientCache

if TYPE_CHECKING:
    from testbed import KubeCluster, Kubectl, VaultServer

FP_KEY = b"test-fingerprint-key"
MOUNT = "secret"


def _owner(name: str = "chatbot") -> Owner:
    return Owner("team-a", name, str(uuid.uuid4()))


def _material(revision: int = 1, base_url: str | None = None) -> KeyMaterial:
    key = SecretValue("sk-proj-" + secrets.token_urlsafe(48))
    return KeyMaterial(key, "proj_test", base_url, f"key_{secrets.token_hex(4)}", revision)


@pytest.fixture
def raw(vault: VaultServer) -> hvac.Client:
    """A plain client for arranging and checking, as a person or another tool would."""
    return hvac.Client(url=vault.address, token=vault.token)


@pytest.fixture
def path() -> str:
    return f"openai/t-{secrets.token_hex(4)}/chatbot"


@pytest.fixture
def factory(vault: VaultServer) -> Callable[[], hvac.Client]:
    return lambda: build_vault_client(vault.address, token=vault.token)


def _store(factory: Callable[[], hvac.Client], path: str, field: str = "api_key") -> VaultStore:
    return VaultStore(factory, VaultDestination(mount=MOUNT, path=path, field=field), FP_KEY)


def _metadata(raw: hvac.Client, path: str) -> dict[str, Any]:
    data: dict[str, Any] = raw.secrets.kv.v2.read_secret_metadata(path, mount_point=MOUNT)["data"]
    return data


def _data(raw: hvac.Client, path: str) -> dict[str, Any]:
    response = raw.secrets.kv.v2.read_secret_version(path, mount_point=MOUNT, raise_on_deleted_version=True)
    data: dict[str, Any] = response["data"]["data"]
    return data


def _absent(raw: hvac.Client, path: str) -> bool:
    try:
        raw.secrets.kv.v2.read_secret_metadata(path, mount_point=MOUNT)
    except hvac.exceptions.InvalidPath:
        return True
    return False


async def test_create_writes_data_and_ownership_metadata(
    raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """A new path gets the key, project id and base URL, version 1, and our custom metadata."""
    owner = _owner()
    material = _material(revision=1, base_url="http://127.0.0.1:9/v1")

    result = await _store(factory, path, field="key").write(owner, material)

    assert (result.location, result.version, result.changed) == (f"secret/{path}", 1, True)
    assert result.fingerprint == fingerprint(material.api_key, FP_KEY)
    assert _data(raw, path) == {
        "key": material.api_key.reveal(),
        "project_id": "proj_test",
        "base_url": "http://127.0.0.1:9/v1",
    }
    metadata = _metadata(raw, path)
    assert metadata["current_version"] == 1
    assert metadata["custom_metadata"] == {
        "managed-by": "openai-operator",
        "owner": "team-a/chatbot",
        "owner-uid": owner.uid,
        "key-id": material.key_id,
        "revision": "1",
    }


async def test_same_material_makes_no_write(raw: hvac.Client, factory: Callable[[], hvac.Client], path: str) -> None:
    """Writing what the path already holds adds no version."""
    owner, material = _owner(), _material()
    store = _store(factory, path)
    await store.write(owner, material)

    result = await store.write(owner, material)

    assert (result.version, result.changed) == (1, False)
    assert _metadata(raw, path)["current_version"] == 1


async def test_new_material_adds_a_version_and_keeps_others_metadata(
    raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """A new key is written with check-and-set as version 2; custom metadata others added is kept."""
    owner = _owner()
    store = _store(factory, path)
    await store.write(owner, _material(revision=1))
    custom = {**_metadata(raw, path)["custom_metadata"], "team": "a"}
    raw.secrets.kv.v2.update_metadata(path, custom_metadata=custom, mount_point=MOUNT)
    new = _material(revision=2)

    result = await store.write(owner, new)

    assert (result.version, result.changed) == (2, True)
    assert _data(raw, path) == {"api_key": new.api_key.reveal(), "project_id": "proj_test"}
    metadata = _metadata(raw, path)["custom_metadata"]
    assert (metadata["key-id"], metadata["revision"], metadata["team"]) == (new.key_id, "2", "a")


async def test_foreign_path_is_refused_and_untouched(
    raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """A path written by someone else (no managed-by mark) is never written, observed as ours, or deleted."""
    raw.secrets.kv.v2.create_or_update_secret(path, secret={"api_key": "theirs"}, mount_point=MOUNT)
    store, owner = _store(factory, path), _owner()

    with pytest.raises(DestinationConflictError, match=f"secret/{path}: exists and is not managed") as e:
        await store.write(owner, _material())
    assert e.value.destination == f"secret/{path}"
    with pytest.raises(DestinationConflictError):
        await store.observe(owner)
    await store.delete(owner)

    assert _data(raw, path) == {"api_key": "theirs"}
    metadata = _metadata(raw, path)
    assert (metadata["current_version"], metadata["custom_metadata"]) == (1, None)


async def test_path_of_another_owner_is_refused(
    raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """A path owned by another OpenAIKey uid is refused, and that owner's data survives our delete."""
    first, second = _owner("first"), _owner("second")
    store = _store(factory, path)
    material = _material()
    await store.write(first, material)

    with pytest.raises(DestinationConflictError, match=f"owned by another OpenAIKey \\(team-a/first, uid {first.uid}"):
        await store.write(second, _material())
    await store.delete(second)

    assert _data(raw, path)["api_key"] == material.api_key.reveal()
    assert _metadata(raw, path)["current_version"] == 1


def _racing(
    vault: VaultServer, path: str, concurrent_write: Callable[[hvac.Client], None]
) -> Callable[[], hvac.Client]:
    """A client factory whose client lets another writer in right after its first metadata read."""

    def factory() -> hvac.Client:
        client = build_vault_client(vault.address, token=vault.token)
        kv = client.secrets.kv.v2
        original = kv.read_secret_metadata

        raced = False

        def read_then_race(*args: Any, **kwargs: Any) -> Any:
            nonlocal raced
            try:
                return original(*args, **kwargs)
            finally:
                if not raced:
                    raced = True
                    concurrent_write(hvac.Client(url=vault.address, token=vault.token))

        kv.read_secret_metadata = read_then_race
        return client

    return factory


async def test_concurrent_update_loses_check_and_set(
    vault: VaultServer, raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """Another writer between our read and our write makes the write a ConflictError, not an overwrite."""
    owner = _owner()
    await _store(factory, path).write(owner, _material(revision=1))

    def someone_writes(client: hvac.Client) -> None:
        client.secrets.kv.v2.create_or_update_secret(path, secret={"api_key": "racer"}, mount_point=MOUNT)

    with pytest.raises(ConflictError, match="changed concurrently"):
        await _store(_racing(vault, path, someone_writes), path).write(owner, _material(revision=2))

    assert _data(raw, path) == {"api_key": "racer"}
    assert _metadata(raw, path)["custom_metadata"]["revision"] == "1"


async def test_concurrent_create_loses_and_withdraws_its_claim(
    vault: VaultServer, raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """If someone creates the path while we do, our cas=0 write fails and our ownership mark is
    taken off again, so the path is theirs and the next write is refused rather than clobbering."""

    def someone_creates(client: hvac.Client) -> None:
        client.secrets.kv.v2.create_or_update_secret(path, secret={"api_key": "theirs"}, mount_point=MOUNT)

    owner = _owner()
    with pytest.raises(ConflictError):
        await _store(_racing(vault, path, someone_creates), path).write(owner, _material())

    assert _data(raw, path) == {"api_key": "theirs"}
    assert not _metadata(raw, path)["custom_metadata"]
    with pytest.raises(DestinationConflictError):
        await _store(factory, path).write(owner, _material())


async def test_delete_is_idempotent_and_removes_all_versions(
    raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """Delete removes metadata and every version; absent is success."""
    owner, store = _owner(), _store(factory, path)
    await store.delete(owner)  # never existed
    await store.write(owner, _material(revision=1))
    await store.write(owner, _material(revision=2))

    await store.delete(owner)
    await store.delete(owner)

    assert _absent(raw, path)


async def test_observe_reports_fingerprint_drift_and_absence(
    raw: hvac.Client, factory: Callable[[], hvac.Client], path: str
) -> None:
    """observe: None when absent; the written fingerprint and version; a different fingerprint after a
    hand edit; no fingerprint once the current version is deleted."""
    owner, store = _owner(), _store(factory, path)
    assert await store.observe(owner) is None
    written = await store.write(owner, _material())

    seen = await store.observe(owner)
    assert seen is not None
    assert (seen.fingerprint, seen.version) == (written.fingerprint, 1)

    raw.secrets.kv.v2.create_or_update_secret(
        path, secret={"api_key": "sk-proj-hand-edited", "project_id": "proj_test"}, mount_point=MOUNT
    )
    seen = await store.observe(owner)
    assert seen is not None
    assert (seen.fingerprint, seen.version) == (fingerprint("sk-proj-hand-edited", FP_KEY), 2)

    raw.secrets.kv.v2.delete_latest_version_of_secret(path, mount_point=MOUNT)
    seen = await store.observe(owner)
    assert seen is not None
    assert (seen.fingerprint, seen.version) == (None, 2)


async def test_bad_token_is_permanent(vault: VaultServer, path: str) -> None:
    """A token Vault does not accept is a PermanentError that says what lacked permission."""
    store = _store(lambda: build_vault_client(vault.address, token="s.not-a-real-token-000000000000"), path)
    with pytest.raises(PermanentError, match=f"read metadata of secret/{path}: permission denied"):
        await store.write(_owner(), _material())


async def test_unreachable_vault_is_transient(path: str) -> None:
    store = _store(lambda: build_vault_client("http://127.0.0.1:9", token="t", timeout=2), path)
    with pytest.raises(TransientError, match="Vault unreachable"):
        await store.observe(_owner())


def test_no_token_and_no_role_is_permanent() -> None:
    with pytest.raises(PermanentError, match="without a token or a Kubernetes auth role"):
        build_vault_client("http://127.0.0.1:9")


# --- Kubernetes auth ----------------------------------------------------------------------------


@pytest.fixture
def kubernetes_auth(
    kube: KubeCluster, kubectl: Kubectl, namespace: str, raw: hvac.Client
) -> Iterator[tuple[str, str, str]]:
    """OpenBao's Kubernetes auth method pointed at the test apiserver.

    A reviewer ServiceAccount bound to ``system:auth-delegator`` lets OpenBao call TokenReview; a
    role admits ServiceAccount ``app`` of ``namespace`` with a policy on ``secret/openai/<namespace>/*``.
    Yields (auth mount, role, policy prefix).
    """
    mount, role, prefix = f"k8s-{namespace}", "openai-operator", f"openai/{namespace}/"
    binding = f"{namespace}-token-reviewer"
    kubectl("-n", namespace, "create", "serviceaccount", "reviewer")
    kubectl("-n", namespace, "create", "serviceaccount", "app")
    kubectl("create", "clusterrolebinding", binding, "--clusterrole=system:auth-delegator",
            f"--serviceaccount={namespace}:reviewer")
    reviewer_jwt = kubectl("-n", namespace, "create", "token", "reviewer", "--duration=1h").stdout.strip()
    cluster = yaml.safe_load(kube.kubeconfig.read_text())["clusters"][0]["cluster"]

    raw.sys.enable_auth_method("kubernetes", path=mount)
    try:
        raw.auth.kubernetes.configure(
            kubernetes_host=cluster["server"],
            kubernetes_ca_cert=base64.b64decode(cluster["certificate-authority-data"]).decode(),
            token_reviewer_jwt=reviewer_jwt,
            disable_local_ca_jwt=True,
            mount_point=mount,
        )
        raw.sys.create_or_update_policy(
            role,
            policy=(
                f'path "secret/data/{prefix}*" {{ capabilities = ["create", "read", "update"] }}\n'
                f'path "secret/metadata/{prefix}*" {{ capabilities = ["create", "read", "update", "delete"] }}\n'
            ),
        )
        raw.auth.kubernetes.create_role(
            role, bound_service_account_names=["app"], bound_service_account_namespaces=[namespace],
            policies=[role], ttl="10m", mount_point=mount,
        )
        yield mount, role, prefix
    finally:
        raw.sys.disable_auth_method(path=mount)
        kubectl("delete", "clusterrolebinding", binding, check=False)


def _token_file(kubectl: Kubectl, namespace: str, account: str, tmp_path: Path) -> Path:
    token = kubectl("-n", namespace, "create", "token", account, "--duration=10m").stdout.strip()
    target = tmp_path / f"{account}.jwt"
    target.write_text(token)
    return target


async def test_kubernetes_auth_login_gives_a_working_client(
    vault: VaultServer, kubectl: Kubectl, namespace: str, kubernetes_auth: tuple[str, str, str], tmp_path: Path,
    raw: hvac.Client,
) -> None:
    """A ServiceAccount token logs in through the Kubernetes auth method; the client writes within its
    policy and is refused (permanently) outside it."""
    mount, role, prefix = kubernetes_auth
    token_path = _token_file(kubectl, namespace, "app", tmp_path)

    def factory() -> hvac.Client:
        return build_vault_client(
            vault.address, kubernetes_role=role, kubernetes_mount=mount, service_account_token_path=token_path
        )

    client = factory()
    assert client.is_authenticated()
    owner, material = _owner(), _material()
    result = await _store(factory, f"{prefix}chatbot").write(owner, material)
    assert (result.version, result.changed) == (1, True)
    assert _data(raw, f"{prefix}chatbot")["api_key"] == material.api_key.reveal()

    with pytest.raises(PermanentError, match="permission denied"):
        await _store(factory, "openai/someone-else/chatbot").write(owner, material)


async def test_kubernetes_auth_refuses_an_unbound_service_account(
    vault: VaultServer, kubectl: Kubectl, namespace: str, kubernetes_auth: tuple[str, str, str], tmp_path: Path
) -> None:
    """A ServiceAccount the role is not bound to cannot log in: a PermanentError naming the role."""
    mount, role, _ = kubernetes_auth
    kubectl("-n", namespace, "create", "serviceaccount", "intruder")
    token_path = _token_file(kubectl, namespace, "intruder", tmp_path)

    with pytest.raises(PermanentError, match=f"Kubernetes auth role '{role}'"):
        build_vault_client(vault.address, kubernetes_role=role, kubernetes_mount=mount,
                           service_account_token_path=token_path)


# --- the client cache: one login, renewed, replaced after a revocation, revoked on close -----------


def _login_tokens(raw: hvac.Client, mount: str) -> list[dict[str, Any]]:
    """Every live token OpenBao minted through ``auth/<mount>/login`` (from the accessor list)."""
    found = []
    for accessor in raw.auth.token.list_accessors()["data"]["keys"]:
        try:
            data: dict[str, Any] = raw.auth.token.lookup_accessor(accessor)["data"]
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
            continue  # revoked or expired between the list and the lookup
        if data.get("path") == f"auth/{mount}/login":
            found.append(data)
    return found


def _cache(vault: VaultServer, mount: str, role: str, token_path: Path) -> VaultClientCache:
    return VaultClientCache(vault.address, kubernetes_role=role, kubernetes_mount=mount,
                            service_account_token_path=token_path)


async def test_client_cache_logs_in_once_and_close_revokes_its_token(
    vault: VaultServer, kubectl: Kubectl, namespace: str, kubernetes_auth: tuple[str, str, str], tmp_path: Path,
    raw: hvac.Client,
) -> None:
    """Sixty store operations, twenty of them at once, make exactly one login token; close revokes it.

    With ``build_vault_client`` as the factory every operation logged in and left a token behind."""
    mount, role, prefix = kubernetes_auth
    cache = _cache(vault, mount, role, _token_file(kubectl, namespace, "app", tmp_path))
    stores = [_store(cache, f"{prefix}app-{i}") for i in range(10)]
    owner = _owner()
    try:
        await asyncio.gather(*(store.write(owner, _material()) for store in stores))
        for store in stores:
            await store.write(owner, _material(revision=2))
            assert await store.observe(owner) is not None
            await store.delete(owner)
        await asyncio.gather(*(store.observe(owner) for store in stores))

        assert cache.logins == 1
        tokens = _login_tokens(raw, mount)
        assert len(tokens) == 1, tokens
        assert tokens[0]["meta"]["service_account_name"] == "app"
    finally:
        await cache.aclose()

    assert _login_tokens(raw, mount) == []


async def test_client_cache_renews_its_token_before_the_ttl_ends(
    vault: VaultServer, kubectl: Kubectl, namespace: str, kubernetes_auth: tuple[str, str, str], tmp_path: Path,
    raw: hvac.Client,
) -> None:
    """With a 3 s token TTL, operations over 5 s renew the one token instead of logging in again."""
    mount, role, prefix = kubernetes_auth
    raw.auth.kubernetes.create_role(
        "short", bound_service_account_names=["app"], bound_service_account_namespaces=[namespace],
        policies=[role], ttl="3s", max_ttl="1h", mount_point=mount,
    )
    cache = _cache(vault, mount, "short", _token_file(kubectl, namespace, "app", tmp_path))
    store, owner = _store(cache, f"{prefix}renewed"), _owner()
    try:
        await store.write(owner, _material())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert await store.observe(owner) is not None
            await asyncio.sleep(0.5)
        assert (cache.logins, cache.renewals >= 2) == (1, True), (cache.logins, cache.renewals)
        assert len(_login_tokens(raw, mount)) == 1
    finally:
        await cache.aclose()
    assert _login_tokens(raw, mount) == []


async def test_client_cache_logs_in_again_after_its_token_was_revoked(
    vault: VaultServer, kubectl: Kubectl, namespace: str, kubernetes_auth: tuple[str, str, str], tmp_path: Path,
    raw: hvac.Client,
) -> None:
    """A token revoked from outside makes the next operation's 403 a new login and a retry that
    succeeds; a 403 from the policy (a path outside it) stays a PermanentError without a new login."""
    mount, role, prefix = kubernetes_auth
    cache = _cache(vault, mount, role, _token_file(kubectl, namespace, "app", tmp_path))
    store, owner = _store(cache, f"{prefix}revoked"), _owner()
    try:
        await store.write(owner, _material())
        (token,) = _login_tokens(raw, mount)
        raw.auth.token.revoke_accessor(token["accessor"])

        assert await store.observe(owner) is not None
        assert cache.logins == 2
        assert len(_login_tokens(raw, mount)) == 1

        with pytest.raises(PermanentError, match="permission denied"):
            await _store(cache, "openai/someone-else/chatbot").write(owner, _material())
        assert cache.logins == 2
    finally:
        await cache.aclose()
    assert _login_tokens(raw, mount) == []


async def test_client_cache_with_a_static_token_never_revokes_it(vault: VaultServer, raw: hvac.Client) -> None:
    """The token the operator was given belongs to whoever gave it: close leaves it valid."""
    given = raw.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    cache = VaultClientCache(vault.address, token=given)
    assert cache() is cache()
    await cache.aclose()
    assert raw.auth.token.lookup(given)["data"]["ttl"] > 0
    assert cache.logins == 0
