"""Typed views of the two custom resources, the conditions helper and the reasons catalogue.

Pure: nothing here performs I/O or imports Kopf, httpx or the Kubernetes client, so planners and
tests can use these types freely. Import from the submodules (``model.specs``, ``model.status``,
``model.conditions``, ``model.reasons``, ``model.naming``, ``model.selectors``).
"""
