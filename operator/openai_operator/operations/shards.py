"""Acting on an object only as its shard: the check-and-claim every pass of a sharded operator makes.

``status.shard`` names the shard that acts on an object. A pass of this shard goes ahead when the
object names this shard; when it names none, or a shard none of whose live replicas serves the
object's namespace any more, this shard first records itself there (one status patch, on the first
pass and at a handover only) and then goes ahead; otherwise it leaves the object alone, so two
shards never work on one object at once (``operator.k8s.shards`` explains the Leases).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from openai_operator.deps import Deps

__all__ = ["claim_for_this_shard", "with_shard"]

log = structlog.get_logger(__name__)

PatchStatus = Callable[[str, str, Mapping[str, Any]], Awaitable[None]]


async def claim_for_this_shard(deps: Deps, kind: str, namespace: str, name: str, body: Mapping[str, Any],
                               patch_status: PatchStatus) -> bool:
    """Whether this shard may act on the object now (it is recorded as the object's shard when so)."""
    shard = deps.shard
    if shard is None:
        return True
    recorded = (body.get("status") or {}).get("shard")
    if recorded == shard.shard:
        return True
    if recorded:
        owner = await shard.live_owner(recorded, namespace)
        if owner is not None:
            log.info("another shard still serves this namespace; not acting", kind=kind,
                     object=f"{namespace}/{name}", shard=recorded, replica=owner)
            return False
        log.info("taking over from a shard that no longer serves this namespace", kind=kind,
                 object=f"{namespace}/{name}", previous_shard=recorded, shard=shard.shard)
    await patch_status(namespace, name, {"shard": shard.shard})
    return True


def with_shard(body: Mapping[str, Any], deps: Deps) -> Mapping[str, Any]:
    """``body`` as it is after a claim: ``status.shard`` is this shard (unchanged when not sharded)."""
    if deps.shard is None:
        return body
    return {**body, "status": {**(body.get("status") or {}), "shard": deps.shard.shard}}
