"""Typed views of ``status`` for both kinds: read with ``from_dict``, write with ``to_patch``.

``to_patch`` renders every field the view knows, with ``None`` for unset values, so the result can be
used as a JSON merge patch that also clears stale values. Timestamps are RFC 3339 UTC with ``Z``.

There is deliberately no field for key material: status is readable by anyone who can ``get`` the
object. ``redactedKey`` is checked to really be redacted before it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Self

from openai_operator.model.conditions import (
    Condition,
    ConditionStatus,
    conditions_from_list,
    conditions_to_list,
    get_condition,
    set_condition,
)
from openai_operator.model.destinations import KINDS
from openai_operator.model.timestamps import format_time, parse_time

__all__ = [
    "Delivery",
    "KeyStatus",
    "MemberState",
    "MemberStatus",
    "ModelsStatus",
    "PendingCredential",
    "PreviousCredential",
    "ProjectStatus",
    "RetiredCredential",
    "ServiceTiersStatus",
    "Spend",
    "SpendAlertRecord",
    "SpendLimitStatus",
    "check_redacted",
]

_MASK = re.compile(r"[*…]")
_MAX_CLEAR_CHARS = 16


def check_redacted(value: str) -> str:
    """Return ``value`` if it looks redacted (masked, few clear characters), else raise ``ValueError``.

    OpenAI's ``redacted_value`` is a prefix, a run of ``*`` and the last four characters; anything
    with a long run of clear characters could be a real key and is refused.
    """
    clear = _MASK.sub("", value)
    if not _MASK.search(value) or len(clear) > _MAX_CLEAR_CHARS:
        raise ValueError("redactedKey must be a masked value, never the key itself")
    return value


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return str(value) if value is not None else None


def _int(raw: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = raw.get(key)
    return int(value) if value is not None else default


def _float(raw: Mapping[str, Any], key: str) -> float | None:
    value = raw.get(key)
    return float(value) if value is not None else None


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, Mapping) else {}


# --- OpenAIKey ----------------------------------------------------------------------------------


class _Conditioned:
    """Condition access shared by both status kinds (which are frozen dataclasses)."""

    __slots__ = ()
    conditions: tuple[Condition, ...]

    def condition(self, type: str) -> Condition | None:
        """The condition of ``type``, or ``None``."""
        return get_condition(self.conditions, type)

    def with_condition(
        self,
        type: str,
        status: bool | ConditionStatus,
        reason: str,
        message: str,
        observed_generation: int | None,
        now: datetime,
    ) -> Self:
        """A copy with one condition set through :func:`~openai_operator.model.conditions.set_condition`."""
        updated = set_condition(self.conditions, type, status, reason, message, observed_generation, now)
        return replace(self, conditions=tuple(updated))  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class PreviousCredential:
    """A superseded credential, kept valid until ``revoke_at`` so consumers can switch over.

    ``revoke_at`` is ``None`` while the credential is *held*: it may still sit in a destination and
    its successor has not reached every destination yet, so no clock runs for it until then.
    """

    key_id: str | None
    service_account_id: str
    revoke_at: datetime | None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PreviousCredential:
        """Read one ``status.previous[]`` entry."""
        return cls(_str(raw, "keyId"), str(raw["serviceAccountId"]), parse_time(raw.get("revokeAt")))

    def to_dict(self) -> dict[str, Any]:
        """Render for a status patch."""
        rendered: dict[str, Any] = {"keyId": self.key_id, "serviceAccountId": self.service_account_id}
        if self.revoke_at is not None:
            rendered["revokeAt"] = format_time(self.revoke_at)
        return rendered


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one destination was given: its location, the HMAC fingerprint of the key, a version.

    Rendered under ``status.destinations.<kind>`` with the location under the kind's own field name
    (``name`` for a Secret, ``path`` for Vault; see :mod:`openai_operator.model.destinations`).
    """

    location: str
    fingerprint: str | None = None
    version: int | None = None

    @classmethod
    def from_dict(cls, kind: str, raw: Mapping[str, Any]) -> Delivery | None:
        field_name = KINDS[kind].location_field
        if not raw.get(field_name):
            return None
        return cls(str(raw[field_name]), _str(raw, "fingerprint"), _int(raw, "version"))

    def to_dict(self, kind: str) -> dict[str, Any]:
        rendered: dict[str, Any] = {KINDS[kind].location_field: self.location, "fingerprint": self.fingerprint}
        if self.version is not None:
            rendered["version"] = self.version
        return rendered


def _deliveries_from(raw: Mapping[str, Any]) -> dict[str, Delivery]:
    found = {kind: Delivery.from_dict(kind, _mapping(raw, kind)) for kind in KINDS}
    return {kind: delivery for kind, delivery in found.items() if delivery is not None}


@dataclass(frozen=True, slots=True)
class PendingCredential:
    """The credential being issued (``status.pending``), written before the service account is created.

    It is the write-ahead record of an issue: with only ``service_account_name`` set, a crash may have
    left an account of that name (found by one listing); with ``service_account_id`` and
    ``fingerprint`` set the account exists and any destination holding that fingerprint holds it, so
    it is never deleted while a destination might still hand it out.
    """

    revision: int
    service_account_name: str
    started_at: datetime
    reason: str
    revoke_immediately: bool = False
    service_account_id: str | None = None
    key_id: str | None = None
    redacted_key: str | None = None
    fingerprint: str | None = None
    expires_at: datetime | None = None
    minted_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.redacted_key is not None:
            check_redacted(self.redacted_key)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PendingCredential | None:
        started = parse_time(raw.get("startedAt"))
        if not raw.get("serviceAccountName") or started is None:
            return None
        return cls(
            revision=_int(raw, "revision", 1) or 1,
            service_account_name=str(raw["serviceAccountName"]),
            started_at=started,
            reason=_str(raw, "reason") or "Issuing",
            revoke_immediately=bool(raw.get("revokeImmediately")),
            service_account_id=_str(raw, "serviceAccountId"),
            key_id=_str(raw, "keyId"),
            redacted_key=_str(raw, "redactedKey"),
            fingerprint=_str(raw, "fingerprint"),
            expires_at=parse_time(raw.get("expiresAt")),
            minted_at=parse_time(raw.get("mintedAt")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "serviceAccountName": self.service_account_name,
            "startedAt": format_time(self.started_at),
            "reason": self.reason,
            "revokeImmediately": self.revoke_immediately,
            "serviceAccountId": self.service_account_id,
            "keyId": self.key_id,
            "redactedKey": self.redacted_key,
            "fingerprint": self.fingerprint,
            "expiresAt": _time(self.expires_at),
            "mintedAt": _time(self.minted_at),
        }


@dataclass(frozen=True, slots=True)
class RetiredCredential:
    """A credential of this key that was revoked: its cost this period still counts toward the key."""

    key_id: str
    revoked_at: datetime

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RetiredCredential | None:
        revoked = parse_time(raw.get("revokedAt"))
        if not raw.get("keyId") or revoked is None:
            return None
        return cls(str(raw["keyId"]), revoked)

    def to_dict(self) -> dict[str, Any]:
        return {"keyId": self.key_id, "revokedAt": format_time(self.revoked_at)}


@dataclass(frozen=True, slots=True)
class Spend:
    """``status.spend`` of either kind: this budget period's cost, from OpenAI's daily cost buckets.

    Costs are daily buckets that lag, so ``as_of`` (the start of the newest bucket included) is what
    the numbers describe, never "now". ``retired`` and ``carried_usd`` are for keys only: credentials
    revoked this period whose cost still counts (so rotation does not reset a key's spend), and the
    cost of retired credentials folded into one sum once more than a few were retired.
    """

    month_to_date_usd: float
    period_start: datetime | None = None
    forecast_usd: float | None = None
    percent_of_budget: float | None = None
    as_of: datetime | None = None
    retired: tuple[RetiredCredential, ...] = ()
    carried_usd: float = 0.0
    budget_usd: float | None = None
    """The budget this spend was assessed against (a raised budget re-arms the thresholds above it)."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Spend:
        """Read ``status.spend``."""
        listed = raw.get("retiredCredentials") or ()
        retired = (RetiredCredential.from_dict(r) for r in listed if isinstance(r, Mapping))
        return cls(
            month_to_date_usd=_float(raw, "monthToDateUSD") or 0.0,
            period_start=parse_time(raw.get("periodStart")),
            forecast_usd=_float(raw, "forecastUSD"),
            percent_of_budget=_float(raw, "percentOfBudget"),
            as_of=parse_time(raw.get("asOf")),
            retired=tuple(r for r in retired if r is not None),
            carried_usd=_float(raw, "carriedUSD") or 0.0,
            budget_usd=_float(raw, "budgetUSD"),
        )

    def to_dict(self, *, of_key: bool = False) -> dict[str, Any]:
        """Render for a status patch; ``of_key`` adds the fields only a key has (``None`` clears them)."""
        rendered: dict[str, Any] = {
            "periodStart": _time(self.period_start),
            "monthToDateUSD": self.month_to_date_usd,
            "forecastUSD": self.forecast_usd,
            "percentOfBudget": self.percent_of_budget,
            "asOf": _time(self.as_of),
            "budgetUSD": self.budget_usd,
        }
        if of_key:
            rendered["retiredCredentials"] = [r.to_dict() for r in self.retired] or None
            rendered["carriedUSD"] = self.carried_usd or None
        return rendered


@dataclass(frozen=True, slots=True)
class KeyStatus(_Conditioned):
    """``OpenAIKey.status``. ``revision`` 0 means nothing has been issued yet."""

    project_id: str | None = None
    service_account_id: str | None = None
    key_id: str | None = None
    redacted_key: str | None = None
    revision: int = 0
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_rotated_at: datetime | None = None
    next_rotation_at: datetime | None = None
    previous: tuple[PreviousCredential, ...] = ()
    pending: PendingCredential | None = None
    destinations: Mapping[str, Delivery] = field(default_factory=dict)
    """By destination kind: what each destination was given for the current credential."""
    restarted_revision: int = 0
    """The credential revision the restart targets were last rolled for."""
    upstream_missing: str | None = None
    """A service-account id the inventory found deleted in OpenAI (set by the inventory)."""
    refused_since: datetime | None = None
    """When the key's policy started refusing it while it held a credential (its grace runs from here)."""
    spend: Spend | None = None
    alerts_fired: tuple[int, ...] = ()
    """Alert thresholds (percent) already announced in ``spend.period_start``'s period."""
    forecast_alert_fired: bool = False
    """Whether the month-end forecast passing the budget was announced in that period."""
    failed_attempts: int = 0
    last_failure_time: datetime | None = None
    rotate_token: str | None = None
    revoke_token: str | None = None
    scopes: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    observed_generation: int | None = None
    shard: str | None = None
    """The shard acting on the key (sharded installations; written first by ``operations.shards``)."""

    def __post_init__(self) -> None:
        if self.redacted_key is not None:
            check_redacted(self.redacted_key)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> KeyStatus:
        """Read ``OpenAIKey.status``; missing or empty status gives the initial state."""
        raw = raw or {}
        spend = _mapping(raw, "spend")
        return cls(
            project_id=_str(raw, "projectId"),
            service_account_id=_str(raw, "serviceAccountId"),
            key_id=_str(raw, "keyId"),
            redacted_key=_str(raw, "redactedKey"),
            revision=_int(raw, "revision", 0) or 0,
            created_at=parse_time(raw.get("createdAt")),
            expires_at=parse_time(raw.get("expiresAt")),
            last_rotated_at=parse_time(raw.get("lastRotatedAt")),
            next_rotation_at=parse_time(raw.get("nextRotationAt")),
            previous=tuple(PreviousCredential.from_dict(p) for p in raw.get("previous") or ()),
            pending=PendingCredential.from_dict(_mapping(raw, "pending")),
            destinations=_deliveries_from(_mapping(raw, "destinations")),
            restarted_revision=_int(raw, "restartedRevision", 0) or 0,
            upstream_missing=_str(raw, "upstreamMissing"),
            refused_since=parse_time(raw.get("refusedSince")),
            spend=Spend.from_dict(spend) if spend else None,
            alerts_fired=tuple(int(t) for t in raw.get("alertsFired") or ()),
            forecast_alert_fired=bool(raw.get("forecastAlertFired")),
            failed_attempts=_int(raw, "failedAttempts", 0) or 0,
            last_failure_time=parse_time(raw.get("lastFailureTime")),
            rotate_token=_str(raw, "rotateToken"),
            revoke_token=_str(raw, "revokeToken"),
            scopes=tuple(str(scope) for scope in raw.get("scopes") or ()),
            conditions=tuple(conditions_from_list(raw.get("conditions"))),
            observed_generation=_int(raw, "observedGeneration"),
            shard=_str(raw, "shard"),
        )

    def to_patch(self) -> dict[str, Any]:
        """Render every field for ``patch.status`` (``None`` clears a field in a merge patch)."""
        return {
            "projectId": self.project_id,
            "serviceAccountId": self.service_account_id,
            "keyId": self.key_id,
            "redactedKey": self.redacted_key,
            "revision": self.revision,
            "createdAt": _time(self.created_at),
            "expiresAt": _time(self.expires_at),
            "lastRotatedAt": _time(self.last_rotated_at),
            "nextRotationAt": _time(self.next_rotation_at),
            "previous": [p.to_dict() for p in self.previous],
            "pending": self.pending.to_dict() if self.pending is not None else None,
            "destinations": {
                kind: self.destinations[kind].to_dict(kind) if kind in self.destinations else None for kind in KINDS
            },
            "restartedRevision": self.restarted_revision,
            "upstreamMissing": self.upstream_missing,
            "refusedSince": _time(self.refused_since),
            "spend": self.spend.to_dict(of_key=True) if self.spend else None,
            "alertsFired": list(self.alerts_fired),
            "forecastAlertFired": self.forecast_alert_fired or None,
            "failedAttempts": self.failed_attempts,
            "lastFailureTime": _time(self.last_failure_time),
            "rotateToken": self.rotate_token,
            "revokeToken": self.revoke_token,
            "scopes": list(self.scopes),
            "conditions": conditions_to_list(self.conditions),
            "observedGeneration": self.observed_generation,
            "shard": self.shard,
        }


# --- OpenAIProject ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpendLimitStatus:
    """OpenAI's project spend limit as last read: ``enforcement`` is OpenAI's ``inactive|enforcing``.

    ``managed`` records that this operator set the limit (``enforcement: HardLimit``): only such a
    limit, and only while it still has the amount read here, is ever deleted, so a limit someone
    set by hand on an adopted project is left alone.
    """

    enforcement: str | None = None
    monthly_usd: float | None = None
    managed: bool = False

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SpendLimitStatus:
        """Read ``status.spendLimit``."""
        return cls(_str(raw, "enforcement"), _float(raw, "monthlyUSD"), bool(raw.get("managed")))

    def to_dict(self) -> dict[str, Any]:
        """Render for a status patch."""
        return {"enforcement": self.enforcement, "monthlyUSD": self.monthly_usd, "managed": self.managed}


@dataclass(frozen=True, slots=True)
class SpendAlertRecord:
    """One OpenAI spend alert this operator created for ``spec.budget.alertEmails`` (``status.spendAlerts[]``).

    The ids are the ownership record: alerts whose id is not here were made by someone else and
    are never changed or deleted.
    """

    id: str
    threshold_percent: int

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SpendAlertRecord | None:
        """Read one entry; one without an id records nothing."""
        if not raw.get("id"):
            return None
        return cls(str(raw["id"]), _int(raw, "thresholdPercent", 0) or 0)

    def to_dict(self) -> dict[str, Any]:
        """Render for a status patch."""
        return {"id": self.id, "thresholdPercent": self.threshold_percent}


class MemberState:
    """``status.members[].state``."""

    ACTIVE = "Active"
    INVITED = "Invited"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One ``status.members[]`` entry: a ``spec.members`` person as OpenAI has them.

    ``Active``: a project user with ``role`` (``user_id``). ``Invited``: not in the organisation
    yet; ``invite_id`` is the pending invite the operator sent (or found), ``invites_sent`` how many
    it sent (an expired invite is sent again once). ``Failed``: the invite expired again, or OpenAI
    refused a call; ``message`` says which. Entries are also the ownership record: only users and
    invites recorded here are removed when they leave the spec (unless ``membersPolicy: Exclusive``).
    """

    email: str
    role: str
    state: str
    user_id: str | None = None
    invite_id: str | None = None
    invite_expires_at: datetime | None = None
    invites_sent: int = 0
    message: str | None = None
    reason: str | None = None
    """Why the member is ``Failed``: ``InviteExpired`` or ``MembersSyncFailed``."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MemberStatus | None:
        """Read one entry; one without an email records nothing."""
        if not raw.get("email"):
            return None
        return cls(
            email=str(raw["email"]),
            role=_str(raw, "role") or "member",
            state=_str(raw, "state") or MemberState.FAILED,
            user_id=_str(raw, "userId"),
            invite_id=_str(raw, "inviteId"),
            invite_expires_at=parse_time(raw.get("inviteExpiresAt")),
            invites_sent=_int(raw, "invitesSent", 0) or 0,
            message=_str(raw, "message"),
            reason=_str(raw, "reason"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Render for a status patch (fields without a value are left out)."""
        out: dict[str, Any] = {"email": self.email, "role": self.role, "state": self.state}
        optional = {
            "userId": self.user_id,
            "inviteId": self.invite_id,
            "inviteExpiresAt": _time(self.invite_expires_at),
            "invitesSent": self.invites_sent or None,
            "message": self.message,
            "reason": self.reason,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass(frozen=True, slots=True)
class ModelsStatus:
    """``status.models``: the model permissions the operator set (and so may remove), as read back."""

    mode: str
    models: tuple[str, ...]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelsStatus:
        """Read ``status.models``."""
        return cls(_str(raw, "mode") or "", tuple(str(m) for m in raw.get("models") or ()))

    def to_dict(self) -> dict[str, Any]:
        """Render for a status patch."""
        return {"mode": self.mode, "models": list(self.models)}


@dataclass(frozen=True, slots=True)
class ServiceTiersStatus:
    """``status.serviceTiers``: the project's service tiers as read back (``enabled`` ``["all"]`` for all)."""

    default: str | None
    enabled: tuple[str, ...]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ServiceTiersStatus:
        """Read ``status.serviceTiers``."""
        return cls(_str(raw, "default"), tuple(str(t) for t in raw.get("enabled") or ()))

    def to_dict(self) -> dict[str, Any]:
        """Render for a status patch."""
        return {"default": self.default, "enabled": list(self.enabled)}


@dataclass(frozen=True, slots=True)
class ProjectStatus(_Conditioned):
    """``OpenAIProject.status``."""

    project_id: str | None = None
    spend: Spend | None = None
    spend_limit: SpendLimitStatus | None = None
    keys: int = 0
    alerts_fired: tuple[int, ...] = ()
    forecast_alert_fired: bool = False
    failed_attempts: int = 0
    last_failure_time: datetime | None = None
    conditions: tuple[Condition, ...] = ()
    observed_generation: int | None = None
    spend_alerts: tuple[SpendAlertRecord, ...] = ()
    """The OpenAI spend alerts this operator created (and so owns), by threshold."""
    members: tuple[MemberStatus, ...] = ()
    models: ModelsStatus | None = None
    service_tiers: ServiceTiersStatus | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ProjectStatus:
        """Read ``OpenAIProject.status``; missing or empty status gives the initial state."""
        raw = raw or {}
        spend, limit = _mapping(raw, "spend"), _mapping(raw, "spendLimit")
        return cls(
            project_id=_str(raw, "projectId"),
            spend=Spend.from_dict(spend) if spend else None,
            spend_limit=SpendLimitStatus.from_dict(limit) if limit else None,
            keys=_int(raw, "keys", 0) or 0,
            alerts_fired=tuple(int(t) for t in raw.get("alertsFired") or ()),
            forecast_alert_fired=bool(raw.get("forecastAlertFired")),
            failed_attempts=_int(raw, "failedAttempts", 0) or 0,
            last_failure_time=parse_time(raw.get("lastFailureTime")),
            conditions=tuple(conditions_from_list(raw.get("conditions"))),
            observed_generation=_int(raw, "observedGeneration"),
            spend_alerts=tuple(
                record for record in (SpendAlertRecord.from_dict(r) for r in raw.get("spendAlerts") or ())
                if record is not None
            ),
            members=tuple(
                member for member in (MemberStatus.from_dict(m) for m in raw.get("members") or ())
                if member is not None
            ),
            models=ModelsStatus.from_dict(_mapping(raw, "models")) if _mapping(raw, "models") else None,
            service_tiers=ServiceTiersStatus.from_dict(_mapping(raw, "serviceTiers"))
            if _mapping(raw, "serviceTiers") else None,
        )

    def to_patch(self) -> dict[str, Any]:
        """Render every field for ``patch.status`` (``None`` clears a field in a merge patch)."""
        return {
            "projectId": self.project_id,
            "failedAttempts": self.failed_attempts,
            "lastFailureTime": _time(self.last_failure_time),
            "spend": self.spend.to_dict() if self.spend else None,
            "spendLimit": self.spend_limit.to_dict() if self.spend_limit else None,
            "keys": self.keys,
            "alertsFired": list(self.alerts_fired),
            "forecastAlertFired": self.forecast_alert_fired or None,
            "conditions": conditions_to_list(self.conditions),
            "observedGeneration": self.observed_generation,
            "spendAlerts": [record.to_dict() for record in self.spend_alerts],
            "members": [member.to_dict() for member in self.members],
            "models": self.models.to_dict() if self.models else None,
            "serviceTiers": self.service_tiers.to_dict() if self.service_tiers else None,
        }
