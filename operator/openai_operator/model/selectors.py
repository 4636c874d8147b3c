"""Kubernetes label selectors (``matchLabels`` + ``matchExpressions``) and a pure matcher.

Semantics follow ``metav1.LabelSelector``: all terms are ANDed; an empty selector (``{}``) matches
everything; ``NotIn`` and ``DoesNotExist`` match objects that lack the key. Callers that mean
"nothing unless configured" (``keyPolicy.allowedNamespaces``) model the absent selector as ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from openai_operator.model._base import SpecModel

__all__ = ["LabelSelector", "LabelSelectorRequirement", "SelectorOperator", "selector_matches"]


class SelectorOperator(StrEnum):
    """The four ``matchExpressions`` operators."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(SpecModel):
    """One ``matchExpressions`` term."""

    key: str = Field(min_length=1)
    operator: SelectorOperator
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        needs_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if not needs_values and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this term."""
        present = self.key in labels
        match self.operator:
            case SelectorOperator.IN:
                return present and labels[self.key] in self.values
            case SelectorOperator.NOT_IN:
                return not present or labels[self.key] not in self.values
            case SelectorOperator.EXISTS:
                return present
            case SelectorOperator.DOES_NOT_EXIST:
                return not present


class LabelSelector(SpecModel):
    """A label selector; ``LabelSelector()`` (``{}``) matches every set of labels."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every term of this selector."""
        return selector_matches(self, labels)


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy ``selector``; ``None`` (no selector at all) matches nothing."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    return all(term.matches(labels) for term in selector.match_expressions)
