"""Item folders: `item.toml` manifests and the item's `locales/*.toml`.

Seeds are the real item folders under `screens/items/`. `item_manifest` runs what
`check_folder` runs on the manifest bytes — `parse_toml`, `key_lines` (the line finder, which
must never raise), `check_manifest` and the problem translation — on:
- the seed TOML parsed, its tree mutated (wrong types, missing and unknown keys, huge numbers,
  inf/nan, odd strings, deeply nested arrays and inline tables) and written back as *valid*
  TOML, so the inputs reach pydantic and the manifest's own rules;
- the seed text mutated character by character (mostly TOML syntax errors);
- random and non-UTF-8 bytes.

`item_folder` writes a whole folder (manifest and both locale files, mutated the same ways)
to a private temporary directory and calls `loader.load_item`, as the kiosk does at start-up
and `kiosk items lint` does. hooks.py is never written: it is code, not data to fuzz.

Documented errors: `ManifestError` (manifest) and `ItemError` (folder), whose problems must
each name a line and a fix.
"""

from __future__ import annotations

import atexit
import json
import math
import random
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from kiosk.items import loader
from kiosk.items.loader import ItemError
from kiosk.items.manifest import ManifestError, check_manifest, key_lines, parse_toml
from tests.fuzz import mutate
from tests.fuzz.engine import Target

_ITEMS = Path(__file__).resolve().parents[3] / "screens" / "items"


def _seeds() -> list[tuple[str, str, dict[str, str]]]:
    """(folder name, item.toml text, {locale file name: text}) of every real item."""
    out = []
    for manifest in sorted(_ITEMS.glob("*/item.toml")):
        locales = {p.name: p.read_text("utf-8") for p in sorted((manifest.parent / "locales").glob("*.toml"))}
        out.append((manifest.parent.name, manifest.read_text("utf-8"), locales))
    if not out:
        raise RuntimeError(f"no item folders under {_ITEMS}: the fuzz seeds are missing")
    return out


_SEEDS = _seeds()


# -- a TOML writer for mutated trees ------------------------------------------------------------


def _toml_string(text: str) -> str:
    # JSON escapes are TOML basic-string escapes, except that TOML also refuses a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(
            f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
        ) + " }"
    return _toml_string(str(value))  # None at the top level, dates: as strings


def to_toml(document: dict[str, Any]) -> str:
    """Top-level keys one per line, everything below as inline tables and arrays."""
    return "".join(
        f"{_toml_string(str(k))} = {_toml_value(v)}\n" for k, v in document.items() if v is not None
    )


def _mutated_document(rng: random.Random, text: str) -> bytes:
    roll = rng.random()
    if roll < 0.6:
        tree = tomllib.loads(text)
        if rng.random() < 0.5:
            tree.pop("hooks", None)  # no hooks.py is written, so a listed hook is a problem
        tree = mutate.mutate_tree(rng, tree, huge=False) if rng.random() < 0.9 else tree
        try:
            return to_toml(tree if isinstance(tree, dict) else {"x": tree}).encode("utf-8")
        except RecursionError:  # nested past the writer's stack: write it as text instead
            return (text + "\n" + mutate.deep_toml(rng)).encode("utf-8")
    if roll < 0.65:  # nesting that exhausts a recursive parser's stack
        key = rng.choice(("name", "fields", "items", "guide", "x"))
        return (text + "\n" + mutate.deep_toml(rng, key)).encode("utf-8")
    if roll < 0.85:
        return mutate.mutate_text(rng, text).encode("utf-8", "surrogatepass")
    if roll < 0.95:
        return mutate.mutate_bytes(rng, text.encode("utf-8"))
    return mutate.random_bytes(rng, 200)


def _check_problems(problems: list[Any]) -> None:
    assert problems, "an error without problems"
    for problem in problems:
        assert problem.line >= 0 and problem.message and problem.fix, problem


# -- item_manifest ----------------------------------------------------------------------------------


def _manifest_input(rng: random.Random) -> tuple[bytes, str]:
    folder, text, _ = rng.choice(_SEEDS)
    if rng.random() < 0.1:
        return text.encode("utf-8"), folder
    return _mutated_document(rng, text), folder


def read_manifest(value: tuple[bytes, str]) -> None:
    raw, folder = value
    try:
        data, text = parse_toml(raw, "item.toml")
        key_lines(text)
        manifest = check_manifest(data, text, "item.toml", folder)
    except ManifestError as exc:
        _check_problems(exc.problems)
        raise
    manifest.required_devices(), manifest.case_number_field
    for item_field in manifest.fields:
        assert manifest.field(item_field.id) is item_field


ITEM_MANIFEST = Target(
    name="item_manifest",
    parser="kiosk/items/manifest.py: parse_toml, key_lines, check_manifest (pydantic model, "
           "rules, problem lines)",
    generate=_manifest_input,
    run=read_manifest,
    documented=(ManifestError,),
    label=lambda exc: "ManifestError:" + (
        exc.problems[0].message.split(":")[0][:40] if exc.problems else "?"
    ),
    short_examples=800,
    from_bytes=lambda data: (data, _SEEDS[0][0]),
)


# -- item_folder ------------------------------------------------------------------------------------

_workdir: Path | None = None


def _folder_root() -> Path:
    global _workdir
    if _workdir is None:
        _workdir = Path(tempfile.mkdtemp(prefix="fuzz-items-", dir=mutate.scratch_dir()))
        atexit.register(shutil.rmtree, _workdir, True)
    return _workdir


def _folder_input(rng: random.Random) -> tuple[str, bytes, dict[str, bytes]]:
    folder, text, locales = rng.choice(_SEEDS)
    tree = tomllib.loads(text)
    tree.pop("hooks", None)  # no hooks.py is written: a listed hook would always fail
    manifest = to_toml(tree).encode("utf-8")
    if rng.random() < 0.4:
        manifest = _mutated_document(rng, manifest.decode("utf-8", "replace"))
    files = {}
    for name, content in locales.items():
        if rng.random() < 0.25:
            files[name] = _mutated_document(rng, content)
        elif rng.random() < 0.97:
            files[name] = content.encode("utf-8")
    return folder, manifest, files


def load_folder(value: tuple[str, bytes, dict[str, bytes]]) -> str:
    name, manifest, locales = value
    folder = _folder_root() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if locales:  # items without strings of their own have no locales/ folder at all
        (folder / "locales").mkdir()
    (folder / "item.toml").write_bytes(manifest)
    for file_name, content in locales.items():
        (folder / "locales" / file_name).write_bytes(content)
    try:
        item = loader.load_item(folder)
    except ItemError as exc:
        _check_problems(exc.problems)
        raise
    return "loaded" if item.manifest.id == name else "loaded (other id)"


ITEM_FOLDER = Target(
    name="item_folder",
    parser="kiosk/items/loader.py: load_item / check_folder (manifest, locales, hooks listing)",
    generate=_folder_input,
    run=load_folder,
    documented=(ItemError,),
    short_examples=600,
)

TARGETS = (ITEM_MANIFEST, ITEM_FOLDER)
