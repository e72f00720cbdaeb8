"""Runs every item folder's own tests (screens/items/<item_id>/tests/test_*.py) as part of
tests/kiosk/items, so `pytest tests/kiosk/items` covers the SDK and all shipped items.

Integrators run one item's tests directly too: `pytest screens/items/<item_id>/tests`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ITEMS = Path(__file__).resolve().parents[3] / "screens" / "items"
ANCHOR = "test_item_folders.py"


def item_test_files() -> list[Path]:
    return sorted(ITEMS.glob("*/tests/test_*.py"))


class ItemFolderTests(pytest.Collector):
    """The test modules of every item folder, gathered under one node."""

    def collect(self):
        return [pytest.Module.from_parent(self, path=path) for path in item_test_files()]


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    # The anchor module collects as usual and brings the item folders' modules with it.
    if file_path.name == ANCHOR and file_path.parent == Path(__file__).parent:
        return ItemFolderTests.from_parent(parent, name="screens/items", path=ITEMS)
    return None
