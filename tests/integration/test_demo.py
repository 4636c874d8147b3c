"""``openai-devstack demo --no-wait``: every step done, the job really happened, every series the
chart's Grafana dashboard queries is in a real scrape of the demo's operator, no key material in the
output, and nothing left running afterwards.

The demo starts its own stack (it does not use the session's fixtures): it is what ``make demo``
runs on a newcomer's machine, so the test runs it the same way, as a subprocess.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "charts" / "openai-operator" / "dashboards" / "openai-operator.json"
STEPS = 12
# As tests/unit/test_dashboard.py reads the dashboard's queries.
METRIC = re.compile(r"\b(openai_operator_[a-z_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
SAMPLE_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
KEY_SHAPE = re.compile(r"sk-(?:svcacct-|proj-|admin-)?[A-Za-z0-9_\-]{20,}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One run of the demo, shared by the checks below: (what it printed, its state folder)."""
    state = tmp_path_factory.mktemp("demo") / "state"
    result = subprocess.run([sys.executable, "-m", "openai_devstack", "demo", "--no-wait", "--state-dir", str(state)],
                            capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout, state


def _line(out: str, pattern: str) -> re.Match[str]:
    found = re.search(pattern, out, re.MULTILINE)
    assert found is not None, f"no line matching {pattern!r} in:\n{out}"
    return found


def test_every_step_is_reported_done_with_its_time_then_how_to_explore_and_stop(demo: tuple[str, Path]) -> None:
    out, state = demo
    done = re.findall(r"^  ✓  \[\s*(\d+)/(\d+)\] .+  done \((\d+\.\d)s\)$", out, re.MULTILINE)
    assert [(int(n), int(total)) for n, total, _ in done] == [(n, STEPS) for n in range(1, STEPS + 1)], out
    assert "✗" not in out
    assert f"all {STEPS} steps done in" in out
    _line(out, rf"^  source {re.escape(str(state.resolve() / 'env'))}; kubectl get openai -A$")
    _line(out, r"^  metrics: +http://127\.0\.0\.1:\d+/metrics$")
    _line(out, r"^  emulator state: +http://127\.0\.0\.1:\d+/_emulator/state$")
    _line(out, r"^stop:\n  Ctrl-C")
    assert out.rstrip().endswith(f"stopped and cleaned up (logs kept in {state.resolve() / 'logs'})")


def test_the_job_happened(demo: tuple[str, Path]) -> None:
    """Both keys Ready, the chart's RBAC as the operator's identity, a rotation and the leak response
    with the workload succeeding throughout, spend in ``kubectl get``, the 50 and 80 % alerts."""
    out, _ = demo
    _line(out, r"list secrets -A: no; patch deployments -n team-a: yes; patch deployments -n default: no")
    _line(out, r"OpenAIKey team-a/chat: Ready, r1 key_\w+ .* in Secret team-a/chat")
    _line(out, r"OpenAIKey team-a/etl: Ready, r1 key_\w+ .* in Vault secret/openai/team-a/etl")
    _line(out, r"rate limits in OpenAI: gpt-4o-mini 3000 rpm, gpt-4o 60 rpm")
    _line(out, r"OpenAIKey team-b/borrowed: Ready=False \(NamespaceNotAllowed\), nothing minted")
    _line(out, r"r1 key_\w+ → r2 key_\w+ .*promoted in")
    _line(out, r"pod template annotated openai\.operator\.dev/key\.chat=r2")
    rotation = _line(out, r"workload: (\d+) calls ok with r1, (\d+) so far with r2, (\d+) failed")
    assert int(rotation[1]) > 0
    assert int(rotation[2]) > 0
    assert rotation[3] == "0"
    _line(out, r"Event RevocationFailed: .*HTTP 503")
    _line(out, r"retried: r1 revoked .*it answers 401 now")
    _line(out, r"r3 key_\w+ .* in the Secret .*the leaked r2 key_\w+ answers 401 after")
    since = _line(out, r"workload: (\d+) calls ok since, (\d+) with r3, 0 failed")
    assert int(since[2]) > 0
    total = _line(out, r"workload: (\d+) calls ok, (\d+) failed, 3 keys used")
    assert int(total[1]) > 20
    assert total[2] == "0"

    _line(out, r"the 50 % threshold is crossed")
    _line(out, r"the 80 % threshold is crossed")
    assert "the 100 % threshold" not in out
    rising = _line(out, r"after each prompt: ([0-9. →]+) USD")
    values = [float(v) for v in rising[1].split(" → ")]
    assert values == sorted(values)
    assert values[0] == 0
    assert values[-1] == pytest.approx(1.7, abs=0.01)

    table = out.split("$ kubectl get openai -A\n", 1)[1].split("\nexplore:", 1)[0]
    row = next(line.split() for line in table.splitlines() if "openaiproject.openai.operator.dev/team-a" in line)
    header = next(line.split() for line in table.splitlines() if "PROJECT-ID" in line)
    columns = dict(zip(header[1:], row, strict=False))  # the project row has no NAMESPACE cell
    assert float(columns["SPEND"]) > 0
    assert columns["BUDGET"] == "2"
    assert float(columns["USED"]) >= 80
    keys = [line.split() for line in table.splitlines() if "openaikey.openai.operator.dev/" in line]
    assert {k[1].rsplit("/", 1)[1]: (k[3], k[4]) for k in keys} == {
        "chat": ("True", "Issued"), "etl": ("True", "Issued"), "borrowed": ("False", "NamespaceNotAllowed")}


def _samples(scrape: str) -> list[tuple[str, dict[str, str]]]:
    samples = []
    for line in scrape.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples.append((match[1], dict(SAMPLE_LABEL.findall(match[2] or ""))))
    return samples


def _satisfies(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        got = labels.get(name, "")
        ok = {"=": got == value, "!=": got != value,
              "=~": re.fullmatch(value, got) is not None, "!~": re.fullmatch(value, got) is None}[op]
        if not ok:
            return False
    return True


def test_every_series_the_dashboard_queries_is_in_the_demo_operators_scrape(demo: tuple[str, Path]) -> None:
    """The demo saves its operator's ``/metrics`` (scraped live, before it stops); every metric the
    dashboard queries has a sample there that matches the query's label selector."""
    out, state = demo
    scrape = (state / "metrics.prom").read_text()
    samples = _samples(scrape)
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = {(m[1], m[2] or "") for q in queries for m in METRIC.finditer(q)}
    assert used
    missing = sorted(f"{name}{{{selector}}}" if selector else name for name, selector in used
                     if not any(n == name and _satisfies(labels, MATCHER.findall(selector)) for n, labels in samples))
    assert missing == []
    present = len({name for name, _ in used})
    _line(out, rf"{present}/{present} present")


def test_no_key_material_in_the_output_and_nothing_left_running(demo: tuple[str, Path]) -> None:
    out, state = demo
    assert KEY_SHAPE.findall(out) == []
    for url in (_line(out, r"^  metrics: +(\S+)$")[1], _line(out, r"^  emulator state: +(\S+)$")[1]):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
    assert sorted(p.name for p in state.iterdir()) == ["logs", "metrics.prom"], \
        "only the logs and the scrape stay: no kubeconfig, token, CA or emulator state"


def test_by_default_it_keeps_running_until_ctrl_c_then_cleans_up(tmp_path: Path) -> None:
    """Without ``--no-wait`` the stack, the operator and the workload stay up for exploring (the
    printed metrics URL answers, ``source …/env; kubectl get openai -A`` works); SIGINT stops it all."""
    state = tmp_path / "state"
    demo = subprocess.Popen([sys.executable, "-m", "openai_devstack", "demo", "--state-dir", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("running; press Ctrl-C"):
                break
        out = "".join(lines)
        assert "press Ctrl-C" in out, out
        metrics = _line(out, r"^  metrics: +(\S+)$")[1]
        assert "openai_operator_rotations_total" in httpx.get(metrics, timeout=10).text
        explore = _line(out, r"^  (source \S+; kubectl get openai -A)$")[1]
        table = subprocess.run(["bash", "-c", explore], capture_output=True, text=True, timeout=60, check=True)
        assert "openaiproject.openai.operator.dev/team-a" in table.stdout
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130
    assert "stopped and cleaned up" in rest
    with pytest.raises(httpx.ConnectError):
        httpx.get(metrics, timeout=2)
    assert sorted(p.name for p in state.iterdir()) == ["logs", "metrics.prom"]
