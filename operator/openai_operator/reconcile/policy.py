"""May this OpenAIKey hold a credential of its project? (The tenant-isolation rules.)

A key is checked against the project it references: the project must exist and be Ready, the
key's namespace must be allowed by ``keyPolicy.allowedNamespaces`` (names or label selector;
nothing is allowed by default), the project's ``maxKeys`` must leave room, the rotation interval
must not exceed ``maxRotationInterval``, and a Vault path must stay under the operator's prefix for
the namespace. The first rule that fails gives the reason the key shows in ``Ready=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyPolicy, KeySpec, vault_path_within


@dataclass(frozen=True)
class ProjectView:
    """What a key needs to know about its OpenAIProject (kept in an in-memory index)."""

    name: str
    project_id: str | None
    ready: bool
    key_policy: KeyPolicy
    deleting: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why the key may not hold a credential now; ``reason`` is a :class:`Reason` value."""

    reason: str
    message: str


def check_key_policy(
    spec: KeySpec,
    *,
    namespace: str,
    namespace_labels: Mapping[str, str] | None,
    project: ProjectView | None,
    other_keys_holding_credentials: int,
    holds_credential: bool,
    vault_prefix: str,
) -> Refusal | None:
    """The first rule the key breaks, or ``None`` when it may hold a credential."""
    ref = spec.project_ref.name
    if project is None or project.deleting:
        return Refusal(Reason.PROJECT_NOT_FOUND, f"OpenAIProject {ref!r} does not exist")
    if not project.ready or project.project_id is None:
        return Refusal(Reason.PROJECT_NOT_READY, f"OpenAIProject {ref!r} is not Ready yet")
    if namespace_labels is None or not project.key_policy.allows_namespace(namespace, namespace_labels):
        return Refusal(
            Reason.NAMESPACE_NOT_ALLOWED,
            f"OpenAIProject {ref!r} does not allow keys in namespace {namespace!r} "
            "(spec.keyPolicy.allowedNamespaces)",
        )
    limit = project.key_policy.max_keys
    if limit is not None and not holds_credential and other_keys_holding_credentials >= limit:
        return Refusal(
            Reason.KEY_QUOTA_EXCEEDED,
            f"OpenAIProject {ref!r} allows at most {limit} keys (spec.keyPolicy.maxKeys) and all are in use",
        )
    longest = project.key_policy.max_rotation_interval
    if longest is not None:
        if spec.rotation is None:
            return Refusal(
                Reason.ROTATION_INTERVAL_TOO_LONG,
                f"OpenAIProject {ref!r} requires rotation at least every {longest} "
                "(spec.keyPolicy.maxRotationInterval): set spec.rotation",
            )
        if spec.rotation.every is not None and spec.rotation.every > longest:
            return Refusal(
                Reason.ROTATION_INTERVAL_TOO_LONG,
                f"spec.rotation.every must be at most {longest} for OpenAIProject {ref!r} "
                "(spec.keyPolicy.maxRotationInterval)",
            )
    if spec.vault is not None and not vault_path_within(spec.vault.path, vault_prefix):
        return Refusal(
            Reason.VAULT_PATH_NOT_ALLOWED,
            f"spec.vault.path must stay under {vault_prefix!r} for keys in namespace {namespace!r}",
        )
    return None
