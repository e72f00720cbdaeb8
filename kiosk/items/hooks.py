"""The hooks API: what an item's optional `hooks.py` may define, and what it is given.

An item's hooks.py may define any of these top-level functions (and nothing else public;
helpers start with `_`):

    validate(answers, ctx) -> list[FieldError]          rules beyond the field types
    build_application(answers, ctx) -> dict            the fields sent to the platform
    render_result(result, ctx) -> ScreenResult          what the result screen shows
    field_options(field_id, values, ctx) -> list[str]   narrow a choice field's options

Hooks are pure and synchronous: they get answers already checked against the field types
(normalised: dates as ISO text, months as "YYYY-MM", numbers, booleans) and a `HookContext`
with a masked view of the citizen, today's date and the item's translations. They never see
the raw ID number or name, and never do I/O: the journey engine does that.
"""

from __future__ import annotations

import datetime as dt
import logging
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from kiosk import i18n
from kiosk.identity.model import Assurance, Identity, IdentitySource, Sex
from kiosk.items.manifest import ChoiceField, Manifest
from kiosk.platform.api import CaseStatus, QueryResult

_log = logging.getLogger(__name__)
SDK_LOCALES = Path(__file__).resolve().parent / "locales"

# The parameters each hook receives, in order; the loader checks hooks.py against these.
HOOK_PARAMS: dict[str, tuple[str, ...]] = {
    "validate": ("answers", "ctx"),
    "build_application": ("answers", "ctx"),
    "render_result": ("result", "ctx"),
    "field_options": ("field_id", "values", "ctx"),
}


# -- what hooks return -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """An answer the item refuses: which field, and the citizen text (an i18n key)."""

    field: str
    message_key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResultLine:
    label: str
    value: str


@dataclass(frozen=True)
class ResultTable:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ScreenResult:
    """The result screen, already translated into the session's language."""

    title: str
    lines: tuple[ResultLine, ...] = ()
    table: ResultTable | None = None
    note: str = ""


# -- what render_result receives besides QueryResult and CaseStatus ------------------------


@dataclass(frozen=True)
class PrintOutcome:
    """A print item's result: the titles of the documents sent to the A4 printer."""

    documents: tuple[str, ...]


@dataclass(frozen=True)
class SubmitOutcome:
    """A submit item's result: a case number, or a local reference while queued."""

    local_ref: str
    case_number: str | None

    @property
    def queued(self) -> bool:
        return self.case_number is None


# -- what hooks are given --------------------------------------------------------------------


@cache
def sdk_strings(locale: str) -> dict[str, str]:
    """The SDK's own strings (answer errors, journey messages, categories)."""
    return i18n.load_catalogue(SDK_LOCALES / f"{locale}.toml")


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Strings:
    """Translations for one item in one locale: the item's own strings first, then the
    SDK's, then the core catalogue. A missing key shows the key (and is logged once),
    as everywhere else on the kiosk: a citizen's screen never crashes over a string."""

    def __init__(self, item_strings: Mapping[str, Mapping[str, str]], locale: str) -> None:
        self._item = item_strings.get(locale, {})
        self.locale = locale
        self._missing: set[str] = set()

    def lookup(self, key: str) -> str | None:
        for table in (self._item, sdk_strings(self.locale), i18n.catalogue(self.locale)):
            if key in table:
                return table[key]
        return None

    def has(self, key: str) -> bool:
        return self.lookup(key) is not None

    def __call__(self, key: str, **params: Any) -> str:
        text = self.lookup(key)
        if text is None:
            if key not in self._missing:
                self._missing.add(key)
                _log.error("missing translation %s for locale %s", key, self.locale)
            return key
        if not params:
            return text
        return string.Formatter().vformat(text, (), _KeepMissing(params))


@dataclass(frozen=True, repr=False)
class MaskedIdentity:
    """What hooks may know about the citizen: masked name and number, source, assurance,
    sex, age, and which e-certificates a 苏服码 authorised. Never the raw values."""

    source: IdentitySource
    assurance: Assurance
    masked_name: str
    masked_id_number: str
    sex: Sex | None
    authorised_certificates: tuple[str, ...]
    _birth_date: dt.date | None

    @classmethod
    def of(cls, identity: Identity) -> MaskedIdentity:
        authorised = identity.authorization.certificate_types if identity.authorization else ()
        return cls(
            identity.source,
            identity.assurance,
            identity.masked_name,
            identity.masked_id_number,
            identity.sex,
            tuple(authorised),
            identity.birth_date,
        )

    def age_on(self, day: dt.date) -> int | None:
        born = self._birth_date
        if born is None:
            return None
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def __repr__(self) -> str:
        return f"MaskedIdentity({self.source}, {self.masked_id_number}, {self.masked_name})"


@dataclass(frozen=True)
class HookContext:
    item: Manifest
    identity: MaskedIdentity | None  # None only for items that run without identity
    today: dt.date
    t: Strings

    @property
    def locale(self) -> str:
        return self.t.locale

    @property
    def age(self) -> int | None:
        return self.identity.age_on(self.today) if self.identity else None

    def option_label(self, field_id: str, value: str) -> str:
        """The citizen-facing label of a choice answer, in the session's language."""
        choice = self.item.field(field_id)
        if not isinstance(choice, ChoiceField):
            return str(value)
        return choice.option(value).label.get(self.locale)


# -- the hooks of one item, with the defaults for what it does not define ------------------


class HookFailed(Exception):
    """An item's hook raised or returned the wrong thing. The journey turns this into a
    typed failure; the detail (hook name, exception type) is for the integrator's log."""

    def __init__(self, hook: str, detail: str) -> None:
        super().__init__(f"hook {hook} failed: {detail}")
        self.hook = hook


def _default_render(result: Any, ctx: HookContext) -> ScreenResult:
    t = ctx.t
    title = ctx.item.name.get(ctx.locale)
    prefix = f"items.{ctx.item.id}"
    if isinstance(result, QueryResult):
        lines = tuple(
            ResultLine(_label(t, f"{prefix}.summary.{key}", key), _text(value))
            for key, value in result.summary.items()
        )
        table = None
        if result.rows:
            keys = list(result.rows[0])
            table = ResultTable(
                tuple(_label(t, f"{prefix}.column.{key}", key) for key in keys),
                tuple(tuple(_text(row.get(key, "")) for key in keys) for row in result.rows),
            )
        return ScreenResult(title, lines, table, "" if result.rows or lines else t("items.result.empty"))
    if isinstance(result, CaseStatus):
        return ScreenResult(
            title,
            (
                ResultLine(t("items.result.case_number"), result.case_number),
                ResultLine(t("items.result.case_state"), t(f"items.case_state.{result.state}")),
                ResultLine(t("items.result.updated_at"), _time(result.updated_at)),
            ),
            ResultTable(
                (t("items.result.time"), t("items.result.case_state"), t("items.result.note")),
                tuple((_time(e.at), t(f"items.case_state.{e.state}"), e.note) for e in result.history),
            )
            if result.history
            else None,
        )
    if isinstance(result, PrintOutcome):
        return ScreenResult(
            title,
            tuple(ResultLine(t("items.result.printed"), doc) for doc in result.documents),
            note=t("items.result.take_prints"),
        )
    if isinstance(result, SubmitOutcome):
        if result.queued:
            return ScreenResult(
                title,
                (ResultLine(t("items.result.local_ref"), result.local_ref),),
                note=t("items.result.queued_note"),
            )
        return ScreenResult(
            title,
            (ResultLine(t("items.result.case_number"), result.case_number or ""),),
            note=t("items.result.submitted_note"),
        )
    raise HookFailed("render_result", f"no default rendering for {type(result).__name__}")


def _label(t: Strings, key: str, fallback: str) -> str:
    return t(key) if t.has(key) else fallback


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _time(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class ItemHooks:
    """The callables an item defined; each `run_*` applies the default when it did not and
    checks what came back, so a faulty hook becomes HookFailed, never a crash."""

    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def defines(self, name: str) -> bool:
        return name in self.functions

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return self.functions[name](*args)
        except HookFailed:
            raise
        except Exception as exc:
            raise HookFailed(name, type(exc).__name__) from exc

    def run_validate(self, answers: Mapping[str, Any], ctx: HookContext) -> list[FieldError]:
        if "validate" not in self.functions:
            return []
        errors = self._call("validate", dict(answers), ctx)
        if not isinstance(errors, Sequence) or not all(isinstance(e, FieldError) for e in errors):
            raise HookFailed("validate", "must return a list of FieldError")
        return list(errors)

    def run_build_application(self, answers: Mapping[str, Any], ctx: HookContext) -> dict[str, Any]:
        if "build_application" not in self.functions:
            return dict(answers)
        fields = self._call("build_application", dict(answers), ctx)
        if not isinstance(fields, Mapping) or not all(isinstance(k, str) for k in fields):
            raise HookFailed("build_application", "must return a dict with string keys")
        return dict(fields)

    def run_render_result(self, result: Any, ctx: HookContext) -> ScreenResult:
        if "render_result" not in self.functions:
            return _default_render(result, ctx)
        screen = self._call("render_result", result, ctx)
        if not isinstance(screen, ScreenResult):
            raise HookFailed("render_result", "must return a ScreenResult")
        return screen

    def run_field_options(self, field_id: str, values: Sequence[str], ctx: HookContext) -> list[str]:
        if "field_options" not in self.functions:
            return list(values)
        chosen = self._call("field_options", field_id, tuple(values), ctx)
        if not isinstance(chosen, Sequence) or isinstance(chosen, str) or not set(chosen) <= set(values):
            raise HookFailed("field_options", "must return a subset of the values it was given")
        return [v for v in values if v in set(chosen)]


def default_render(result: Any, ctx: HookContext) -> ScreenResult:
    """The SDK's rendering, for hooks that decorate it rather than replace it."""
    return _default_render(result, ctx)
