"""Every shipped item folder has its own tests, and they are collected with this package
(see conftest.py); this module checks the first half of that promise."""

from tests.kiosk.items.conftest import ITEMS, item_test_files


def test_every_item_folder_brings_its_tests():
    folders = {p.name for p in ITEMS.iterdir() if (p / "item.toml").is_file()}
    tested = {p.parent.parent.name for p in item_test_files()}
    assert len(folders) == 10
    assert folders == tested
