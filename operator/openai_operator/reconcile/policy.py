"""May this OpenAIKey hold a credential of its project? (The tenant-isolation rules.)

A key is checked against the project it references: the project must exist and be Ready, the
key's namespace must be allowed by ``keyPolicy.allowedNamespaces`` (names or label selector;
nothing is allowed by default), the project's ``maxKeys`` must leave room, the rotation must be
neither less frequent than ``maxRotationInterval`` (``every``, or a schedule's longest gap) nor
more frequent than ``minRotationInterval`` or the operator's global minimum (``every``, or a
schedule's shortest gap), the grace period must not exceed ``maxGracePeriod``, and a Vault path
must stay under the operator's prefix for the namespace. The first rule that fails gives the
reason the key shows in ``Ready=False``.

Before any of that, the rotation itself is checked (:func:`~openai_operator.reconcile.schedule.validate_rotation`):
a grace period that is not shorter than the shortest gap between rotations is a
:class:`~openai_operator.errors.SpecError`, not a refusal, because no project could allow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from openai_operator.model.durations import format_duration
from openai_operator.model.identity import WorkloadIdentitySpec
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import DEFAULT_GRACE_PERIOD, KeyPolicy, KeySpec, vault_path_within
from openai_operator.reconcile.schedule import RotationGaps, validate_rotation

__all__ = ["ProjectView", "Refusal", "check_identity_policy", "check_key_policy", "check_project_access",
           "grace_period_for"]


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
    min_rotation_interval: timedelta | None = None,
) -> Refusal | None:
    """The first rule the key breaks, or ``None`` when it may hold a credential.

    ``min_rotation_interval`` is the operator's global floor on rotation frequency (``None``: none);
    the stricter of it and the project's ``keyPolicy.minRotationInterval`` applies. Raises
    :class:`~openai_operator.errors.SpecError` (``spec.rotation.gracePeriod``) when the grace
    period is not shorter than the shortest gap between rotations.
    """
    gaps = validate_rotation(spec.rotation) if spec.rotation is not None else None
    ref = spec.project_ref.name
    refusal = check_project_access(ref, namespace=namespace, namespace_labels=namespace_labels, project=project)
    if refusal is not None or project is None:
        return refusal
    limit = project.key_policy.max_keys
    if limit is not None and not holds_credential and other_keys_holding_credentials >= limit:
        return Refusal(
            Reason.KEY_QUOTA_EXCEEDED,
            f"OpenAIProject {ref!r} allows at most {limit} keys (spec.keyPolicy.maxKeys) and all are in use",
        )
    refusal = _rotation_refusal(spec, gaps, project, min_rotation_interval)
    if refusal is not None:
        return refusal
    if spec.vault is not None and not vault_path_within(spec.vault.path, vault_prefix):
        return Refusal(
            Reason.VAULT_PATH_NOT_ALLOWED,
            f"spec.vault.path must stay under {vault_prefix!r} for keys in namespace {namespace!r}",
        )
    return None


def check_project_access(
    ref: str, *, namespace: str, namespace_labels: Mapping[str, str] | None, project: ProjectView | None,
    what: str = "keys",
) -> Refusal | None:
    """The project rules every credential of a namespace obeys: the project exists, is Ready, and its
    ``keyPolicy.allowedNamespaces`` admits the namespace. Keys and workload identities share them."""
    if project is None or project.deleting:
        return Refusal(Reason.PROJECT_NOT_FOUND, f"OpenAIProject {ref!r} does not exist")
    if not project.ready or project.project_id is None:
        return Refusal(Reason.PROJECT_NOT_READY, f"OpenAIProject {ref!r} is not Ready yet")
    if namespace_labels is None or not project.key_policy.allows_namespace(namespace, namespace_labels):
        return Refusal(
            Reason.NAMESPACE_NOT_ALLOWED,
            f"OpenAIProject {ref!r} does not allow {what} in namespace {namespace!r} "
            "(spec.keyPolicy.allowedNamespaces)",
        )
    return None


def check_identity_policy(
    spec: WorkloadIdentitySpec, *, namespace: str, namespace_labels: Mapping[str, str] | None,
    project: ProjectView | None, other_credentials: int, holds_mapping: bool,
) -> Refusal | None:
    """May this OpenAIWorkloadIdentity hold a mapping? The same ``keyPolicy`` as keys.

    ``allowedNamespaces`` and readiness as for a key; ``maxKeys`` counts keys and workload
    identities together (``other_credentials``: the project's other objects holding a credential),
    because each is one OpenAI service account acting in the project. The rotation and Vault rules
    do not apply: a workload identity has no key to rotate or store.
    """
    ref = spec.project_ref.name
    refusal = check_project_access(ref, namespace=namespace, namespace_labels=namespace_labels, project=project,
                                   what="workload identities")
    if refusal is not None or project is None:
        return refusal
    limit = project.key_policy.max_keys
    if limit is not None and not holds_mapping and other_credentials >= limit:
        return Refusal(
            Reason.KEY_QUOTA_EXCEEDED,
            f"OpenAIProject {ref!r} allows at most {limit} keys and workload identities "
            "(spec.keyPolicy.maxKeys) and all are in use",
        )
    return None


def grace_period_for(spec: KeySpec | None, policy: KeyPolicy | None = None) -> timedelta:
    """How long a superseded credential of this key stays valid.

    ``spec.rotation.gracePeriod`` when the key has a rotation (``check_key_policy`` refuses one
    above ``keyPolicy.maxGracePeriod``); otherwise the default (one hour), shortened to the
    project's ``maxGracePeriod`` if that is shorter, because a key without ``spec.rotation`` has no
    way to set its grace period.
    """
    if spec is not None and spec.rotation is not None:
        return spec.rotation.grace_period
    cap = policy.max_grace_period if policy is not None else None
    return DEFAULT_GRACE_PERIOD if cap is None else min(DEFAULT_GRACE_PERIOD, cap)


def _rotation_refusal(
    spec: KeySpec, gaps: RotationGaps | None, project: ProjectView, global_minimum: timedelta | None
) -> Refusal | None:
    ref = project.name
    policy = project.key_policy
    rotation = spec.rotation
    longest = policy.max_rotation_interval
    if longest is not None and (rotation is None or gaps is None):
        return Refusal(
            Reason.ROTATION_INTERVAL_TOO_LONG,
            f"OpenAIProject {ref!r} requires rotation at least every {format_duration(longest)} "
            "(spec.keyPolicy.maxRotationInterval): set spec.rotation",
        )
    if rotation is None or gaps is None:
        return None
    uses_every = rotation.every is not None
    if longest is not None and gaps.longest > longest:
        what = "spec.rotation.every" if uses_every else "the longest gap of spec.rotation.schedule"
        return Refusal(
            Reason.ROTATION_INTERVAL_TOO_LONG,
            f"{what} ({format_duration(gaps.longest)}) must be at most {format_duration(longest)} "
            f"for OpenAIProject {ref!r} (spec.keyPolicy.maxRotationInterval)",
        )
    floors = [
        (floor, source)
        for floor, source in (
            (policy.min_rotation_interval, f"OpenAIProject {ref!r} (spec.keyPolicy.minRotationInterval)"),
            (global_minimum, "the operator's minimum rotation interval"),
        )
        if floor is not None
    ]
    if floors:
        floor, source = max(floors, key=lambda item: item[0])
        if gaps.shortest < floor:
            what = "spec.rotation.every" if uses_every else "the shortest gap of spec.rotation.schedule"
            return Refusal(
                Reason.ROTATION_INTERVAL_TOO_SHORT,
                f"{what} ({format_duration(gaps.shortest)}) must be at least {format_duration(floor)} for {source}",
            )
    cap = policy.max_grace_period
    if cap is not None and rotation.grace_period > cap:
        return Refusal(
            Reason.GRACE_PERIOD_TOO_LONG,
            f"spec.rotation.gracePeriod ({format_duration(rotation.grace_period)}) must be at most "
            f"{format_duration(cap)} for OpenAIProject {ref!r} (spec.keyPolicy.maxGracePeriod)",
        )
    return None
