"""The chaos test of issue 8 at CI size (``bench/chaos.py`` runs the full size through this test).

Keys over several projects and three namespaces are created, rotated (every, schedule, annotation),
leaked (revoke annotation), edited and deleted from a seeded schedule, while the Admin API and
verification (``GET /v1/models``) fail with 5xx, 429 + Retry-After, latency spikes and dropped
connections, OpenBao is cut off behind a proxy for a while, and the operator is SIGKILLed again and
again. After it settles, the emulator's and OpenBao's own state must show: no orphan service
account, every key Ready with its current, live key in every destination, every deleted key's
credentials revoked and its destinations gone, no superseded or leaked key still working, and no
key material in logs, Events or objects.
"""

from __future__ import annotations

import time

import pytest

from chaos.driver import ChaosRun, Size, seed_from_env
from harness import Emulator, OperatorProcess
from proxy import TcpProxy
from testbed import KubeCluster, Kubectl, VaultServer


@pytest.mark.timeout(3600)
def test_chaos_settles_with_no_orphan_no_dead_key_and_no_leak(
    kube: KubeCluster, kubectl: Kubectl, crds: list[str], emulator: Emulator, operator_factory: OperatorProcess,
    vault: VaultServer, vault_proxy: TcpProxy,
) -> None:
    size, seed = Size.from_env(), seed_from_env()
    print(f"\nchaos seed {seed} (CHAOS_SEED={seed} replays the schedule)", flush=True)  # noqa: T201
    operator_factory.env.update({
        "VAULT_ADDR": vault_proxy.address, "VAULT_TOKEN": vault.token,
        "OPENAI_OPERATOR_KEY_RESYNC_INTERVAL": size.resync,
    })
    run = ChaosRun(seed=seed, size=size, kubeconfig=kube.kubeconfig, kubectl=kubectl, emulator=emulator,
                   operator=operator_factory, vault=vault, proxy=vault_proxy)
    emulator.clear_faults()
    emulator.reset_calls()
    started = time.monotonic()
    try:
        operator_factory.start()
        operator_factory.wait_live()
        run.set_up()
        run.phases["set-up"] = time.monotonic() - started
        mark = time.monotonic()
        run.start_faults()
        run.start_watching()
        run.run_schedule()
        run.phases["chaos"] = time.monotonic() - mark
        mark = time.monotonic()
        run.settle()
        run.phases["settle"] = time.monotonic() - mark
        mark = time.monotonic()
        run.check()
        run.phases["checks"] = time.monotonic() - mark
    finally:
        run.stop_watching()
        emulator.clear_faults()
        vault_proxy.restore()
        report = run.report()
        print(report, flush=True)  # noqa: T201
        if operator_factory.process is not None and operator_factory.process.exited() is None:
            mark = time.monotonic()
            run.tear_down()
            print(f"tear-down {time.monotonic() - mark:.0f}s", flush=True)  # noqa: T201
    if run.problems:  # not a bare assert: its introspection would print the run's state, key values included
        pytest.fail(f"chaos seed {seed} found {len(run.problems)} problem(s):\n{report}", pytrace=False)
