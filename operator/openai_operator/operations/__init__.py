"""The operator's work: carry out the plans of ``reconcile`` through the adapters.

Operations know nothing of Kopf. They take typed inputs and a :class:`~openai_operator.deps.Deps`,
and return an :class:`Outcome`: the status to record, the Events to post, and the error (if any)
that the handler maps to Kopf once the status is saved, so a failure is never lost from status.
"""

from openai_operator.operations.outcome import Note, Outcome

__all__ = ["Note", "Outcome"]
