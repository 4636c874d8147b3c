"""The chaos test of issue 8 at full size: ``tests/chaos`` with a bigger ``CHAOS_*`` size.

    .venv/bin/python bench/chaos.py --keys 200 --projects 5 --seed 7

runs ``tests/chaos/test_chaos.py`` on the real local test bed (apiserver, controller manager, etcd,
OpenBao behind a TCP proxy, the emulator, the operator as a subprocess) and prints the run's report:
the seed, the counts it checked and every problem found. The exit status is pytest's. Defaults are
the issue's full size: 200 keys over 5 projects and 3 namespaces, 12 SIGKILLs over a 300 s chaos
phase. With 200 keys the key resync is 10 s (2 s in CI) so that two cores keep up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--projects", type=int, default=5)
    parser.add_argument("--namespaces", type=int, default=3)
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs of the operator (at least 10 at full size)")
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the chaos phase")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--rotate-every", default="30s")
    parser.add_argument("--grace", default="3s")
    parser.add_argument("--resync", default=None, help="key resync interval (default 2s, 10s above 50 keys)")
    parser.add_argument("--settle-timeout", type=float, default=None, help="default: 150s + 1.5s per key")
    args = parser.parse_args()
    env = {
        **os.environ,
        "CHAOS_KEYS": str(args.keys),
        "CHAOS_PROJECTS": str(args.projects),
        "CHAOS_NAMESPACES": str(args.namespaces),
        "CHAOS_KILLS": str(args.kills),
        "CHAOS_SECONDS": str(args.seconds),
        "CHAOS_ROTATE_EVERY": args.rotate_every,
        "CHAOS_GRACE": args.grace,
        "CHAOS_RESYNC": args.resync or ("10s" if args.keys > 50 else "2s"),
        "CHAOS_SETTLE_TIMEOUT": str(args.settle_timeout or 150 + 1.5 * args.keys),
    }
    if args.seed is not None:
        env["CHAOS_SEED"] = str(args.seed)
    command = [sys.executable, "-m", "pytest", "tests/chaos", "-s", "-q", "-p", "no:randomly"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
