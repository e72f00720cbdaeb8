"""`lint(path)`: everything wrong with an item folder (or a folder of items), each problem
naming its file, its line and the fix, for integrators and for CI.

The linter runs the loader's own checks, so an item that lints clean is one the kiosk will
load; on a folder of items it also checks what only shows across items (a government item
code used twice).
"""

from __future__ import annotations

from pathlib import Path

from kiosk.items.loader import Item, check_folder
from kiosk.items.manifest import MANIFEST_FILE, LintProblem

__all__ = ["LintProblem", "lint", "item_folders"]


def item_folders(root: Path) -> list[Path]:
    """Sub-folders of root that are meant to be items (not caches, not hidden, not `_x`)."""
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )


def lint(path: Path | str) -> list[LintProblem]:
    path = Path(path)
    if path.is_file() and path.name == MANIFEST_FILE:
        path = path.parent
    if not path.exists():
        return [LintProblem(str(path), 0, "no such file or folder", "give the path of an item folder")]
    if not path.is_dir():
        return [LintProblem(str(path), 0, "not an item folder", "give the folder that holds item.toml")]
    if (path / MANIFEST_FILE).is_file():
        return check_folder(path)[1]
    folders = item_folders(path)
    if not folders:
        return [
            LintProblem(
                str(path), 0, "no item folders here",
                "give an item folder (with item.toml) or the folder holding item folders",
            )
        ]
    problems: list[LintProblem] = []
    loaded: list[Item] = []
    for folder in folders:
        item, found = check_folder(folder)
        problems += found
        if item is not None:
            loaded.append(item)
    problems += _shared_codes(loaded)
    return problems


def _shared_codes(items: list[Item]) -> list[LintProblem]:
    first: dict[str, Item] = {}
    problems = []
    for item in items:
        other = first.setdefault(item.item_code, item)
        if other is not item:
            problems.append(
                LintProblem(
                    str(item.path / MANIFEST_FILE), _line_of(item, "item_code"),
                    f"item_code {item.item_code} is also used by {other.id}",
                    "each item needs its own government item code (check the catalogue)",
                )
            )
    return problems


def _line_of(item: Item, key: str) -> int:
    text = (item.path / MANIFEST_FILE).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(f"{key} ") or line.strip().startswith(f"{key}="):
            return number
    return 1
