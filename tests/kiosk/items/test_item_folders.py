"""Every shipped item folder brings its own tests, and plain pytest discovery finds them:
`screens/items` is a test path, and each folder's tests are named so that pytest's default
(rootdir-based) import can load them side by side."""

import tomllib
from pathlib import Path

from kiosk.items.registry import ITEMS_ROOT

ROOT = ITEMS_ROOT.parents[1]


def item_folders() -> list[Path]:
    return sorted(p for p in ITEMS_ROOT.iterdir() if (p / "item.toml").is_file())


def test_every_item_folder_brings_its_tests():
    folders = item_folders()
    assert len(folders) == 10
    for folder in folders:
        tests = folder / "tests" / f"test_{folder.name}.py"
        assert tests.is_file(), f"{folder.name}: no tests/test_{folder.name}.py"


def test_item_tests_are_collected_by_the_whole_suite():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    testpaths = pyproject["tool"]["pytest"]["ini_options"]["testpaths"]
    assert ITEMS_ROOT.relative_to(ROOT).as_posix() in testpaths


def test_item_test_modules_can_be_imported_side_by_side():
    # A tests/__init__.py would make every folder's module `tests.test_<id>`, clashing with
    # the project's own `tests` package; without it each module is imported by its unique
    # file name, which is why the files are named after the item.
    names = []
    for folder in item_folders():
        assert not (folder / "tests" / "__init__.py").exists(), f"{folder.name}/tests/__init__.py"
        assert not (folder / "__init__.py").exists(), f"{folder.name}/__init__.py"
        names += [p.stem for p in (folder / "tests").glob("test_*.py")]
    assert len(names) == len(set(names)), "two item test modules share a file name"


def test_every_item_runs_its_journey_on_the_sandbox():
    # The fakes prove the rules; a journey on the real sandbox and simulators proves the
    # item works with the platform's real data and the real drivers.
    for folder in item_folders():
        source = (folder / "tests" / f"test_{folder.name}.py").read_text(encoding="utf-8")
        assert "kiosk_services" in source and "run_journey(" in source, folder.name
