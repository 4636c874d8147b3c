"""The pydantic base shared by the spec models: frozen, camelCase aliases, unknown fields ignored.

Unknown fields are ignored rather than rejected because the apiserver already prunes fields the CRD
does not know; ignoring keeps an older operator working against a newer CRD.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Base for every spec model; construct from Python with snake_case or camelCase names."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        str_strip_whitespace=False,
    )
