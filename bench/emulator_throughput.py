"""Admin API throughput of the emulator on loopback.

Starts ``python -m openai_operator emulator`` in its own process (so the load generator does not
share its interpreter), seeds a few projects and service accounts, then drives each scenario with
``--concurrency`` keep-alive connections for ``--seconds`` and reports requests per second and
latency percentiles. No faults are injected. With ``--write-readme`` the results replace the
emulator section of ``bench/README.md`` (other sections are kept as they are).

    .venv/bin/python bench/emulator_throughput.py --seconds 5 --concurrency 16 --write-readme
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import queue
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

README = Path(__file__).with_name("README.md")
START, END = "<!-- emulator-bench:start -->", "<!-- emulator-bench:end -->"


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_emulator(admin_key: str) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, OPENAI_ADMIN_KEY=admin_key)
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    line = lines.get(timeout=60)
    if not line.startswith("emulator listening on "):
        proc.kill()
        raise RuntimeError(f"unexpected first line from the emulator: {line!r}")
    return proc, line.strip().removeprefix("emulator listening on ") + "/v1"


Call = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def run(session: aiohttp.ClientSession, name: str, call: Call, seconds: float, concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status = await call(session, w * 1_000_000 + i)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status >= 400:
                errors += 1
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return Result(name, len(latencies), errors, time.perf_counter() - started, latencies)


async def bench(base: str, admin_key: str, seconds: float, concurrency: int) -> list[Result]:
    headers = {"Authorization": f"Bearer {admin_key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base + "/", headers=headers, connector=connector) as s:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with s.post(path, json=body) as r:
                r.raise_for_status()
                data: dict[str, Any] = await r.json()
                return data

        projects = [(await post("organization/projects", {"name": f"bench-{i}"}))["id"] for i in range(8)]
        for pid in projects:
            for j in range(20):
                await post(f"organization/projects/{pid}/service_accounts", {"name": f"k8s.bench.key{j}.r1"})

        async def get(path: str) -> int:
            async with s.get(path) as r:
                await r.read()
                return r.status

        async def retrieve(_s: aiohttp.ClientSession, i: int) -> int:
            return await get(f"organization/projects/{projects[i % len(projects)]}")

        async def list_sas(_s: aiohttp.ClientSession, i: int) -> int:
            return await get(f"organization/projects/{projects[i % len(projects)]}/service_accounts?limit=20")

        async def list_keys(_s: aiohttp.ClientSession, i: int) -> int:
            return await get(f"organization/projects/{projects[i % len(projects)]}/api_keys?limit=20")

        async def create_delete(_s: aiohttp.ClientSession, i: int) -> int:
            pid = projects[i % len(projects)]
            async with s.post(f"organization/projects/{pid}/service_accounts", json={"name": f"k8s.b.c{i}.r1"}) as r:
                body = await r.json()
                if r.status != 200:
                    return r.status
            async with s.delete(f"organization/projects/{pid}/service_accounts/{body['id']}") as r:
                await r.read()
                return r.status

        scenarios: list[tuple[str, Call]] = [
            ("GET project (retrieve)", retrieve),
            ("GET service_accounts (list, 20/page)", list_sas),
            ("GET api_keys (list, 20/page)", list_keys),
            ("POST+DELETE service account (2 requests)", create_delete),
        ]
        await run(s, "warm-up", retrieve, 0.5, concurrency)
        async with s.delete(base.removesuffix("/v1") + "/_emulator/calls") as r:
            r.raise_for_status()
        results = []
        for name, call in scenarios:
            result = await run(s, name, call, seconds, concurrency)
            if call is create_delete:
                result.requests *= 2
            results.append(result)
        # Cross-check the client's count against the emulator's own per-route counters.
        async with s.get(base.removesuffix("/v1") + "/_emulator/calls", params={"kind": "admin"}) as r:
            counted = sum(c["count"] for c in (await r.json())["calls"])
        sent = sum(r.requests for r in results)
        if counted != sent:
            raise RuntimeError(f"the emulator counted {counted} admin requests but the client sent {sent}")
        return results


def table(results: list[Result]) -> str:
    rows = [
        "| scenario | requests | errors | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(f"| {r.name} | {r.requests} | {r.errors} | {r.rps:,.0f} | {r.pct(0.5):.1f} | {r.pct(0.99):.1f} |")
    return "\n".join(rows)


def write_readme(results: list[Result], args: argparse.Namespace) -> None:
    section = "\n".join(
        [
            "## Emulator: Admin API throughput",
            "",
            START,
            f"Measured {time.strftime('%Y-%m-%d')} with `.venv/bin/python bench/emulator_throughput.py "
            f"--seconds {args.seconds:g} --concurrency {args.concurrency} --write-readme`: the emulator in its own "
            f"process (`openai-emulator`), an aiohttp client with {args.concurrency} keep-alive "
            f"connections on loopback, no injected faults. Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs shared with the load generator. Target: at least 1,000 requests/s.",
            "",
            table(results),
            "",
            f"Mean over scenarios: **{statistics.mean(r.rps for r in results):,.0f} requests/s**. "
            "The POST+DELETE row counts both requests; each create mints a 167-character key. The "
            "script checks that the emulator's own call counters (`GET /_emulator/calls`) saw exactly the "
            "requests the client counted.",
            END,
        ]
    )
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    pattern = re.compile(r"## Emulator: Admin API throughput\n\n" + re.escape(START) + r".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text if text.endswith("\n") else text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each scenario")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--write-readme", action="store_true", help="update the emulator section of bench/README.md")
    args = parser.parse_args()
    admin_key = "sk-admin-" + secrets.token_urlsafe(48)
    proc, base = start_emulator(admin_key)
    try:
        results = asyncio.run(bench(base, admin_key, args.seconds, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(table(results))
    print(f"mean: {statistics.mean(r.rps for r in results):,.0f} requests/s")
    if args.write_readme:
        write_readme(results, args)
        print(f"updated {README}")


if __name__ == "__main__":
    main()
