"""The operator image without a container engine: what the Dockerfile's final stage would hold is built
the same way (the lock file into a clean venv, then the operator's wheel without dependencies), and
checked: the entry point runs, and neither the emulator nor the local stack nor the tests are there."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_THE_IMAGE = ("openai_emulator", "openai_devstack", "tests", "bench")


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


def _final_stage(dockerfile: str) -> list[str]:
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)
    return [line.strip() for line in stages[-1].splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_is_multi_stage_pinned_locked_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1)), \
        "the base is an exact version (or a digest), never a moving tag"
    assert text.count("\nFROM ") + text.startswith("FROM ") == 2
    assert "--require-hashes --no-deps -r /src/requirements.lock" in text, "dependencies come from the lock"
    assert "--require-hashes --no-deps -r /src/build-requirements.lock" in text, "the build tools are locked too"
    assert "--no-build-isolation" in text
    final = _final_stage(text)
    assert any(line.startswith("USER 65532") for line in final)
    assert [line for line in final if line.startswith("COPY")] == ["COPY --from=build /opt/operator /opt/operator"]
    assert any("pip uninstall -y pip setuptools wheel" in line for line in final), "no installer in the final stage"
    assert final[-1] == 'ENTRYPOINT ["openai-operator", "run"]'


def test_the_lock_pins_every_runtime_dependency() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in project["dependencies"]}
    pinned = {m.group(1).lower().replace("_", "-")
              for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", (ROOT / "requirements.lock").read_text(), re.MULTILINE)}
    assert sorted(wanted - pinned) == []


def test_the_runtime_wheel_in_a_clean_venv_runs_and_holds_no_emulator_or_local_stack(tmp_path: Path) -> None:
    # What the Dockerfile copies to /src, copied here: builds then leave nothing in the checkout.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "operator", src / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", src)
    wheel = next((tmp_path / "dist").glob("openai_operator-*.whl"))
    top = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"openai_operator"}

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    _run(pip, "install", "-q", "--require-hashes", "--no-deps", "-r", ROOT / "requirements.lock")
    # As the Dockerfile's build stage does: the locked build tools, then /src without build isolation.
    _run(pip, "install", "-q", "--require-hashes", "--no-deps", "-r", ROOT / "build-requirements.lock")
    _run(pip, "install", "-q", "--no-deps", "--no-build-isolation", src)
    _run(pip, "check")  # the lock satisfies every requirement of the operator
    _run(pip, "uninstall", "-q", "-y", "pip", "setuptools", "wheel", "packaging")  # the final stage has no installer
    help_text = _run(venv / "bin" / "openai-operator", "run", "--help").stdout
    assert "--spend-poll-interval" in help_text
    site = next((venv / "lib").glob("python3.*/site-packages"))
    present = sorted(p.name for p in site.iterdir() if p.name.split("-")[0] in NOT_IN_THE_IMAGE)
    assert present == []
    probe = _run(venv / "bin" / "python", "-c", "import importlib.util as u; "
                 "print([m for m in ('openai_emulator', 'openai_devstack') if u.find_spec(m)])")
    assert probe.stdout.strip() == "[]"
    # Importing every operator module works without the test tools (nothing reaches for them lazily either).
    _run(venv / "bin" / "python", "-c",
         "import pkgutil, importlib, openai_operator as p\n"
         "[importlib.import_module(m.name) for m in pkgutil.walk_packages(p.__path__, 'openai_operator.')]")
