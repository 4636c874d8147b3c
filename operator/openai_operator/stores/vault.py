"""Deliver a key to a Vault (OpenBao) KV v2 path, and build the Vault client.

The entry at ``<mount>/<path>`` holds ``{<field>: <key>, "project_id": ..., "base_url": ...}``
(``base_url`` only when set). Ownership lives in the path's ``custom_metadata``::

    managed-by: openai-operator   owner: <namespace>/<name>   owner-uid: <uid>
    key-id: <OpenAI key id>       revision: <N>

A path that exists without ``managed-by: openai-operator`` and this owner's ``owner-uid`` is someone
else's: it is never written or deleted (:class:`~openai_operator.errors.DestinationConflictError`).
Writes use check-and-set (``cas`` = the version read, ``0`` for a new path), so a concurrent writer
makes ours fail with :class:`~openai_operator.errors.ConflictError` instead of being overwritten, and
a write whose data equals what is stored is skipped.

A new path is claimed before it is written: the ownership metadata goes first, then the data with
``cas=0``. A crash between the two leaves a path marked as ours with no data (the next write fills
it) rather than our data at a path that looks foreign (which would need a human to clear). If the
``cas=0`` write loses to another writer, the claim is withdrawn again.

Policy the operator's Vault role needs, for a prefix ``openai/``::

    path "secret/data/openai/*"     { capabilities = ["create", "read", "update"] }
    path "secret/metadata/openai/*" { capabilities = ["create", "read", "update", "delete"] }

hvac is synchronous: each operation runs in one worker thread (``asyncio.to_thread``), including
getting the client, which may log in. Vault's error text is never copied into our errors.

The operator gets its clients from one :class:`VaultClientCache` (the Vault Secrets Operator
pattern): it logs in once, reuses the client, renews the token (``renew-self``) before its TTL ends,
logs in again when renewal fails, the token is not renewable or it nears its maximum TTL, and revokes
the tokens it obtained when it replaces them and on close. A store operation refused with 403 is
retried once with a fresh login (the token may have been revoked from outside, or Vault restarted).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import hvac
import hvac.exceptions
import requests
import structlog

from openai_operator.errors import (
    ConflictError,
    DestinationConflictError,
    NotFoundError,
    OperatorError,
    PermanentError,
    TransientError,
)
from openai_operator.model.specs import VaultDestination
from openai_operator.secretvalue import fingerprint
from openai_operator.stores.base import MANAGED_BY, KeyMaterial, Observed, Owner, WriteResult

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH",
    "META_KEY_ID",
    "META_MANAGED_BY",
    "META_OWNER",
    "META_OWNER_UID",
    "META_REVISION",
    "VaultClientCache",
    "VaultPermissionDenied",
    "VaultStore",
    "build_vault_client",
    "custom_metadata",
    "is_owned_by",
    "vault_data",
]

log = structlog.get_logger(__name__)

DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: Final = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105

META_MANAGED_BY: Final = "managed-by"
META_OWNER: Final = "owner"
META_OWNER_UID: Final = "owner-uid"
META_KEY_ID: Final = "key-id"
META_REVISION: Final = "revision"
_OURS: Final = (META_MANAGED_BY, META_OWNER, META_OWNER_UID, META_KEY_ID, META_REVISION)

T = TypeVar("T")


class VaultPermissionDenied(PermanentError):
    """Vault answered 403: the token lacks a capability, or it is no longer valid (revoked, expired).

    A :class:`VaultStore` whose client factory is a :class:`VaultClientCache` retries the operation
    once with a fresh login before letting this through.
    """


# --- client -------------------------------------------------------------------------------------


def build_vault_client(
    address: str,
    *,
    token: str | None = None,
    kubernetes_role: str | None = None,
    kubernetes_mount: str = "kubernetes",
    service_account_token_path: str | Path = DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH,
    verify: bool | str = True,
    timeout: float = 10.0,
) -> hvac.Client:
    """A one-off Vault client authenticated with ``token``, or else by the Kubernetes auth method.

    Each call with a role logs in again and nothing revokes that token: the operator uses one
    :class:`VaultClientCache` instead; this stays for tools and tests.

    With ``kubernetes_role`` the client logs in at ``auth/<kubernetes_mount>/login`` with the
    ServiceAccount token read from ``service_account_token_path`` (the pod's projected token by
    default). ``token`` wins when both are given. Blocking (it may log in): call it from a thread.
    Raises ``PermanentError`` for a missing token file or a refused login, ``TransientError`` when
    Vault cannot be reached.
    """
    client = hvac.Client(url=address, token=token, verify=verify, timeout=timeout)
    if token:
        return client
    if not kubernetes_role:
        raise PermanentError("Vault is configured without a token or a Kubernetes auth role")
    try:
        jwt = Path(service_account_token_path).read_text().strip()
    except OSError as exc:
        raise PermanentError(
            f"cannot read the ServiceAccount token for Vault Kubernetes auth from {service_account_token_path} "
            f"({type(exc).__name__})"
        ) from None
    with _vault_errors(f"log in to Vault with Kubernetes auth role {kubernetes_role!r} (mount {kubernetes_mount})",
                       needs="a role bound to this ServiceAccount and namespace"):
        client.auth.kubernetes.login(kubernetes_role, jwt, mount_point=kubernetes_mount)
    return client


@dataclass
class _Session:
    """The cached client and what is known about its token."""

    client: hvac.Client
    from_login: bool
    renewable: bool = False
    login_ttl: float = 0.0
    renew_at: float = float("inf")
    expires_at: float = float("inf")


class VaultClientCache:
    """One Vault client for the whole operator: log in once, renew, re-login, revoke on close.

    Call the cache (``cache()``) wherever a ``Callable[[], hvac.Client]`` is expected, e.g. as
    :class:`VaultStore`'s ``client_factory``. With a static ``token`` it hands out one client for
    that token and never renews or revokes it (the token belongs to whoever configured it). With a
    ``kubernetes_role`` it logs in through the Kubernetes auth method on first use and then:

    * renews the token with ``renew-self`` once ``renew_fraction`` of its TTL has passed (checked on
      each call, so an idle operator renews on its next use; an expired token is replaced by a login);
    * logs in again, revoking the old token, when renewal fails, the token is not renewable, or a
      renewal grants less than a third of the login TTL (the token is near its maximum TTL);
    * on :meth:`forbidden` (a request with its client got 403) checks the token with
      ``lookup-self`` and, if it is no longer valid, logs in again on the next call;
    * on :meth:`close` revokes the token it obtained (``revoke-self``); never a static token.

    Thread-safe: a lock makes logins, renewals and revocations single-flight, so concurrent
    ``asyncio.to_thread`` callers share one login. The client itself is shared between threads (hvac
    over a ``requests`` session, whose urllib3 pool is thread-safe); a re-login builds a new client
    rather than changing the token of one another thread may be using.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        kubernetes_role: str | None = None,
        kubernetes_mount: str = "kubernetes",
        service_account_token_path: str | Path = DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH,
        verify: bool | str = True,
        timeout: float = 10.0,
        renew_fraction: float = 2 / 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1")
        self._address = address
        self._token = token
        self._role = kubernetes_role
        self._mount = kubernetes_mount
        self._jwt_path = service_account_token_path
        self._verify = verify
        self._timeout = timeout
        self._renew_fraction = renew_fraction
        self._clock = clock
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._closed = False
        self.logins = 0
        """Logins done so far (for metrics and tests)."""
        self.renewals = 0
        """Successful renewals so far."""

    def __repr__(self) -> str:
        how = "token" if self._token else f"kubernetes role {self._role!r} at {self._mount}"
        return f"VaultClientCache({self._address}, {how})"

    def __call__(self) -> hvac.Client:
        return self.client()

    def client(self) -> hvac.Client:
        """The shared client, logged in and renewed as needed. Blocking: call it from a thread.

        Raises ``PermanentError`` for a refused login or after :meth:`close`, ``TransientError``
        when Vault cannot be reached.
        """
        with self._lock:
            if self._closed:
                raise PermanentError("the Vault client cache is closed")
            session = self._session
            if session is None:
                session = self._start()
            elif session.from_login and self._clock() >= session.renew_at:
                session = self._refresh(session)
            self._session = session
            return session.client

    def forbidden(self, client: hvac.Client) -> bool:
        """Report that a request made with ``client`` was refused with 403; return whether to retry.

        A 403 means either that the policy lacks a capability (final) or that the token is no longer
        valid (revoked from outside, Vault restarted: a new login fixes it). ``lookup-self`` tells
        which: if the token still looks itself up, the 403 is the policy's and this returns
        ``False``; if that is refused too, the client is dropped, the next :meth:`client` logs in
        again, and this returns ``True``. Always ``False`` for a static token.
        """
        with self._lock:
            session = self._session
            if self._closed or self._token:
                return False
            if session is None or session.client is not client:
                return True  # another caller already replaced it
            try:
                client.auth.token.lookup_self()
            except hvac.exceptions.Forbidden:
                self._session = None
                log.info("vault token no longer valid; logging in again on next use")
                return True
            except Exception:  # unreachable, sealed...: the original error stands
                return False
            return False

    def close(self) -> None:
        """Revoke the token this cache obtained by login (never a static one) and refuse further use."""
        with self._lock:
            self._closed = True
            session, self._session = self._session, None
            if session is not None and session.from_login:
                self._revoke(session, why="closing")

    async def aclose(self) -> None:
        """:meth:`close` from async code (it talks to Vault)."""
        await asyncio.to_thread(self.close)

    # -- under the lock --

    def _start(self) -> _Session:
        if self._token:
            client = hvac.Client(url=self._address, token=self._token, verify=self._verify, timeout=self._timeout)
            return _Session(client, from_login=False)
        if not self._role:  # reported on use, like a refused login, so the other destinations keep working
            raise PermanentError("Vault is configured without a token or a Kubernetes auth role")
        return self._login()

    def _login(self) -> _Session:
        assert self._role
        client = hvac.Client(url=self._address, verify=self._verify, timeout=self._timeout)
        try:
            jwt = Path(self._jwt_path).read_text().strip()
        except OSError as exc:
            raise PermanentError(
                f"cannot read the ServiceAccount token for Vault Kubernetes auth from {self._jwt_path} "
                f"({type(exc).__name__})"
            ) from None
        with _vault_errors(f"log in to Vault with Kubernetes auth role {self._role!r} (mount {self._mount})",
                           needs="a role bound to this ServiceAccount and namespace"):
            response = client.auth.kubernetes.login(self._role, jwt, mount_point=self._mount)
        auth = (response or {}).get("auth") or {}
        ttl = float(auth.get("lease_duration") or 0)
        self.logins += 1
        now = self._clock()
        session = _Session(client, from_login=True, renewable=bool(auth.get("renewable")), login_ttl=ttl)
        self._schedule(session, now, ttl)
        log.info("vault login", mount=self._mount, role=self._role, ttl_seconds=ttl, renewable=session.renewable)
        return session

    def _schedule(self, session: _Session, now: float, ttl: float) -> None:
        if ttl <= 0:  # a token without a TTL (root-like): nothing to renew
            session.renew_at = session.expires_at = float("inf")
            return
        session.renew_at = now + ttl * self._renew_fraction
        session.expires_at = now + ttl

    def _refresh(self, session: _Session) -> _Session:
        """Renew ``session``'s token, or replace it by a new login (revoking the old token)."""
        now = self._clock()
        if session.renewable and now < session.expires_at:
            try:
                with _vault_errors("renew the operator's Vault token", needs="renew-self on its own token"):
                    response = session.client.auth.token.renew_self()
            except OperatorError as error:
                log.warning("vault token not renewed; logging in again", reason=error.message)
            else:
                ttl = float(((response or {}).get("auth") or {}).get("lease_duration") or 0)
                if ttl > 0 and ttl >= session.login_ttl / 3:
                    self.renewals += 1
                    self._schedule(session, self._clock(), ttl)
                    log.debug("vault token renewed", ttl_seconds=ttl)
                    return session
                log.info("vault token near its maximum TTL; logging in again", ttl_seconds=ttl)
        fresh = self._login()
        if now < session.expires_at:
            self._revoke(session, why="replaced by a new login")
        return fresh

    def _revoke(self, session: _Session, *, why: str) -> None:
        if not session.from_login:
            return
        try:
            with _vault_errors("revoke the operator's Vault token", needs="revoke-self on its own token"):
                session.client.auth.token.revoke_self()
        except OperatorError as error:
            log.warning("vault token not revoked", why=why, reason=error.message)
        else:
            log.info("vault token revoked", why=why)


@contextmanager
def _vault_errors(action: str, *, needs: str) -> Iterator[None]:
    """Turn hvac and transport failures into the project's errors, keeping Vault's text out."""
    try:
        yield
    except OperatorError:
        raise
    except hvac.exceptions.InvalidPath:
        raise NotFoundError(f"{action}: not found") from None
    except hvac.exceptions.Forbidden:
        raise VaultPermissionDenied(
            f"{action}: permission denied (HTTP 403); the operator's Vault policy needs {needs}"
        ) from None
    except hvac.exceptions.Unauthorized:
        raise PermanentError(f"{action}: Vault rejected the operator's credentials (HTTP 401)") from None
    except hvac.exceptions.InvalidRequest as exc:
        if any("check-and-set" in str(e) for e in exc.errors or ()):
            raise ConflictError(f"{action}: the path changed concurrently (check-and-set); re-read and retry") \
                from None
        raise PermanentError(f"{action}: Vault refused the request (HTTP 400)") from None
    except (
        hvac.exceptions.VaultDown,
        hvac.exceptions.InternalServerError,
        hvac.exceptions.BadGateway,
        hvac.exceptions.RateLimitExceeded,
        hvac.exceptions.VaultNotInitialized,
        hvac.exceptions.UnexpectedError,
    ) as exc:
        raise TransientError(f"{action}: Vault unavailable ({type(exc).__name__})") from None
    except hvac.exceptions.VaultError as exc:
        raise PermanentError(f"{action}: Vault error ({type(exc).__name__})") from None
    except (requests.RequestException, OSError) as exc:
        raise TransientError(f"{action}: Vault unreachable ({type(exc).__name__})") from None


# --- pure parts ---------------------------------------------------------------------------------


def vault_data(destination: VaultDestination, material: KeyMaterial) -> dict[str, str]:
    """The KV v2 data to store: the key under ``destination.field``, the project id, the base URL if set."""
    data = {destination.field: material.api_key.reveal(), "project_id": material.project_id}
    if material.base_url:
        data["base_url"] = material.base_url
    return data


def custom_metadata(owner: Owner, material: KeyMaterial) -> dict[str, str]:
    """Our keys of the path's ``custom_metadata`` (all strings, as Vault requires)."""
    return {
        META_MANAGED_BY: MANAGED_BY,
        META_OWNER: f"{owner.namespace}/{owner.name}",
        META_OWNER_UID: owner.uid,
        META_KEY_ID: material.key_id,
        META_REVISION: str(material.revision),
    }


def is_owned_by(metadata: Mapping[str, Any] | None, owner: Owner) -> bool:
    """Whether a path with this ``custom_metadata`` belongs to ``owner``."""
    metadata = metadata or {}
    return metadata.get(META_MANAGED_BY) == MANAGED_BY and metadata.get(META_OWNER_UID) == owner.uid


def _same_data(stored: Mapping[str, Any] | None, desired: Mapping[str, str]) -> bool:
    if stored is None or sorted(stored) != sorted(desired):
        return False
    return all(
        isinstance(stored[k], str) and hmac.compare_digest(stored[k].encode(), v.encode()) for k, v in desired.items()
    )


def _foreign_reason(metadata: Mapping[str, Any] | None) -> str:
    metadata = metadata or {}
    if metadata.get(META_MANAGED_BY) != MANAGED_BY or not metadata.get(META_OWNER_UID):
        return "exists and is not managed by the operator; remove it or choose another spec.vault.path"
    return (
        f"is owned by another OpenAIKey ({metadata.get(META_OWNER, '?')}, uid {metadata.get(META_OWNER_UID)}); "
        "choose another spec.vault.path"
    )


# --- the store ----------------------------------------------------------------------------------


class VaultStore:
    """A :class:`~openai_operator.stores.base.SecretStore` writing ``spec.vault`` (KV v2)."""

    kind = "vault"

    def __init__(
        self, client_factory: Callable[[], hvac.Client], destination: VaultDestination, fingerprint_key: bytes
    ) -> None:
        if not fingerprint_key:
            raise ValueError("fingerprint_key must not be empty")
        self._client_factory = client_factory
        self._destination = destination
        self._fingerprint_key = fingerprint_key

    @property
    def location(self) -> str:
        return f"{self._destination.mount}/{self._destination.path}"

    def __repr__(self) -> str:
        return f"VaultStore({self.location})"

    # -- sync helpers, run in a worker thread --

    def _client(self) -> hvac.Client:
        with _vault_errors("connect to Vault", needs="a working token or Kubernetes auth role"):
            return self._client_factory()

    def _run(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation(kv)``; on a 403, retry once if the factory says a new login may help.

        Every operation re-reads before it writes, so running it again after a partial first try is
        safe (the same property that makes a crash between two steps safe).
        """
        client = self._client()
        try:
            return operation(self._kv(client))
        except VaultPermissionDenied:
            forbidden = getattr(self._client_factory, "forbidden", None)
            if forbidden is None or not forbidden(client):
                raise
        log.info("vault operation retried after a new login", location=self.location)
        return operation(self._kv(self._client()))

    def _kv(self, client: hvac.Client) -> Any:
        return client.secrets.kv.v2

    def _metadata(self, kv: Any) -> dict[str, Any] | None:
        d = self._destination
        try:
            with _vault_errors(f"read metadata of {self.location}", needs=f"read on {d.mount}/metadata/{d.path}"):
                response = kv.read_secret_metadata(d.path, mount_point=d.mount)
        except NotFoundError:
            return None
        data: dict[str, Any] = response["data"]
        return data

    def _current(self, kv: Any, metadata: Mapping[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """The current version and its data (``None`` if there is none, or it is deleted or destroyed)."""
        d = self._destination
        version = int(metadata.get("current_version") or 0)
        info = (metadata.get("versions") or {}).get(str(version)) or {}
        if version == 0 or info.get("deletion_time") or info.get("destroyed"):
            return version, None
        try:
            with _vault_errors(f"read {self.location}", needs=f"read on {d.mount}/data/{d.path}"):
                response = kv.read_secret_version(
                    d.path, version=version, mount_point=d.mount, raise_on_deleted_version=True
                )
        except NotFoundError:
            return version, None
        data: dict[str, Any] | None = (response.get("data") or {}).get("data")
        return version, data

    def _check_owned(self, metadata: Mapping[str, Any], owner: Owner) -> dict[str, Any]:
        custom: dict[str, Any] = dict(metadata.get("custom_metadata") or {})
        if not is_owned_by(custom, owner):
            raise DestinationConflictError(self.location, _foreign_reason(custom))
        return custom

    def _set_metadata(self, kv: Any, current: Mapping[str, Any] | None, custom: dict[str, str]) -> None:
        """Replace ``custom_metadata``, keeping the path's other metadata settings as they are."""
        d = self._destination
        current = current or {}
        with _vault_errors(f"update metadata of {self.location}", needs=f"update on {d.mount}/metadata/{d.path}"):
            kv.update_metadata(
                d.path,
                max_versions=current.get("max_versions") or None,
                cas_required=current.get("cas_required"),
                delete_version_after=current.get("delete_version_after") or "0s",
                custom_metadata=custom,
                mount_point=d.mount,
            )

    def _put(self, kv: Any, data: dict[str, str], cas: int) -> int:
        d = self._destination
        with _vault_errors(f"write {self.location}", needs=f"create and update on {d.mount}/data/{d.path}"):
            response = kv.create_or_update_secret(d.path, secret=data, cas=cas, mount_point=d.mount)
        return int(response["data"]["version"])

    def _write_sync(self, kv: Any, owner: Owner, material: KeyMaterial) -> WriteResult:
        desired = vault_data(self._destination, material)
        ours = custom_metadata(owner, material)
        fp = fingerprint(material.api_key, self._fingerprint_key)
        metadata = self._metadata(kv)

        if metadata is None:
            self._set_metadata(kv, None, ours)
            try:
                version = self._put(kv, desired, cas=0)
            except ConflictError:
                self._withdraw_claim(kv, ours)
                raise
            log.info("vault secret created", location=self.location, version=version,
                     key_id=material.key_id, revision=material.revision)
            return WriteResult(self.location, fp, version, changed=True)

        custom = self._check_owned(metadata, owner)
        wanted_custom = {**custom, **ours}
        current, stored = self._current(kv, metadata)
        if _same_data(stored, desired):
            if custom == wanted_custom:
                return WriteResult(self.location, fp, current, changed=False)
            self._set_metadata(kv, metadata, wanted_custom)
            return WriteResult(self.location, fp, current, changed=True)
        version = self._put(kv, desired, cas=current)
        self._set_metadata(kv, metadata, wanted_custom)
        log.info("vault secret updated", location=self.location, version=version,
                 key_id=material.key_id, revision=material.revision)
        return WriteResult(self.location, fp, version, changed=True)

    def _withdraw_claim(self, kv: Any, ours: Mapping[str, str]) -> None:
        """After losing the first write to another writer, take our ownership marks off the path."""
        try:
            metadata = self._metadata(kv)
            if metadata is not None and dict(metadata.get("custom_metadata") or {}) == dict(ours):
                self._set_metadata(kv, metadata, {})
        except OperatorError:
            log.warning("vault claim not withdrawn", location=self.location)

    def _observe_sync(self, kv: Any, owner: Owner) -> Observed | None:
        metadata = self._metadata(kv)
        if metadata is None:
            return None
        self._check_owned(metadata, owner)
        version, stored = self._current(kv, metadata)
        value = (stored or {}).get(self._destination.field)
        if value is None:
            return Observed(fingerprint=None, version=version or None)
        text = value if isinstance(value, str) else str(value)
        return Observed(fingerprint=fingerprint(text, self._fingerprint_key), version=version or None)

    def _delete_sync(self, kv: Any, owner: Owner) -> None:
        metadata = self._metadata(kv)
        if metadata is None:
            return
        if not is_owned_by(metadata.get("custom_metadata"), owner):
            log.warning("vault secret not deleted: not owned by this key", location=self.location)
            return
        d = self._destination
        try:
            with _vault_errors(f"delete {self.location}", needs=f"delete on {d.mount}/metadata/{d.path}"):
                kv.delete_metadata_and_all_versions(d.path, mount_point=d.mount)
        except NotFoundError:
            return
        log.info("vault secret deleted", location=self.location)

    # -- the protocol --

    async def write(self, owner: Owner, material: KeyMaterial) -> WriteResult:
        return await asyncio.to_thread(self._run, lambda kv: self._write_sync(kv, owner, material))

    async def observe(self, owner: Owner) -> Observed | None:
        return await asyncio.to_thread(self._run, lambda kv: self._observe_sync(kv, owner))

    async def delete(self, owner: Owner) -> None:
        await asyncio.to_thread(self._run, lambda kv: self._delete_sync(kv, owner))

    async def release(self, owner: Owner) -> None:
        """Nothing to do: a Vault path has no owner-driven garbage collection."""
