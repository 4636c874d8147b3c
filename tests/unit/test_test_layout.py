"""The test tree itself: pytest imports test modules by basename (rootdir-relative, no packages), so
two modules with one name in different folders break the collection of the whole suite. ``make unit``
collects only tests/unit, so this check is here, where the quick loop sees it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique_across_folders() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert sorted(name for name, count in names.items() if count > 1) == []
