"""Fixtures of the chaos test: the operator fixtures of ``tests/integration`` (re-exported, not
moved), plus an OpenBao behind a TCP proxy that the test can cut. ``kube``, ``vault``, ``kubectl``
and ``crds`` come from ``tests/conftest.py``.

The re-export imports ``integration/conftest.py`` a second time under another module name, so in a
session that runs both folders the chaos test gets its own instances of the session fixtures (its
own emulator, whose faults and call counters it may reset without touching the other tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from integration.conftest import *  # noqa: F403  (every operator fixture, whatever they come to need)
from proxy import TcpProxy
from testbed import VaultServer


@pytest.fixture
def vault_proxy(vault: VaultServer) -> Iterator[TcpProxy]:
    """A TCP proxy in front of OpenBao; the operator is pointed at it, the checks read OpenBao directly."""
    upstream = urlsplit(vault.address)
    assert upstream.hostname is not None, vault.address
    assert upstream.port is not None, vault.address
    with TcpProxy(upstream.hostname, upstream.port) as proxy:
        yield proxy
