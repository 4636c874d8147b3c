"""Fixtures of the chaos test: the operator fixtures of ``tests/integration`` (re-exported, not
moved, so both folders share one definition), plus an OpenBao behind a TCP proxy that the test can
cut. ``kube``, ``vault``, ``kubectl`` and ``crds`` come from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from chaos._proxy import TcpProxy
from integration.conftest import emulator, operator_factory, operator_logs  # noqa: F401  (fixtures)
from testbed import VaultServer


@pytest.fixture
def vault_proxy(vault: VaultServer) -> Iterator[TcpProxy]:
    """A TCP proxy in front of OpenBao; the operator is pointed at it, the checks read OpenBao directly."""
    upstream = urlsplit(vault.address)
    assert upstream.hostname is not None, vault.address
    assert upstream.port is not None, vault.address
    with TcpProxy(upstream.hostname, upstream.port) as proxy:
        yield proxy
