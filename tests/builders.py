"""Test builders shared by the table tests (cert-manager's ``test/unit/gen`` style).

``key_facts(...)`` gives the facts of one pass over an OpenAIKey with sensible defaults — a Ready
project that allows the key's namespace, a Secret destination holding the current credential — and
each keyword changes one thing, so a test states only what its sentence is about.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from openai_operator.model.conditions import Condition
from openai_operator.model.specs import parse_key_spec, parse_project_spec
from openai_operator.model.status import Delivery, KeyStatus, PendingCredential, PreviousCredential
from openai_operator.reconcile.facts import DestinationState, KeyFacts, KeySettings, SeenServiceAccount
from openai_operator.reconcile.policy import ProjectView

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INSTANCE = "test1"
NAMESPACE = "apps"
NAME = "chat"
FP_CURRENT = "hmac-sha256:current"
FP_PENDING = "hmac-sha256:pending"


def account_name(revision: int, *, namespace: str = NAMESPACE, name: str = NAME, instance: str = INSTANCE) -> str:
    return f"k8s.{instance}.{namespace}.{name}.r{revision}"


def project_view(**policy: Any) -> ProjectView:
    policy.setdefault("allowedNamespaces", {"names": [NAMESPACE]})
    spec = parse_project_spec({"keyPolicy": policy}, name="team")
    return ProjectView(name="team", project_id="proj_1", ready=True, key_policy=spec.key_policy)


def key_spec(**extra: Any) -> Any:
    return parse_key_spec({"projectRef": {"name": "team"}, "secret": {}, **extra}, name=NAME)


def issued(revision: int = 1, **extra: Any) -> KeyStatus:
    """A key holding credential ``r<revision>``, delivered to its Secret."""
    fields: dict[str, Any] = {
        "project_id": "proj_1", "service_account_id": f"sa_{revision}", "key_id": f"key_{revision}",
        "revision": revision, "created_at": NOW - timedelta(days=1), "restarted_revision": revision,
        "destinations": {"secret": Delivery(NAME, FP_CURRENT)},
        "conditions": (Condition("Ready", "True", "Issued", "ok", NOW - timedelta(days=1), 1),),
        "observed_generation": 1,
    }
    fields.update(extra)
    return KeyStatus(**fields)


def pending(revision: int = 2, *, minted: bool = True, reason: str = "ManuallyTriggered") -> PendingCredential:
    p = PendingCredential(revision, account_name(revision), NOW - timedelta(seconds=30), reason)
    if minted:
        p = replace(p, service_account_id=f"sa_{revision}", key_id=f"key_{revision}", fingerprint=FP_PENDING,
                    minted_at=NOW - timedelta(seconds=29))
    return p


def previous(revision: int, revoke_at: datetime | None) -> PreviousCredential:
    return PreviousCredential(f"key_{revision}", f"sa_{revision}", revoke_at)


def holding(fingerprint: str = FP_CURRENT) -> DestinationState:
    return DestinationState.holding(fingerprint)


def key_facts(
    status: KeyStatus | None = None,
    *,
    spec: Any = None,
    project: ProjectView | str | None = "default",
    destinations: dict[str, DestinationState] | None = None,
    listed: list[tuple[str, str]] | None = None,
    **extra: Any,
) -> KeyFacts:
    status = status if status is not None else issued()
    spec = spec if spec is not None else key_spec()
    view = project_view() if project == "default" else project
    assert not isinstance(view, str)
    return KeyFacts(
        namespace=NAMESPACE, name=NAME, uid="uid-1", generation=extra.pop("generation", 1), now=NOW,
        status=status, settings=KeySettings(instance_id=INSTANCE), spec=spec, project=view,
        namespace_labels=extra.pop("namespace_labels", {}),
        destinations=destinations if destinations is not None else {"secret": holding()},
        listed_accounts=None if listed is None else tuple(SeenServiceAccount(i, n) for i, n in listed),
        **extra,
    )
