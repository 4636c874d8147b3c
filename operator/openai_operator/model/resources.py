"""Names of the API the CRDs in ``crds/`` define: group, version, kinds, plurals, annotations."""

from __future__ import annotations

from typing import Final

__all__ = [
    "GROUP",
    "IDENTITY_PROVIDER_KIND",
    "IDENTITY_PROVIDER_PLURAL",
    "KEY_KIND",
    "KEY_PLURAL",
    "PROJECT_KIND",
    "PROJECT_PLURAL",
    "REVOKE_ANNOTATION",
    "ROTATE_ANNOTATION",
    "VERSION",
    "WORKLOAD_IDENTITY_KIND",
    "WORKLOAD_IDENTITY_PLURAL",
]

GROUP: Final = "openai.operator.dev"
VERSION: Final = "v1alpha1"
PROJECT_KIND: Final = "OpenAIProject"
PROJECT_PLURAL: Final = "openaiprojects"
KEY_KIND: Final = "OpenAIKey"
KEY_PLURAL: Final = "openaikeys"
IDENTITY_PROVIDER_KIND: Final = "OpenAIIdentityProvider"
IDENTITY_PROVIDER_PLURAL: Final = "openaiidentityproviders"
WORKLOAD_IDENTITY_KIND: Final = "OpenAIWorkloadIdentity"
WORKLOAD_IDENTITY_PLURAL: Final = "openaiworkloadidentities"

ROTATE_ANNOTATION: Final = f"{GROUP}/rotate"
"""Each new value rotates the key once, with the usual grace period for the old credential."""
REVOKE_ANNOTATION: Final = f"{GROUP}/revoke"
"""Each new value is a leak response: rotate, then revoke the old credential at once."""
