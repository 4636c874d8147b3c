"""What an OpenAIProject may call: ``spec.models`` mirrored to the project's model permissions and
``spec.serviceTiers`` to its service-tier settings.

Pure. Each pass reads back what it set and compares (drift is set back, and reported as such);
a project that asks for neither and has nothing recorded costs no call.

Model permissions are the operator's once it set them (``status.models``): removing ``spec.models``
deletes them, which lets the project call every model again. Service tiers have no delete in the
API, so removing ``spec.serviceTiers`` leaves the settings as they are and only stops managing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openai_operator.model.specs import ProjectModels, ServiceTiers
from openai_operator.model.status import ModelsStatus, ServiceTiersStatus

# --- spec.models → model permissions -----------------------------------------------------------


@dataclass(frozen=True)
class ObservedModels:
    mode: str
    model_ids: tuple[str, ...]


@dataclass(frozen=True)
class ModelsPlan:
    set_to: ModelsStatus | None = None
    """Replace the project's model permissions with these."""
    delete: bool = False
    """Delete the permissions the operator had set (``spec.models`` removed)."""
    drift: bool = False
    """What the operator set was changed outside it (``set_to`` puts it back)."""
    status: ModelsStatus | None = None
    """``status.models`` after the plan."""


def needs_models_read(models: ProjectModels | None, recorded: ModelsStatus | None) -> bool:
    """Read the permissions when the spec has some, or to remove the ones the operator set."""
    return models is not None or recorded is not None


def _same(mode: str, ids: Sequence[str], other_mode: str, other_ids: Sequence[str]) -> bool:
    return mode == other_mode and sorted(set(ids)) == sorted(set(other_ids))


def plan_models(
    models: ProjectModels | None, observed: ObservedModels | None, recorded: ModelsStatus | None
) -> ModelsPlan:
    """Set the permissions when they differ from the spec (order and repeats do not count)."""
    if models is None:
        if recorded is None:
            return ModelsPlan()
        return ModelsPlan(delete=True)
    wanted = ModelsStatus(models.mode, models.model_ids)
    if observed is not None and _same(wanted.mode, wanted.models, observed.mode, observed.model_ids):
        return ModelsPlan(status=wanted)
    drift = (
        recorded is not None
        and observed is not None
        and _same(recorded.mode, recorded.models, wanted.mode, wanted.models)
    )
    return ModelsPlan(set_to=wanted, drift=drift, status=wanted)


# --- spec.serviceTiers → service-tier settings --------------------------------------------------


@dataclass(frozen=True)
class ObservedTiers:
    default: str
    enabled: str | tuple[str, ...]
    """``"all"`` or the optional tiers enabled."""


@dataclass(frozen=True)
class TiersPlan:
    default: str | None = None
    """Send this ``default`` (it differs)."""
    enabled: str | tuple[str, ...] | None = None
    """Send these ``enabled_tiers`` (they differ)."""
    drift: bool = False

    @property
    def changes(self) -> bool:
        return self.default is not None or self.enabled is not None


def _tiers_key(value: str | Sequence[str]) -> tuple[str, ...]:
    return ("all",) if value == "all" else tuple(sorted(set(value)))


def tiers_status(observed: ObservedTiers) -> ServiceTiersStatus:
    """``status.serviceTiers`` from what OpenAI answered."""
    enabled = ("all",) if observed.enabled == "all" else tuple(observed.enabled)
    return ServiceTiersStatus(observed.default, enabled)


def plan_service_tiers(
    tiers: ServiceTiers, observed: ObservedTiers, recorded: ServiceTiersStatus | None
) -> TiersPlan:
    """Send only the fields the spec manages that differ from OpenAI's (the update is atomic and
    keeps omitted fields). Drift: the recorded settings already matched the spec."""
    default = tiers.default if tiers.default is not None and tiers.default != observed.default else None
    wanted = tiers.enabled_tiers
    enabled = wanted if wanted is not None and _tiers_key(wanted) != _tiers_key(observed.enabled) else None
    if default is None and enabled is None:
        return TiersPlan()
    drift = recorded is not None and (
        (tiers.default is None or recorded.default == tiers.default)
        and (wanted is None or _tiers_key(recorded.enabled) == _tiers_key(wanted))
    )
    return TiersPlan(default=default, enabled=enabled, drift=drift)
