"""VaultClientCache decisions with a fake Vault and a fake clock: one login, renew before the TTL
ends, re-login when renewal cannot help, re-login after a 403 only when the token is no longer
valid, revoke what it obtained (never a static token). The real thing: tests/integration/test_vault_store.py."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hvac.exceptions
import pytest

import openai_operator.stores.vault as vault_module
from openai_operator.errors import PermanentError
from openai_operator.model.specs import VaultDestination
from openai_operator.stores.vault import VaultClientCache, VaultPermissionDenied, VaultStore

pytestmark = pytest.mark.unit


class FakeVault:
    """Tokens by value: their TTL and whether they are renewable, valid or revoked."""

    def __init__(self) -> None:
        self.ttl, self.renewable, self.renew_ttl = 60.0, True, 60.0
        self.renew_fails = False
        self.valid: set[str] = set()
        self.revoked: list[str] = []
        self.logins = 0
        self.lock = threading.Lock()


class FakeClient:
    """Enough of hvac.Client: ``auth.kubernetes.login`` and ``auth.token.*`` (see the fixture)."""

    vault: FakeVault

    def __init__(self, url: str, token: str | None = None, **_: Any) -> None:
        self.url, self.token = url, token
        self.secrets = SimpleNamespace(kv=SimpleNamespace(v2=self))

    def login(self, role: str, jwt: str, mount_point: str) -> dict[str, Any]:
        with self.vault.lock:
            self.vault.logins += 1
            token = f"t{self.vault.logins}"
            self.vault.valid.add(token)
        self.token = token
        return {"auth": {"client_token": token, "lease_duration": self.vault.ttl, "renewable": self.vault.renewable}}


class TokenAPI:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def _check(self) -> None:
        if self.client.token not in self.client.vault.valid and self.client.token != "static":
            raise hvac.exceptions.Forbidden("permission denied")

    def renew_self(self) -> dict[str, Any]:
        self._check()
        if self.client.vault.renew_fails:
            raise hvac.exceptions.InternalServerError("boom")
        return {"auth": {"lease_duration": self.client.vault.renew_ttl}}

    def revoke_self(self) -> None:
        self._check()
        self.client.vault.valid.discard(str(self.client.token))
        self.client.vault.revoked.append(str(self.client.token))

    def lookup_self(self) -> dict[str, Any]:
        self._check()
        return {"data": {}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeVault:
    state = FakeVault()

    class Client(FakeClient):
        vault = state

        def __init__(self, url: str, token: str | None = None, **kw: Any) -> None:
            super().__init__(url, token, **kw)
            self.auth = _Auth(self)

    class _Auth:
        def __init__(self, client: FakeClient) -> None:
            self.kubernetes = client
            self.token = TokenAPI(client)

    monkeypatch.setattr(vault_module.hvac, "Client", Client)
    return state


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(fake: FakeVault, clock: Clock, tmp_path: Path) -> VaultClientCache:
    jwt = tmp_path / "jwt"
    jwt.write_text("eyJfake.jwt.token\n")
    return VaultClientCache("http://vault", kubernetes_role="op", service_account_token_path=jwt, clock=clock)


def test_logs_in_once_and_reuses_the_client(cache: VaultClientCache, fake: FakeVault) -> None:
    clients = {id(cache()) for _ in range(50)}
    assert len(clients) == 1
    assert (cache.logins, fake.logins) == (1, 1)


def test_concurrent_callers_share_one_login(cache: VaultClientCache, fake: FakeVault) -> None:
    threads = [threading.Thread(target=cache) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.logins == 1


def test_renews_after_two_thirds_of_the_ttl(cache: VaultClientCache, fake: FakeVault, clock: Clock) -> None:
    first = cache()
    clock.now += 39
    assert cache() is first
    assert cache.renewals == 0
    clock.now += 2  # 41 s of 60: past 2/3
    assert cache() is first
    assert (cache.renewals, fake.logins) == (1, 1)
    clock.now += 41  # the renewal granted 60 s again from its own time
    cache()
    assert (cache.renewals, fake.logins) == (2, 1)


@pytest.mark.parametrize(
    "arrange",
    [
        pytest.param(lambda f: setattr(f, "renew_fails", True), id="renewal fails"),
        pytest.param(lambda f: setattr(f, "renewable", False), id="token is not renewable"),
        pytest.param(lambda f: setattr(f, "renew_ttl", 10.0), id="renewal grants little: near the max TTL"),
    ],
)
def test_logs_in_again_and_revokes_the_old_token(
    cache: VaultClientCache, fake: FakeVault, clock: Clock, arrange: Any
) -> None:
    arrange(fake)
    first = cache()
    clock.now += 45
    second = cache()
    assert second is not first
    assert fake.logins == 2
    assert fake.revoked == ["t1"]
    assert fake.valid == {"t2"}


def test_an_expired_token_is_replaced_without_a_revoke(cache: VaultClientCache, fake: FakeVault, clock: Clock) -> None:
    cache()
    clock.now += 61
    cache()
    assert fake.logins == 2
    assert fake.revoked == []


def test_close_revokes_the_login_token_and_ends_the_cache(cache: VaultClientCache, fake: FakeVault) -> None:
    cache()
    cache.close()
    assert fake.revoked == ["t1"]
    with pytest.raises(PermanentError, match="closed"):
        cache()


def test_close_before_any_use_does_nothing(cache: VaultClientCache, fake: FakeVault) -> None:
    cache.close()
    assert (fake.logins, fake.revoked) == (0, [])


def test_a_static_token_is_never_logged_in_renewed_or_revoked(fake: FakeVault, clock: Clock) -> None:
    cache = VaultClientCache("http://vault", token="static", clock=clock)
    client = cache()
    clock.now += 10**6
    assert cache() is client
    assert not cache.forbidden(client)
    cache.close()
    assert (fake.logins, fake.revoked, cache.renewals) == (0, [], 0)


def test_no_token_and_no_role_is_permanent_on_use(fake: FakeVault) -> None:
    cache = VaultClientCache("http://vault")
    with pytest.raises(PermanentError, match="without a token or a Kubernetes auth role"):
        cache()


def test_forbidden_with_a_valid_token_is_the_policy_and_final(cache: VaultClientCache, fake: FakeVault) -> None:
    client = cache()
    assert not cache.forbidden(client)
    assert cache() is client
    assert fake.logins == 1


def test_forbidden_with_a_revoked_token_logs_in_again(cache: VaultClientCache, fake: FakeVault) -> None:
    client = cache()
    fake.valid.clear()  # revoked from outside
    assert cache.forbidden(client)
    assert cache() is not client
    assert fake.logins == 2
    assert cache.forbidden(client), "a stale client's 403: another caller already replaced it, retry"
    assert fake.logins == 2


def test_store_retries_a_403_once_when_the_factory_says_so(cache: VaultClientCache, fake: FakeVault) -> None:
    """VaultStore._run asks the factory after a 403 and retries once with the new client."""
    store = VaultStore(cache, VaultDestination(mount="secret", path="openai/a/b", field="api_key"), b"k" * 32)
    seen: list[Any] = []

    def operation(kv: Any) -> str:
        seen.append(kv)
        if len(seen) == 1:
            fake.valid.clear()
            raise VaultPermissionDenied("read metadata of secret/openai/a/b: permission denied (HTTP 403)")
        return "done"

    assert store._run(operation) == "done"
    assert len(seen) == 2
    assert fake.logins == 2

    def always_refused(kv: Any) -> str:
        raise VaultPermissionDenied("permission denied (HTTP 403)")

    with pytest.raises(VaultPermissionDenied):
        store._run(always_refused)
    assert fake.logins == 2, "a 403 with a valid token is the policy: no new login"
