"""Adapter for the OpenAI Admin API: typed client, domain errors, retry policy.

Importing this package builds nothing; the operator constructs :class:`AdminClient` at startup
around an ``httpx.AsyncClient`` it owns (see :func:`new_http_client`).
"""

from openai_operator.openai.client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    AdminClient,
    RequestObserver,
    SupportsGetSecretValue,
    new_http_client,
)
from openai_operator.openai.errors import (
    AdminKeyError,
    ApiConflictError,
    ApiError,
    ApiErrorDetails,
    ApiNotFoundError,
    ApiPermanentError,
    ApiTransientError,
    KeyRejectedError,
    UnexpectedResponseError,
)
from openai_operator.openai.models import (
    CostBucket,
    CostResult,
    CreatedServiceAccount,
    IssuedKey,
    Project,
    ProjectApiKey,
    RateLimit,
    ServiceAccount,
    SpendAlert,
    SpendLimit,
)
from openai_operator.openai.retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "AdminClient",
    "AdminKeyError",
    "ApiConflictError",
    "ApiError",
    "ApiErrorDetails",
    "ApiNotFoundError",
    "ApiPermanentError",
    "ApiTransientError",
    "CostBucket",
    "CostResult",
    "CreatedServiceAccount",
    "IssuedKey",
    "KeyRejectedError",
    "Project",
    "ProjectApiKey",
    "RateLimit",
    "RequestObserver",
    "RetryPolicy",
    "ServiceAccount",
    "SpendAlert",
    "SpendLimit",
    "SupportsGetSecretValue",
    "UnexpectedResponseError",
    "new_http_client",
]
