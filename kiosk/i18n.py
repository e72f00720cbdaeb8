"""Translations of every user-visible string: zh_CN first, en second.

Catalogues are TOML files, one per locale, same keys, `{name}` placeholders: the core's in
`kiosk/locales/`, the item SDK's in `kiosk/items/locales/`, each driver's beside its code
in `drivers/<driver>/locales/`, and each item folder's in `screens/items/<id>/locales/`. They merge into one catalogue; a key defined twice is an error. A missing key shows the
key itself rather than crashing a citizen's screen, and is logged once for the developer;
`tests/kiosk/test_i18n.py` makes sure none is missing.
"""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
_ROOT = Path(__file__).resolve().parent.parent  # the folder holding kiosk/, drivers/, ...
_log = logging.getLogger(__name__)


def _flatten(table: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            raise ValueError(f"{name}: translations must be strings, got {type(value).__name__}")
    return flat


def load_catalogue(path: Path) -> dict[str, str]:
    with path.open("rb") as f:
        return _flatten(tomllib.load(f))


def catalogue_dirs() -> list[Path]:
    """Every folder holding translations: the core's first, then the item SDK's, the
    drivers' and the item folders' (each item's keys live under `items.<item_id>.`)."""
    return [
        _ROOT / "kiosk" / "locales",
        _ROOT / "kiosk" / "items" / "locales",
        *sorted((_ROOT / "drivers").glob("*/locales")),
        *sorted((_ROOT / "screens" / "items").glob("*/locales")),
    ]


@cache
def catalogue(locale: str) -> dict[str, str]:
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}; known: {', '.join(LOCALES)}")
    merged: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for folder in catalogue_dirs():
        path = folder / f"{locale}.toml"
        if not path.is_file():
            continue
        for key, text in load_catalogue(path).items():
            if key in merged:
                raise ValueError(f"translation key {key} is defined in {origin[key]} and {path}")
            merged[key] = text
            origin[key] = path
    return merged


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class Translator:
    """`t("attract.title")` in the current locale; `locale` can be switched at any time."""

    def __init__(self, locale: str = DEFAULT_LOCALE) -> None:
        self._missing: set[tuple[str, str]] = set()
        self.locale = locale

    @property
    def locale(self) -> str:
        return self._locale

    @locale.setter
    def locale(self, value: str) -> None:
        catalogue(value)  # validate
        self._locale = value

    def has(self, key: str, locale: str | None = None) -> bool:
        return key in catalogue(locale or self._locale)

    def __call__(self, key: str, locale: str | None = None, **params: object) -> str:
        loc = locale or self._locale
        text = catalogue(loc).get(key)
        if text is None:
            if (loc, key) not in self._missing:
                self._missing.add((loc, key))
                _log.error("missing translation %s for locale %s", key, loc)
            return key
        return text.format(**params) if params else text
