"""`openai-devstack up|env|down`: a newcomer's stack in the background, reachable through
the env file, and gone after ``down``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "openai_devstack"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_writes_a_usable_env_file_and_down_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    up = subprocess.run([*CLI, "up", "--state-dir", str(state)],
                        capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stderr
        env_file = state / "env"
        assert f"source {env_file}" in up.stdout
        exports = env_file.read_text()
        for name in ("KUBECONFIG", "VAULT_ADDR", "VAULT_TOKEN", "OPENAI_BASE_URL", "OPENAI_ADMIN_KEY", "PATH"):
            assert f"export {name}=" in exports

        env_cmd = subprocess.run([*CLI, "env", "--state-dir", str(state)],
                                 capture_output=True, text=True, timeout=60, check=True)
        assert env_cmd.stdout == exports

        script = (
            f"source {env_file} && kubectl get namespace default -o name && bao kv put -mount=secret probe x=1 "
            ">/dev/null && bao kv get -mount=secret -field=x probe && echo && "
            'python -c "import os,httpx;print(httpx.get(os.environ[\'OPENAI_BASE_URL\']+\'/organization/projects\','
            "headers={'Authorization':'Bearer '+os.environ['OPENAI_ADMIN_KEY']}).status_code)\""
        )
        used = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
        assert used.returncode == 0, used.stderr
        assert used.stdout.split() == ["namespace/default", "1", "200"]

        again = subprocess.run([*CLI, "up", "--state-dir", str(state)],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode != 0
        assert "already runs" in again.stderr
        groups = [p["pgid"] for p in json.loads((state / "processes.json").read_text())["processes"]]
        assert len(groups) == 5
        assert all(_group_alive(g) for g in groups)
    finally:
        down = subprocess.run([*CLI, "down", "--state-dir", str(state)],
                              capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not any(_group_alive(g) for g in groups)
    assert not (state / "env").exists()


@pytest.mark.parametrize("command", ["env", "down"])
def test_env_and_down_without_a_stack(tmp_path: Path, command: str) -> None:
    result = subprocess.run([*CLI, command, "--state-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    if command == "env":
        assert result.returncode != 0
        assert "no stack" in result.stderr
    else:
        assert result.returncode == 0
