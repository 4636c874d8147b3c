"""The only package that imports Kopf: thin handlers, startup settings, and the error mapping.

Handlers are registered by :func:`openai_operator.handlers.lifecycle.run_operator` (not at import),
because timer intervals come from the operator's settings.
"""
