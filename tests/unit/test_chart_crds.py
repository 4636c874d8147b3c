"""The Helm chart ships the CRDs in its own ``crds/`` folder (Helm installs them from there), while
``crds/`` at the top of the repository is the source every other test and ``kubectl apply`` use.

Two copies may exist, but never two versions: the chart's files must be byte-identical to the
repository's, and neither folder may have a CRD the other lacks. After editing a CRD, copy it:
``cp crds/*.yaml charts/openai-operator/crds/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT / "crds"
CHART = REPO_ROOT / "charts" / "openai-operator" / "crds"
FIX = "run: cp crds/*.yaml charts/openai-operator/crds/"


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.is_file())


def test_chart_has_the_same_crd_files() -> None:
    assert _names(SOURCE), "crds/ is empty"
    assert _names(CHART) == _names(SOURCE), f"the chart's CRD files differ from crds/; {FIX} (and remove extras)"


@pytest.mark.parametrize("name", _names(SOURCE))
def test_chart_crd_is_byte_identical(name: str) -> None:
    chart_file = CHART / name
    assert chart_file.is_file(), f"charts/openai-operator/crds/{name} is missing; {FIX}"
    assert chart_file.read_bytes() == (SOURCE / name).read_bytes(), (
        f"charts/openai-operator/crds/{name} differs from crds/{name}; {FIX}"
    )
