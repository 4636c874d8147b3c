"""The reference pages cannot drift from their sources, and every reason has a troubleshooting entry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from openai_operator.model.reasons import Reason

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_generated_reference_pages_match_their_sources() -> None:
    """docs/reference/{crds,configuration,metrics}.md are what tools/docgen.py renders today."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "docgen.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_every_reason_has_a_troubleshooting_entry() -> None:
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    entries = set(re.findall(r"^### `([A-Za-z]+)`$", text, flags=re.MULTILINE))
    assert sorted(r.value for r in Reason if r.value not in entries) == []
    assert sorted(entries - {r.value for r in Reason}) == [], "entries for reasons that no longer exist"
