"""Typed, frozen views of ``OpenAIProject.spec`` and ``OpenAIKey.spec``.

The CRD schema rejects most bad input at ``kubectl apply`` time; parsing here repeats the checks
that matter for safety (so an object stored before a schema change cannot slip through), fills in
defaults the schema cannot express (names taken from ``metadata.name``, deletion policy depending on
adoption) and converts strings into useful types (durations into ``timedelta``). Every failure is a
:class:`~openai_operator.errors.SpecError` naming the field path, e.g. ``spec.rotation.every``,
which the handlers turn into ``Ready=False/InvalidSpec`` without retrying.

Pure: no I/O beyond reading the local time-zone database to check ``rotation.timeZone``.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from croniter import CroniterBadDateError, CroniterError, croniter
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator, model_validator

from openai_operator.errors import SpecError
from openai_operator.model._base import SpecModel
from openai_operator.model.durations import parse_duration
from openai_operator.model.selectors import LabelSelector, selector_matches

__all__ = [
    "DEFAULT_ALERT_THRESHOLDS",
    "DEFAULT_GRACE_PERIOD",
    "MAX_SECRET_ANNOTATIONS_BYTES",
    "MIN_HARD_LIMIT_USD",
    "MIN_ROTATION_INTERVAL",
    "OPERATOR_SECRET_ANNOTATIONS",
    "OPERATOR_SECRET_LABELS",
    "RESERVED_PREFIX",
    "TZ_DATABASE_FOLDERS",
    "VAULT_RESERVED_FIELDS",
    "AllowedNamespaces",
    "BudgetEnforcement",
    "KeyBudget",
    "KeyDeletionPolicy",
    "KeyPolicy",
    "KeySpec",
    "Member",
    "MemberRole",
    "MembersPolicy",
    "OnBudgetExceeded",
    "ProjectBudget",
    "ProjectDeletionPolicy",
    "ProjectModels",
    "ProjectRef",
    "ProjectSpec",
    "RateLimit",
    "RestartKind",
    "RestartTarget",
    "Rotation",
    "SecretDestination",
    "SecretKeys",
    "ServiceTiers",
    "VaultDestination",
    "parse_key_spec",
    "parse_project_spec",
    "usd_to_cents",
    "vault_path_within",
]

DEFAULT_ALERT_THRESHOLDS: tuple[int, ...] = (50, 80, 100)
MIN_HARD_LIMIT_USD = 0.01
"""The smallest budget ``enforcement: HardLimit`` takes: OpenAI's limit is at least one cent (the CRD's rule agrees)."""
DEFAULT_GRACE_PERIOD = timedelta(hours=1)
MIN_ROTATION_INTERVAL = timedelta(seconds=10)
"""Shortest ``rotation.every`` accepted; short enough for demos, long enough not to hammer the API."""

# The same regular expressions appear as ``pattern`` in crds/*.yaml; tests/unit/test_crd_schema.py
# keeps the two in step.

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
SCOPE_PATTERN = r"^[a-z][a-z0-9_.:-]*$"
PROJECT_ID_PATTERN = r"^proj_[A-Za-z0-9_-]+$"
VAULT_PATH_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"
"""Vault mounts and paths: relative, no empty, ``.`` or ``..`` segments."""
VAULT_FIELD_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([0-9A-Za-z*?/,#-]+ ){4}[0-9A-Za-z*?/,#-]+)$"
"""Shape of a 5-field cron expression or macro; ``croniter`` then checks the values."""
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z][A-Za-z0-9_+-]*)*$"
"""Shape of an IANA zone name (``Europe/Berlin``, ``Etc/GMT+5``); the zone must also exist."""
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
"""A Kubernetes label or annotation key: an optional DNS-subdomain prefix and ``/``, then a name of
at most 63 characters. The prefix is also at most 253 characters (checked apart, in CEL as well)."""
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
"""A Kubernetes label value (at most 63 characters, checked apart)."""

RESERVED_PREFIX = "openai.operator.dev/"
"""Label and annotation keys under this prefix are the operator's own (ownership, key id, revision)."""
OPERATOR_SECRET_LABELS: Mapping[str, str] = {"app.kubernetes.io/managed-by": "openai-operator"}
"""Labels the operator sets on every Secret it writes, with their values: ``spec.secret.labels`` may
repeat them only with the same value (anything else would be overwritten without a word)."""
OPERATOR_SECRET_ANNOTATIONS: Mapping[str, str] = {"reloader.stakater.com/match": "true"}
"""Annotations the operator sets on every Secret it writes (same rule as the labels)."""
MAX_SECRET_ANNOTATIONS_BYTES = 131072
"""Keys plus values of ``spec.secret.annotations`` in UTF-8 bytes: half of the apiserver's 256 KiB
limit for all annotations of an object, leaving room for the operator's own."""
VAULT_RESERVED_FIELDS = frozenset({"project_id", "base_url"})
"""Fields the Vault destination writes next to the key (``stores.vault.vault_data``); ``spec.vault.field``
may not name one of them, or the key would be overwritten in the same write."""
TZ_DATABASE_FOLDERS = (
    "Africa",
    "America",
    "America/Argentina",
    "America/Indiana",
    "America/Kentucky",
    "America/North_Dakota",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Brazil",
    "Canada",
    "Chile",
    "Etc",
    "Europe",
    "Indian",
    "Mexico",
    "Pacific",
    "US",
)
"""Folders of the tz database, which look like zone names but are not; the CRD refuses them by name
(the parser refuses anything ``zoneinfo`` cannot load, these included)."""

_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_PATTERN)
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_MODEL = re.compile(MODEL_PATTERN)
_SCOPE = re.compile(SCOPE_PATTERN)
_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_VAULT_PATH = re.compile(VAULT_PATH_PATTERN)
_VAULT_FIELD = re.compile(VAULT_FIELD_PATTERN)
_CRON = re.compile(CRON_PATTERN)
_TIME_ZONE = re.compile(TIME_ZONE_PATTERN)
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)
_RANDOM_CRON_FIELD = re.compile(r"^r(\(\d+-\d+\))?(/\d+)?$")
_CRON_REFERENCE = datetime(2001, 1, 1)


def _matching(pattern: re.Pattern[str], what: str, max_length: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
DnsSubdomain = Annotated[str, _matching(_DNS_SUBDOMAIN, "DNS subdomain name", 253)]
DnsLabel = Annotated[str, _matching(_DNS_LABEL, "DNS label", 63)]
EnvName = Annotated[str, _matching(_ENV_NAME, "environment-variable-like key", 253)]
ModelName = Annotated[str, _matching(_MODEL, "model name", 128)]
Scope = Annotated[str, _matching(_SCOPE, "scope", 64)]
Percent = Annotated[int, Field(ge=1, le=1000)]
PositiveLimit = Annotated[int, Field(ge=1)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


def _thresholds(values: tuple[int, ...]) -> tuple[int, ...]:
    if list(values) != sorted(set(values)):
        raise ValueError("must be unique and in ascending order")
    return values


Thresholds = Annotated[tuple[Percent, ...], Field(max_length=10), AfterValidator(_thresholds)]


class ProjectDeletionPolicy(StrEnum):
    """What deleting an OpenAIProject does upstream (OpenAI projects cannot be deleted)."""

    ARCHIVE = "Archive"
    RETAIN = "Retain"


class KeyDeletionPolicy(StrEnum):
    """What deleting an OpenAIKey does to its credentials."""

    REVOKE = "Revoke"
    RETAIN = "Retain"


class BudgetEnforcement(StrEnum):
    """``Alert`` reports only; ``HardLimit`` also sets OpenAI's project spend limit."""

    ALERT = "Alert"
    HARD_LIMIT = "HardLimit"


class OnBudgetExceeded(StrEnum):
    """``Alert`` reports only; ``Revoke`` revokes the key until the next budget period."""

    ALERT = "Alert"
    REVOKE = "Revoke"


class RestartKind(StrEnum):
    """Workload kinds that can be restarted after a rotation."""

    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"


# --- OpenAIProject ------------------------------------------------------------------------------


class ProjectBudget(SpecModel):
    """``spec.budget`` of a project."""

    monthly_usd: float = Field(alias="monthlyUSD", gt=0)
    alert_thresholds: Thresholds = DEFAULT_ALERT_THRESHOLDS
    enforcement: BudgetEnforcement = BudgetEnforcement.ALERT
    alert_emails: tuple[Email, ...] = Field(default=(), max_length=10)

    @property
    def monthly_cents(self) -> int:
        """The budget in whole cents, the unit of OpenAI's spend limits and alerts."""
        return usd_to_cents(self.monthly_usd)

    @model_validator(mode="after")
    def _limit_in_whole_cents(self) -> Self:
        if self.enforcement is BudgetEnforcement.HARD_LIMIT and self.monthly_usd < MIN_HARD_LIMIT_USD:
            raise _FieldError("monthlyUSD", "must be at least 0.01 with enforcement HardLimit: OpenAI's spend "
                                            "limit is a whole number of cents, at least one")
        return self


def usd_to_cents(usd: float) -> int:
    """Dollars to the integer cents OpenAI's spend limits and alerts take (rounded to the nearest cent)."""
    return round(usd * 100)


class RateLimit(SpecModel):
    """One ``spec.rateLimits[]`` entry; unset limits are left as OpenAI has them."""

    model: ModelName
    max_requests_per_minute: PositiveLimit | None = None
    max_tokens_per_minute: PositiveLimit | None = None
    max_requests_per_day: PositiveLimit | None = None
    max_images_per_minute: PositiveLimit | None = None
    max_audio_megabytes_per_minute: PositiveLimit | None = None
    batch_max_input_tokens_per_day: PositiveLimit | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> Self:
        if all(value is None for name, value in self if name != "model"):
            raise ValueError("at least one limit must be set")
        return self


class MemberRole(StrEnum):
    """A user's role in the project (OpenAI's project roles)."""

    OWNER = "owner"
    MEMBER = "member"


class MembersPolicy(StrEnum):
    """``Additive`` leaves project users added outside the resource alone; ``Exclusive`` removes them."""

    ADDITIVE = "Additive"
    EXCLUSIVE = "Exclusive"


MAX_MEMBERS = 100
"""Most ``spec.members`` entries (the CRD's maxItems; it bounds the CEL duplicate check)."""


def _lower(value: str) -> str:
    return value.lower()


MemberEmail = Annotated[Email, AfterValidator(_lower)]
"""An email address, case-folded: OpenAI matches addresses without regard to case, so the operator
compares and sends them in lower case."""


class Member(SpecModel):
    """One ``spec.members[]`` entry: a person who should be in the project with ``role``."""

    email: MemberEmail
    role: MemberRole = MemberRole.MEMBER


def _unique_emails(value: tuple[Member, ...]) -> tuple[Member, ...]:
    seen: set[str] = set()
    for member in value:
        if member.email in seen:
            raise ValueError(f"{member.email!r} is listed more than once (emails are compared without case)")
        seen.add(member.email)
    return value


def _unique_models(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("each model may be listed once")
    return value


ModelList = Annotated[tuple[ModelName, ...], Field(min_length=1, max_length=256), AfterValidator(_unique_models)]


class ProjectModels(SpecModel):
    """``spec.models``: exactly one of an allow list or a deny list of model ids."""

    allow: ModelList | None = None
    deny: ModelList | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.allow is None) == (self.deny is None):
            raise _FieldError("allow", "exactly one of spec.models.allow or spec.models.deny must be set")
        return self

    @property
    def mode(self) -> str:
        """OpenAI's ``mode``: ``allow_list`` or ``deny_list``."""
        return "allow_list" if self.allow is not None else "deny_list"

    @property
    def model_ids(self) -> tuple[str, ...]:
        """The listed models, in spec order."""
        return self.allow if self.allow is not None else (self.deny or ())


DEFAULT_TIERS = ("standard", "fast", "scale")
"""Values of ``spec.serviceTiers.default`` (SDK 3.57 ``ProjectServiceTierSettings.default``)."""
OPTIONAL_TIERS = ("flex", "fast", "ultrafast")
"""Tiers ``spec.serviceTiers.enabled`` may list besides ``all`` (SDK ``ProjectOptionalServiceTier``)."""


def _tiers(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if "all" in value and len(value) != 1:
        raise ValueError("'all' enables every tier and must be the only entry")
    bad = [t for t in value if t != "all" and t not in OPTIONAL_TIERS]
    if bad:
        raise ValueError(f"{bad[0]!r} is not one of all, {', '.join(OPTIONAL_TIERS)}")
    if len(set(value)) != len(value):
        raise ValueError("each tier may be listed once")
    return value


class ServiceTiers(SpecModel):
    """``spec.serviceTiers``: the project's default tier and the tiers it may use besides Standard.

    A field left out is not managed (OpenAI keeps its value); ``enabled: [all]`` is OpenAI's
    ``"all"`` (future tiers included) and ``enabled: []`` allows only Standard.
    """

    default: str | None = None
    enabled: Annotated[tuple[str, ...] | None, Field(max_length=4), AfterValidator(_tiers)] = None

    @field_validator("default")
    @classmethod
    def _default_tier(cls, value: str | None) -> str | None:
        if value is not None and value not in DEFAULT_TIERS:
            raise ValueError(f"{value!r} is not one of {', '.join(DEFAULT_TIERS)}")
        return value

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.default is None and self.enabled is None:
            raise _FieldError("default", "set default, enabled or both (an empty serviceTiers does nothing)")
        return self

    @property
    def enabled_tiers(self) -> str | tuple[str, ...] | None:
        """``enabled`` as OpenAI spells it: ``"all"`` or the list of tiers."""
        if self.enabled is None:
            return None
        return "all" if self.enabled == ("all",) else self.enabled


class AllowedNamespaces(SpecModel):
    """Namespaces that may mint keys: listed by name, or matched by a label selector."""

    names: frozenset[DnsLabel] = frozenset()
    selector: LabelSelector | None = None

    def allows(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether ``namespace`` (with its ``labels``) matches either the names or the selector."""
        return namespace in self.names or selector_matches(self.selector, labels)


class KeyPolicy(SpecModel):
    """``spec.keyPolicy``: who may mint keys for the project, how many, and how long they may live.

    The default policy allows no namespace at all, so a project is closed until its owner opens it.
    """

    allowed_namespaces: AllowedNamespaces = AllowedNamespaces()
    max_keys: int | None = Field(default=None, ge=1)
    max_rotation_interval: Duration | None = None
    """Keys must rotate at least this often (``every``, or a schedule's longest gap)."""
    min_rotation_interval: Duration | None = None
    """Keys may rotate at most this often (``every``, or a schedule's shortest gap)."""
    max_grace_period: Duration | None = None
    """Longest ``spec.rotation.gracePeriod`` a key may use."""

    @model_validator(mode="after")
    def _interval_bounds_ordered(self) -> Self:
        low, high = self.min_rotation_interval, self.max_rotation_interval
        if low is not None and high is not None and low > high:
            raise _FieldError("minRotationInterval", "must not be longer than maxRotationInterval")
        return self

    def allows_namespace(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether keys in ``namespace`` may use this project."""
        return self.allowed_namespaces.allows(namespace, labels)


class ProjectSpec(SpecModel):
    """A parsed ``OpenAIProject.spec`` with defaults applied."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    project_id: str | None = None
    deletion_policy: ProjectDeletionPolicy
    budget: ProjectBudget | None = None
    rate_limits: tuple[RateLimit, ...] = Field(default=(), max_length=64)
    key_policy: KeyPolicy = KeyPolicy()
    members: Annotated[tuple[Member, ...], Field(max_length=MAX_MEMBERS), AfterValidator(_unique_emails)] | None = None
    """``None`` when absent: the operator manages no users (``[]`` with ``Exclusive`` removes them all)."""
    members_policy: MembersPolicy = MembersPolicy.ADDITIVE
    models: ProjectModels | None = None
    service_tiers: ServiceTiers | None = None

    @model_validator(mode="after")
    def _exclusive_needs_members(self) -> Self:
        if self.members_policy is MembersPolicy.EXCLUSIVE and self.members is None:
            raise _FieldError("membersPolicy", "Exclusive needs spec.members (it would remove every user of the "
                                               "project); list the members, or use [] to mean none on purpose")
        return self

    @property
    def adopted(self) -> bool:
        """Whether the project already exists upstream and is adopted rather than created."""
        return self.project_id is not None

    @field_validator("project_id")
    @classmethod
    def _project_id_shape(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 64 or not _PROJECT_ID.fullmatch(value)):
            raise ValueError(f"{value!r} is not an OpenAI project id (proj_...)")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _unique_models(cls, value: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        seen: set[str] = set()
        for limit in value:
            if limit.model in seen:
                raise ValueError(f"model {limit.model!r} is listed more than once")
            seen.add(limit.model)
        return value


# --- OpenAIKey ----------------------------------------------------------------------------------


class ProjectRef(SpecModel):
    """``spec.projectRef``: the cluster-scoped OpenAIProject the key belongs to."""

    name: DnsSubdomain


def _metadata_key_problem(key: str) -> str | None:
    """Why ``key`` is not a label/annotation key the apiserver accepts, or ``None`` when it is one."""
    prefix = key.rpartition("/")[0]
    if len(prefix) > 253 or not _LABEL_KEY.fullmatch(key):
        return (
            f"{key!r} is not a valid key: an optional DNS-subdomain prefix (at most 253 characters) and '/', "
            "then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return None


def _operator_keys(value: Mapping[str, str], operators: Mapping[str, str]) -> None:
    reserved = sorted(k for k in value if k.startswith(RESERVED_PREFIX))
    if reserved:
        raise ValueError(f"keys under {RESERVED_PREFIX} are managed by the operator: {', '.join(reserved)}")
    for key, wanted in operators.items():
        if key in value and value[key] != wanted:
            raise ValueError(f"{key!r} is set by the operator itself (to {wanted!r}); remove it")


def _labels(value: dict[str, str]) -> dict[str, str]:
    _operator_keys(value, OPERATOR_SECRET_LABELS)
    for key, item in value.items():
        problem = _metadata_key_problem(key)
        if problem:
            raise ValueError(problem)
        if len(item) > 63 or not _LABEL_VALUE.fullmatch(item):
            raise ValueError(
                f"the value of {key!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
    return value


def _annotations(value: dict[str, str]) -> dict[str, str]:
    _operator_keys(value, OPERATOR_SECRET_ANNOTATIONS)
    for key in value:
        problem = _metadata_key_problem(key)
        if problem:
            raise ValueError(problem)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
    if size > MAX_SECRET_ANNOTATIONS_BYTES:
        raise ValueError(f"keys and values may total at most {MAX_SECRET_ANNOTATIONS_BYTES} bytes (they have {size})")
    return value


Labels = Annotated[dict[str, str], Field(max_length=64), AfterValidator(_labels)]
Annotations = Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64),
                        AfterValidator(_annotations)]


class SecretKeys(SpecModel):
    """Data keys the Secret destination writes."""

    api_key: EnvName = "OPENAI_API_KEY"
    project_id: EnvName = "OPENAI_PROJECT_ID"
    base_url: EnvName = Field(default="OPENAI_BASE_URL", alias="baseURL")

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len({self.api_key, self.project_id, self.base_url}) != 3:
            raise ValueError("apiKey, projectId and baseURL must be different keys")
        return self


class SecretDestination(SpecModel):
    """``spec.secret``: a Secret in the key's namespace, owned by the OpenAIKey."""

    name: DnsSubdomain
    keys: SecretKeys = SecretKeys()
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


class VaultDestination(SpecModel):
    """``spec.vault``: a KV v2 secret; ``path`` must stay under the operator's prefix for the namespace."""

    mount: Annotated[str, _matching(_VAULT_PATH, "Vault mount", 128)] = "secret"
    path: Annotated[str, _matching(_VAULT_PATH, "Vault path", 512)]
    field: Annotated[str, _matching(_VAULT_FIELD, "Vault field name", 128)] = "api_key"

    @field_validator("field")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in VAULT_RESERVED_FIELDS:
            taken = ", ".join(sorted(VAULT_RESERVED_FIELDS))
            raise ValueError(f"{value!r} is written by the operator next to the key ({taken}); choose another field")
        return value


class RestartTarget(SpecModel):
    """A workload in the key's namespace restarted once after each new credential is delivered."""

    kind: RestartKind
    name: DnsSubdomain


class Rotation(SpecModel):
    """``spec.rotation``: exactly one of ``every`` or ``schedule`` (a 5-field cron, with ``timeZone``)."""

    every: Duration | None = None
    schedule: str | None = None
    time_zone: str | None = None
    grace_period: Duration = DEFAULT_GRACE_PERIOD
    restart_targets: tuple[RestartTarget, ...] = Field(default=(), max_length=16)

    @field_validator("every")
    @classmethod
    def _every_long_enough(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < MIN_ROTATION_INTERVAL:
            raise ValueError(f"must be at least {int(MIN_ROTATION_INTERVAL.total_seconds())}s")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value) > 128 or not _CRON.fullmatch(value) or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a 5-field cron expression such as '0 3 * * 1'")
        if any(_RANDOM_CRON_FIELD.fullmatch(part) for field in value.lower().split() for part in field.split(",")):
            raise ValueError(f"{value!r}: random fields (R) are not supported")
        try:
            croniter(value, _CRON_REFERENCE).get_next(datetime)
        except CroniterBadDateError as exc:
            raise ValueError(f"{value!r} never fires") from exc
        except CroniterError as exc:
            raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from exc
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        message = f"{value!r} is not an IANA time zone such as 'Europe/Berlin'"
        if len(value) > 64 or not _TIME_ZONE.fullmatch(value) or value in TZ_DATABASE_FOLDERS:
            raise ValueError(message)
        try:
            zoneinfo.ZoneInfo(value)
        except Exception as exc:  # zoneinfo raises OSError for a folder, ValueError, ZoneInfoNotFoundError, ...
            raise ValueError(message) from exc
        return value

    @field_validator("restart_targets")
    @classmethod
    def _unique_targets(cls, value: tuple[RestartTarget, ...]) -> tuple[RestartTarget, ...]:
        if len({(t.kind, t.name) for t in value}) != len(value):
            raise ValueError("each kind/name pair may appear only once")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.every is None) == (self.schedule is None):
            raise _FieldError("every", "exactly one of every or schedule must be set")
        if self.time_zone is not None and self.schedule is None:
            raise _FieldError("timeZone", "only allowed together with schedule")
        if self.every is not None and self.grace_period >= self.every:
            raise _FieldError("gracePeriod", "must be shorter than every")
        return self


class KeyBudget(SpecModel):
    """``spec.budget`` of a key (OpenAI itself has no per-key budgets)."""

    monthly_usd: float = Field(alias="monthlyUSD", gt=0)
    alert_thresholds: Thresholds = DEFAULT_ALERT_THRESHOLDS
    on_exceeded: OnBudgetExceeded = OnBudgetExceeded.ALERT


class KeySpec(SpecModel):
    """A parsed ``OpenAIKey.spec`` with defaults applied. At least one destination is set."""

    project_ref: ProjectRef
    scopes: tuple[Scope, ...] = Field(default=(), max_length=32)
    secret: SecretDestination | None = None
    vault: VaultDestination | None = None
    rotation: Rotation | None = None
    budget: KeyBudget | None = None
    deletion_policy: KeyDeletionPolicy = KeyDeletionPolicy.REVOKE

    @field_validator("scopes")
    @classmethod
    def _unique_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("scopes must be unique")
        return value

    @model_validator(mode="after")
    def _some_destination(self) -> Self:
        if self.secret is None and self.vault is None:
            raise _FieldError("secret", "at least one destination is required: spec.secret or spec.vault")
        return self


# --- parsing ------------------------------------------------------------------------------------


class _FieldError(ValueError):
    """A model-level check that blames one field (pydantic would otherwise blame the object)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.detail = message


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _spec_error(exc: ValidationError, prefix: str = "spec") -> SpecError:
    """The first validation error as a :class:`SpecError` naming its field path."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    raw = error.get("ctx", {}).get("error")
    if isinstance(raw, _FieldError):
        return SpecError(_path(prefix, (*loc, raw.field)), raw.detail)
    return SpecError(_path(prefix, loc), str(error["msg"]).removeprefix("Value error, "))


def _as_mapping(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "must be an object")
    return dict(spec)


def parse_project_spec(spec: Mapping[str, Any] | None, *, name: str) -> ProjectSpec:
    """Parse ``OpenAIProject.spec``; ``name`` is ``metadata.name``, the default OpenAI-side name.

    ``deletionPolicy`` defaults to ``Retain`` for adopted projects (``projectId`` set), because the
    operator did not create them, and to ``Archive`` otherwise.
    """
    data = _as_mapping(spec)
    data.setdefault("name", name)
    if "deletionPolicy" not in data:
        adopted = data.get("projectId") is not None
        data["deletionPolicy"] = ProjectDeletionPolicy.RETAIN if adopted else ProjectDeletionPolicy.ARCHIVE
    try:
        return ProjectSpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _spec_error(exc) from None


def parse_key_spec(spec: Mapping[str, Any] | None, *, name: str) -> KeySpec:
    """Parse ``OpenAIKey.spec``; ``name`` is ``metadata.name``, the default Secret name."""
    data = _as_mapping(spec)
    secret = data.get("secret")
    if isinstance(secret, Mapping) and "name" not in secret:
        data["secret"] = {**secret, "name": name}
    try:
        return KeySpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _spec_error(exc) from None


def vault_path_within(path: str, prefix: str) -> bool:
    """Whether the Vault ``path`` lies under ``prefix`` (e.g. ``openai/team-a/``), segment-wise.

    ``openai/team-a/x`` is within ``openai/team-a/``; ``openai/team-ab/x`` and ``openai/team-a/../b``
    are not. Empty segments and ``.``/``..`` never pass.
    """
    segments = path.strip("/").split("/")
    wanted = [s for s in prefix.strip("/").split("/") if s]
    if any(s in ("", ".", "..") for s in segments):
        return False
    return len(segments) > len(wanted) and segments[: len(wanted)] == wanted
