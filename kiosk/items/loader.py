"""Load one item folder: `item.toml`, the optional `hooks.py` (imported by path, never as a
package) and the optional `locales/` with the item's own strings.

`check_folder` collects every problem it can find (the linter shows them all at once);
`load_item` returns a ready `Item` or raises one typed `ItemError` carrying those problems.
Nothing here lets an exception from the item's files escape untyped: a kiosk that loads a
broken item must be able to leave it out and say why, not crash at start-up.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk import i18n
from kiosk.items.hooks import HOOK_PARAMS, ItemHooks, Strings
from kiosk.items.manifest import (
    HOOK_NAMES,
    MANIFEST_FILE,
    Kind,
    LintProblem,
    Manifest,
    ManifestError,
    check_manifest,
    key_lines,
    locate,
    parse_toml,
)

HOOKS_FILE = "hooks.py"
LOCALES_DIR = "locales"
_module_numbers = itertools.count(1)


@dataclass(frozen=True, eq=False)
class Item:
    """A loaded item: its manifest, its hooks (defaults where it has none), its strings."""

    path: Path
    manifest: Manifest
    hooks: ItemHooks = field(default_factory=ItemHooks)
    strings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # locale → key → text

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def item_code(self) -> str:
        return self.manifest.item_code

    @property
    def kind(self) -> Kind:
        return self.manifest.kind

    def strings_for(self, locale: str) -> Strings:
        return Strings(self.strings, locale)

    def __repr__(self) -> str:
        return f"Item({self.id}, {self.manifest.version}, {self.kind})"


class ItemError(Exception):
    """An item folder that cannot be used. `problems` name file, line and fix."""

    def __init__(self, folder: Path, problems: list[LintProblem]) -> None:
        self.folder = folder
        self.problems = problems
        first = str(problems[0]) if problems else "unusable item folder"
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


class ItemFolderError(ItemError):
    """Not a folder, or no item.toml in it."""


class ManifestInvalid(ItemError):
    """item.toml does not parse or does not validate."""


class HooksInvalid(ItemError):
    """hooks.py does not compile, does not import, or defines what the SDK does not know."""


class LocalesInvalid(ItemError):
    """locales/*.toml are missing a language, unreadable, or disagree with each other."""


def load_item(folder: Path | str) -> Item:
    item, problems = check_folder(folder)
    if item is None or problems:
        raise _classify(Path(folder), problems)
    return item


def _classify(folder: Path, problems: list[LintProblem]) -> ItemError:
    files = {Path(p.file).name for p in problems}
    if not folder.is_dir() or (MANIFEST_FILE in files and not (folder / MANIFEST_FILE).is_file()):
        return ItemFolderError(folder, problems)
    if MANIFEST_FILE in files:
        return ManifestInvalid(folder, problems)
    if HOOKS_FILE in files:
        return HooksInvalid(folder, problems)
    return LocalesInvalid(folder, problems)


def check_folder(folder: Path | str) -> tuple[Item | None, list[LintProblem]]:
    """Everything wrong with an item folder, and the Item if nothing is."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    if not folder.is_dir():
        return None, [LintProblem(str(folder), 0, "not a folder", "give the path of an item folder")]
    if not manifest_path.is_file():
        return None, [
            LintProblem(
                str(manifest_path), 0, "the item folder has no item.toml",
                "create item.toml (see the example in docs/items.md)",
            )
        ]
    problems: list[LintProblem] = []
    manifest: Manifest | None = None
    manifest_lines: dict[tuple, int] = {}
    try:
        data, text = parse_toml(manifest_path.read_bytes(), str(manifest_path))
        manifest_lines = key_lines(text)
        manifest = check_manifest(data, text, str(manifest_path), folder.name)
    except ManifestError as exc:
        problems += exc.problems
    except OSError as exc:
        problems.append(LintProblem(str(manifest_path), 0, f"cannot read: {exc.strerror}", "check the file's permissions"))
    item_id = manifest.id if manifest else folder.name

    strings, locale_problems = _load_locales(folder, item_id)
    problems += locale_problems
    hooks, hook_problems = _load_hooks(folder, manifest, manifest_lines, strings, item_id)
    problems += hook_problems
    if manifest is None or problems:
        return None, problems
    return Item(folder.resolve(), manifest, hooks, strings), []


# -- hooks.py --------------------------------------------------------------------------------


def _load_hooks(
    folder: Path,
    manifest: Manifest | None,
    manifest_lines: Mapping[tuple, int],
    strings: Mapping[str, Mapping[str, str]],
    item_id: str,
) -> tuple[ItemHooks, list[LintProblem]]:
    path = folder / HOOKS_FILE
    manifest_file = str(folder / MANIFEST_FILE)
    declared = list(manifest.hooks) if manifest else []
    hooks_line = locate(manifest_lines, ("hooks",))
    if not path.is_file():
        return ItemHooks(), [
            LintProblem(
                manifest_file, locate(manifest_lines, ("hooks", i)),
                f"hooks lists '{name}' but the folder has no hooks.py",
                f"create hooks.py defining {name}({', '.join(HOOK_PARAMS[name])}), "
                "or remove it from hooks",
            )
            for i, name in enumerate(declared)
        ]
    file = str(path)
    try:
        source = path.read_bytes().decode("utf-8")
        tree = ast.parse(source, filename=file)
    except UnicodeDecodeError:
        return ItemHooks(), [LintProblem(file, 1, "hooks.py is not valid UTF-8", "save it as UTF-8")]
    except SyntaxError as exc:
        return ItemHooks(), [
            LintProblem(file, exc.lineno or 1, f"Python syntax error: {exc.msg}", "fix the syntax on this line")
        ]
    except (OSError, ValueError) as exc:
        return ItemHooks(), [LintProblem(file, 1, f"cannot read hooks.py: {exc}", "check the file")]

    problems: list[LintProblem] = []
    defined: dict[str, int] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("_"):
            continue
        if node.name not in HOOK_PARAMS:
            problems.append(
                LintProblem(
                    file, node.lineno, f"'{node.name}' is not a hook the SDK knows",
                    f"use one of {', '.join(HOOK_NAMES)}, or rename it _{node.name} if it is a helper",
                )
            )
            continue
        defined[node.name] = node.lineno
        expected = HOOK_PARAMS[node.name]
        if isinstance(node, ast.AsyncFunctionDef):
            problems.append(
                LintProblem(file, node.lineno, f"hook {node.name} is async", "hooks are plain functions: remove async")
            )
        args = node.args
        positional = len(args.posonlyargs) + len(args.args)
        if positional != len(expected) or args.vararg or args.kwonlyargs and any(
            d is None for d in args.kw_defaults
        ):
            problems.append(
                LintProblem(
                    file, node.lineno, f"hook {node.name} has the wrong parameters",
                    f"define it as def {node.name}({', '.join(expected)})",
                )
            )
    for name, line in defined.items():
        if manifest is not None and name not in declared:
            problems.append(
                LintProblem(
                    file, line, f"hooks.py defines {name} but item.toml does not list it",
                    f"add \"{name}\" to hooks in item.toml",
                )
            )
    for i, name in enumerate(declared):
        if name not in defined:
            problems.append(
                LintProblem(
                    manifest_file, locate(manifest_lines, ("hooks", i)) if manifest_lines else hooks_line,
                    f"hooks lists '{name}' but hooks.py does not define it",
                    f"define {name}({', '.join(HOOK_PARAMS[name])}) in hooks.py, or remove it from hooks",
                )
            )
    problems += _missing_string_keys(tree, file, strings, item_id)
    if problems:
        # Code already known to be wrong is not run: its import could fail in confusing ways.
        return ItemHooks(), problems

    module, failure = _import_by_path(path, item_id)
    if failure is not None:
        return ItemHooks(), [failure]
    functions: dict[str, Callable[..., Any]] = {}
    for name in defined:
        function = getattr(module, name, None)
        if not callable(function):
            problems.append(
                LintProblem(file, defined[name], f"{name} is not a function after import", f"define {name} with def")
            )
        else:
            functions[name] = function
    return ItemHooks(functions), problems


def _import_by_path(path: Path, item_id: str) -> tuple[Any, LintProblem | None]:
    """Run hooks.py as a private module (never importable as a package), or a problem."""
    name = f"kiosk_item_hooks_{item_id}_{next(_module_numbers)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None, LintProblem(str(path), 1, "hooks.py cannot be loaded", "check the file name and permissions")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, because dataclasses and typing look the module up by name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        line = 1
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename) == path and frame.lineno:
                line = frame.lineno
        return None, LintProblem(
            str(path), line, f"hooks.py fails to import: {type(exc).__name__}: {exc}",
            "fix this line; hooks may import only the standard library, kiosk.* and "
            "the packages the runtime pins",
        )
    finally:
        sys.modules.pop(name, None)
    return module, None


def _missing_string_keys(
    tree: ast.AST, file: str, strings: Mapping[str, Mapping[str, str]], item_id: str
) -> list[LintProblem]:
    """String literals in hooks.py that look like this item's keys must be translated."""
    prefix = f"items.{item_id}."
    problems = []
    # Pieces of f-strings are key prefixes built at run time, not keys: skip them.
    in_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if id(node) in in_fstrings:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(prefix):
            for locale in i18n.LOCALES:
                if node.value not in strings.get(locale, {}):
                    problems.append(
                        LintProblem(
                            file, node.lineno, f"string {node.value} is not in locales/{locale}.toml",
                            f"add {node.value.removeprefix(prefix)} under [items.{item_id}] "
                            f"in locales/{locale}.toml",
                        )
                    )
    return problems


# -- locales/ --------------------------------------------------------------------------------


def _load_locales(folder: Path, item_id: str) -> tuple[dict[str, dict[str, str]], list[LintProblem]]:
    directory = folder / LOCALES_DIR
    if not directory.is_dir():
        return {}, []
    problems: list[LintProblem] = []
    tables: dict[str, dict[str, str]] = {}
    lines: dict[str, dict[tuple, int]] = {}
    prefix = f"items.{item_id}."
    for locale in i18n.LOCALES:
        path = directory / f"{locale}.toml"
        if not path.is_file():
            problems.append(
                LintProblem(
                    str(path), 0, f"locales/{locale}.toml is missing",
                    "add it with the same keys as the other language (zh_CN first, en second)",
                )
            )
            continue
        try:
            data, text = parse_toml(path.read_bytes(), str(path))
        except ManifestError as exc:
            problems += exc.problems
            continue
        lines[locale] = key_lines(text)
        flat: dict[str, str] = {}
        for key, value in _walk(data):
            line = locate(lines[locale], tuple(key.split(".")))
            if not isinstance(value, str):
                problems.append(
                    LintProblem(str(path), line, f"{key} is not a string", "translations are strings: quote it")
                )
            elif not value.strip():
                problems.append(LintProblem(str(path), line, f"{key} is empty", "write the text"))
            elif not key.startswith(prefix):
                problems.append(
                    LintProblem(
                        str(path), line, f"key {key} is outside this item's namespace",
                        f"put it under the table [items.{item_id}]",
                    )
                )
            else:
                flat[key] = value
        tables[locale] = flat
    if len(tables) == len(i18n.LOCALES):
        for locale, other in itertools.permutations(i18n.LOCALES, 2):
            path = directory / f"{locale}.toml"
            for key in sorted(set(tables[locale]) - set(tables[other])):
                problems.append(
                    LintProblem(
                        str(path), locate(lines[locale], tuple(key.split("."))),
                        f"{key} has no {other} translation", f"add {key} to locales/{other}.toml",
                    )
                )
        for key in sorted(set.intersection(*(set(tables[loc]) for loc in i18n.LOCALES))):
            found = {loc: _placeholders(tables[loc][key]) for loc in i18n.LOCALES}
            for locale, names in found.items():
                if names is None:
                    problems.append(
                        LintProblem(
                            str(directory / f"{locale}.toml"),
                            locate(lines[locale], tuple(key.split("."))),
                            f"{key} has an unpaired {{ or }}",
                            "write {name} for a placeholder and {{ or }} for a literal brace",
                        )
                    )
            if None not in found.values() and found[i18n.LOCALES[0]] != found[i18n.LOCALES[1]]:
                problems.append(
                    LintProblem(
                        str(directory / "en.toml"), locate(lines["en"], tuple(key.split("."))),
                        f"{key} uses different {{placeholders}} than zh_CN",
                        "use the same {names} in both languages",
                    )
                )
    return tables, problems


def _placeholders(text: str) -> set[str] | None:
    """The {names} in a translation, or None when its braces do not pair up (str.format,
    which renders it, would raise ValueError)."""
    try:
        return i18n.placeholders(text)
    except ValueError:
        return None


def _walk(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf, in file order. Iterative: TOML's dotted keys
    (`a.b.c... = 1`) nest tables as deep as the line is long, past Python's recursion limit."""
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [(prefix, iter(table.items()))]
    while stack:
        path, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        key, value = entry
        if isinstance(value, Mapping):
            stack.append((f"{path}{key}.", iter(value.items())))
        else:
            out.append((f"{path}{key}", value))
    return out
