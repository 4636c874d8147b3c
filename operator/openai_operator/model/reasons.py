"""The reasons catalogue: every machine-readable ``reason`` the operator writes.

Reasons appear in condition ``reason`` fields, in Events and in metrics labels, so they are
CamelCase, stable, and defined only here, each with one meaning. Grouped by where they are used.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


class Reason(StrEnum):
    """Condition and Event reasons. Values equal their names so ``Reason.ISSUED == "Issued"``."""

    # --- OpenAIKey Ready ------------------------------------------------------------------------
    ISSUED = "Issued"
    """A credential is stored in every destination and verified against the API."""
    ISSUING = "Issuing"
    """The first credential is being created; nothing usable has been delivered yet."""
    PROJECT_NOT_FOUND = "ProjectNotFound"
    """``spec.projectRef`` names no OpenAIProject (or an adopted project id is unknown upstream)."""
    PROJECT_NOT_READY = "ProjectNotReady"
    """The referenced OpenAIProject exists but is not Ready (no project id yet, archived, failing)."""
    NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed"
    """The project's ``keyPolicy.allowedNamespaces`` does not admit the key's namespace."""
    KEY_QUOTA_EXCEEDED = "KeyQuotaExceeded"
    """The project already has ``keyPolicy.maxKeys`` keys."""
    ROTATION_INTERVAL_TOO_LONG = "RotationIntervalTooLong"
    """The key rotates less often than the project's ``keyPolicy.maxRotationInterval`` allows."""
    VAULT_PATH_NOT_ALLOWED = "VaultPathNotAllowed"
    """``spec.vault.path`` is outside the prefix the operator allows for the key's namespace."""
    INVALID_SPEC = "InvalidSpec"
    """The spec fails a check the CRD schema cannot express; the message names the field."""
    DESTINATION_CONFLICT = "DestinationConflict"
    """The Secret or Vault path exists and is not owned by this key; it is never overwritten."""
    DESTINATION_UNAVAILABLE = "DestinationUnavailable"
    """Writing to a destination failed for a reason that may pass (Vault sealed, apiserver busy)."""
    ADMIN_API_UNAVAILABLE = "AdminAPIUnavailable"
    """The OpenAI Admin API timed out, answered 5xx or rate-limited us; retried with backoff."""
    ADMIN_API_REJECTED = "AdminAPIRejected"
    """The OpenAI Admin API refused the request (400/401/403); retrying will not help."""
    VERIFICATION_FAILED = "VerificationFailed"
    """The new key did not work against ``GET /v1/models``; it was not promoted."""
    REVOKED = "Revoked"
    """A credential was revoked on purpose: the key was deleted, its policy refused it, or an
    interrupted run's account was cleaned up (Events); the message names the service account."""
    RETAINED = "Retained"
    """``deletionPolicy: Retain``: the key's credentials and destinations were kept (renamed ``retained.*``)."""

    # --- OpenAIKey Degraded ---------------------------------------------------------------------
    REVOCATION_FAILED = "RevocationFailed"
    """A superseded credential could not be revoked yet; it is retried (the key itself is fine)."""
    FOLLOW_UPS_DONE = "FollowUpsDone"
    """Degraded=False: the restarts and revocations that had failed are done."""

    # --- OpenAIProject Ready --------------------------------------------------------------------
    CREATED = "Created"
    """The operator created the OpenAI project."""
    ADOPTED = "Adopted"
    """The project named by ``spec.projectId`` exists and is now managed."""
    ARCHIVED = "Archived"
    """The OpenAI project is archived (by deletion with ``Archive`` or outside the operator)."""
    DUPLICATE_PROJECT_ID = "DuplicateProjectId"
    """Another OpenAIProject already manages this OpenAI project id; this one changes nothing."""

    # --- OpenAIProject RateLimitsSynced ---------------------------------------------------------
    RATE_LIMITS_APPLIED = "RateLimitsApplied"
    """Every ``spec.rateLimits`` entry matches OpenAI's project rate limits."""
    RATE_LIMITS_FAILED = "RateLimitsFailed"
    """At least one rate limit could not be applied (unknown model, API error)."""
    NOT_CONFIGURED = "NotConfigured"
    """The spec asks for nothing here (no rate limits, no budget, no rotation)."""

    # --- OpenAIKey Rotating (why a new credential is being issued) ------------------------------
    SCHEDULED = "Scheduled"
    """``spec.rotation`` made the credential due."""
    MANUALLY_TRIGGERED = "ManuallyTriggered"
    """The ``openai.operator.dev/rotate`` annotation got a new value."""
    COMPROMISED = "Compromised"
    """The ``openai.operator.dev/revoke`` annotation got a new value: rotate and revoke at once."""
    UPSTREAM_KEY_MISSING = "UpstreamKeyMissing"
    """The recorded service account or key no longer exists in OpenAI."""
    DESTINATION_DRIFT = "DestinationDrift"
    """A destination no longer holds what was delivered (edited or deleted Secret, Vault path)."""
    SPEC_CHANGED = "SpecChanged"
    """A change (scopes, destinations) needs a new credential."""
    ROTATED = "Rotated"
    """Rotating=False: the last rotation finished; also the Event reason on promotion."""

    # --- Events only ----------------------------------------------------------------------------
    ORPHAN_REVOKED = "OrphanRevoked"
    """An operator-named service account without an OpenAIKey was deleted by the inventory."""
    PREVIOUS_REVOKED = "PreviousRevoked"
    """A previous credential reached ``revokeAt`` and its service account was deleted."""
    TARGETS_RESTARTED = "TargetsRestarted"
    """``spec.rotation.restartTargets`` were restarted after a new credential was delivered."""
    RESTART_FAILED = "RestartFailed"
    """A restart target could not be restarted (missing, forbidden); the credential is still live."""

    # --- OpenAIKey Ready: key policy ----------------------------------------------------------------
    ROTATION_INTERVAL_TOO_SHORT = "RotationIntervalTooShort"
    """The key rotates more often (``every``, or a schedule's shortest gap) than the project's
    ``keyPolicy.minRotationInterval`` or the operator's global minimum allows."""
    GRACE_PERIOD_TOO_LONG = "GracePeriodTooLong"
    """``spec.rotation.gracePeriod`` is longer than the project's ``keyPolicy.maxGracePeriod``."""

    # Spend and budgets
    WITHIN_BUDGET = "WithinBudget"
    """BudgetExceeded=False: spend this period is below every alert threshold."""
    BUDGET_THRESHOLD_CROSSED = "BudgetThresholdCrossed"
    """An alert threshold of ``spec.budget.alertThresholds`` was crossed (an Event, once per period)."""
    BUDGET_FORECAST_EXCEEDED = "BudgetForecastExceeded"
    """The month-end forecast passes the budget (an Event, once per period)."""
    BUDGET_EXCEEDED = "BudgetExceeded"
    """BudgetExceeded=True: spend reached the budget; for a key with ``onExceeded: Revoke`` also
    Ready=False, the credential removed from every destination and revoked until the next period."""

    # --- OpenAIProject BudgetSynced (and Events of the budget mirror) ------------------------------
    BUDGET_MIRRORED = "BudgetMirrored"
    """OpenAI's project spend limit and spend alerts match ``spec.budget`` (as far as it asks for them)."""
    BUDGET_MIRROR_FAILED = "BudgetMirrorFailed"
    """The Admin API refused a spend-limit or spend-alert call (4xx); the message says which. The
    project stays Ready; the mirror is retried at the next resync or spec change."""
    SPEND_LIMIT_SET = "SpendLimitSet"
    """Event: the operator set (or changed) OpenAI's hard spend limit of the project."""
    SPEND_LIMIT_REMOVED = "SpendLimitRemoved"
    """Event: the operator removed the hard spend limit it had set (HardLimit no longer asked for)."""
    SPEND_LIMIT_RELEASED = "SpendLimitReleased"
    """Event: a limit the operator had set was changed by someone else, and HardLimit is no longer
    asked for; it is left in place and no longer counted as the operator's."""
    SPEND_ALERTS_SYNCED = "SpendAlertsSynced"
    """Event: the operator created, updated or deleted its own spend alerts for ``alertEmails``."""

    # --- OpenAIIdentityProvider Ready (and its Events) -----------------------------------------------
    PROVIDER_SYNCED = "ProviderSynced"
    """Every OpenAI provider of the cluster holds the issuer, audience and the cluster's current JWKS."""
    JWKS_UPLOADED = "JwksUploaded"
    """Event: the cluster's signing keys changed and the new key set was uploaded to OpenAI."""
    ISSUER_UNAVAILABLE = "IssuerUnavailable"
    """The apiserver's ``/.well-known/openid-configuration`` or ``/openid/v1/jwks`` could not be read
    (RBAC on the non-resource URLs, or no service-account issuer configured)."""
    PROVIDER_LIMIT_REACHED = "ProviderLimitReached"
    """Every provider of the issuer holds 50 mappings and the organisation has 50 providers."""
    PROVIDER_ADDED = "ProviderAdded"
    """Event: the operator registered one more OpenAI provider for the issuer (the others are full)."""

    # --- OpenAIWorkloadIdentity Ready (and its Events) -----------------------------------------------
    MAPPED = "Mapped"
    """The service account, its federation rule and the ConfigMap exist and match the spec."""
    MAPPING = "Mapping"
    """The service account or the federation rule is being created (the pass saves between its steps)."""
    PROVIDER_NOT_READY = "ProviderNotReady"
    """The OpenAIIdentityProvider is missing, not Ready, or ambiguous (several exist: set ``spec.providerRef``)."""
    PROVIDER_FULL = "ProviderFull"
    """Every OpenAI provider of the issuer holds 50 mappings; a further one is being added (or cannot be)."""
    MAPPING_REPAIRED = "MappingRepaired"
    """Event: the federation rule or service account was deleted or edited outside the operator and put back."""
    WORKLOADS_PATCHED = "WorkloadsPatched"
    """Event: ``spec.workloads`` got the projected token volume and the environment (their pods roll)."""
    WORKLOAD_PATCH_FAILED = "WorkloadPatchFailed"
    """A workload of ``spec.workloads`` is missing or may not be patched (RBAC); the mapping itself works."""
    UNMAPPED = "Unmapped"
    """Event: the federation rule and the service account of a workload identity were deleted."""

    # --- OpenAIProject MembersSynced (and Events of the members mirror) ----------------------------
    MEMBERS_SYNCED = "MembersSynced"
    """Every ``spec.members`` entry is a project user with its role (and, with ``Exclusive``, nobody else is)."""
    INVITE_PENDING = "InvitePending"
    """MembersSynced=False: some members are not in the organisation yet; their invites are pending."""
    INVITE_EXPIRED = "InviteExpired"
    """A member's invite expired, was sent once more, and expired again: the member is ``Failed``
    (also the Event). Remove and re-add the entry, or invite the person by hand, to try again."""
    MEMBERS_SYNC_FAILED = "MembersSyncFailed"
    """The Admin API refused a project-user or invite call (4xx); the member's entry says which."""
    MEMBER_ADDED = "MemberAdded"
    """Event: an organisation user was added to the project with the role of ``spec.members``."""
    MEMBER_ROLE_CHANGED = "MemberRoleChanged"
    """Event: a project user's role was changed to the one ``spec.members`` asks for."""
    MEMBER_REMOVED = "MemberRemoved"
    """Event: a user left ``spec.members`` (or, with ``Exclusive``, was never in it) and was removed
    from the project (not from the organisation)."""
    INVITE_SENT = "InviteSent"
    """Event: a member not in the organisation was invited (role reader, scoped to this project)."""
    INVITE_RESENT = "InviteResent"
    """Event: a member's invite expired and was sent once more."""
    DRIFT_REPAIRED = "DriftRepaired"
    """Event: something the operator had set (a member, the model permissions, the service tiers)
    was changed outside it and has been set back."""

    # --- OpenAIProject ModelsSynced and ServiceTiersSynced ------------------------------------------
    MODELS_MIRRORED = "ModelsMirrored"
    """The project's model permissions are ``spec.models`` (also the Event when they were set)."""
    MODELS_REMOVED = "ModelPermissionsRemoved"
    """Event: ``spec.models`` was removed, so the model permissions the operator had set were deleted."""
    MODELS_MIRROR_FAILED = "ModelsMirrorFailed"
    """The Admin API refused the model-permissions call (4xx); retried at the next resync."""
    SERVICE_TIERS_MIRRORED = "ServiceTiersMirrored"
    """The project's service-tier settings are ``spec.serviceTiers`` (also the Event when set)."""
    SERVICE_TIERS_MIRROR_FAILED = "ServiceTiersMirrorFailed"
    """The Admin API refused the service-tier call (4xx, e.g. tiers the organisation may not use)."""
