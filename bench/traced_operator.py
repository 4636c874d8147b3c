"""``openai-operator`` under tracemalloc, for ``bench/scale.py --tracemalloc``: where the memory goes.

Runs the operator's own CLI with ``tracemalloc`` started first (frames: 1, so the overhead stays
tolerable); ``SIGUSR1`` writes the live allocations grouped by file and by package to the path in
``OPENAI_OPERATOR_TRACEMALLOC_OUT`` (JSON). Not part of the product: a measuring instrument.
"""

from __future__ import annotations

import json
import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType


def _package(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    for name in ("openai_operator", "asyncio", "json", "ssl", "http"):
        if name in parts:
            return name
    return parts[-1] if parts else filename


def _dump(_signum: int, _frame: FrameType | None) -> None:
    snapshot = tracemalloc.take_snapshot()
    by_file = snapshot.statistics("filename")
    by_line = snapshot.statistics("lineno")
    packages: dict[str, int] = {}
    for stat in by_file:
        name = _package(stat.traceback[0].filename)
        packages[name] = packages.get(name, 0) + stat.size
    out = {
        "traced_mb": round(sum(s.size for s in by_file) / 2**20, 1),
        "by_package_mb": {k: round(v / 2**20, 2) for k, v in sorted(packages.items(), key=lambda kv: -kv[1])[:25]},
        "top_lines": [{"where": f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                       "mb": round(s.size / 2**20, 2), "blocks": s.count} for s in by_line[:40]],
    }
    Path(os.environ["OPENAI_OPERATOR_TRACEMALLOC_OUT"]).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    tracemalloc.start(1)
    signal.signal(signal.SIGUSR1, _dump)
    from openai_operator.cli import main

    main()
