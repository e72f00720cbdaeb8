"""The `item.toml` manifest of an item folder: its pydantic model, the typed answer fields,
and the translation of validation errors into problems that name a file, a line and a fix.

An item is declared, not programmed: names, guide (办事指南), commitment (告知承诺), fields
and outputs live here, so the catalogue screen, the linter and the journey engine all read
the same facts. Extra keys are forbidden everywhere, because a misspelt key silently ignored
is a field a citizen never sees.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from drivers.base import DeviceClass
from kiosk.identity import id_number as id_numbers
from kiosk.identity.model import Assurance, IdentitySource
from kiosk.platform.api import CertificateType

MANIFEST_FILE = "item.toml"

# Translation namespaces the SDK itself uses under `items.`; an item id may not shadow them.
RESERVED_IDS = frozenset(
    {"journey", "answer", "category", "hidden", "device", "case_state", "result", "outcome"}
)
HOOK_NAMES = ("validate", "build_application", "render_result", "field_options")


# -- problems ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LintProblem:
    """One thing wrong with an item folder: where it is and how to fix it."""

    file: str  # path of the file, as given to the linter
    line: int  # 1-based; 0 when the problem concerns the file as a whole (it is missing)
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message} (fix: {self.fix})"


def _rule(message: str, fix: str, at: str | None = None) -> PydanticCustomError:
    """A manifest rule violation: `at` (dotted path) points the linter at the exact key."""
    ctx: dict[str, Any] = {"message": message, "fix": fix}
    if at is not None:
        ctx["at"] = at
    return PydanticCustomError("item_rule", "{message}", ctx)


# -- small value types -----------------------------------------------------------------------

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,47}$")]


class Text(BaseModel):
    """A citizen-facing text: Chinese first, English second, both required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: NonEmpty
    en: NonEmpty

    def get(self, locale: str) -> str:
        return self.zh if locale.startswith("zh") else self.en


class Category(enum.StrEnum):
    SOCIAL_SECURITY = "social_security"  # 社会保障
    HOUSING_FUND = "housing_fund"  # 住房公积金
    REAL_ESTATE = "real_estate"  # 不动产
    HOUSEHOLD = "household"  # 户籍
    LICENCES = "licences"  # 电子证照
    GENERAL = "general"  # 综合 (办件查询等)


class Kind(enum.StrEnum):
    PRINT = "print"
    QUERY = "query"
    SUBMIT = "submit"


class Output(enum.StrEnum):
    A4_PDF = "a4_pdf"
    RECEIPT = "receipt"
    SCREEN = "screen"


OUTPUT_DEVICE = {Output.A4_PDF: DeviceClass.A4_PRINTER, Output.RECEIPT: DeviceClass.RECEIPT_PRINTER}


# -- answers ---------------------------------------------------------------------------------


class AnswerError(ValueError):
    """An answer does not fit its field; `message_key` is the citizen text to show."""

    def __init__(self, message_key: str, **params: Any) -> None:
        super().__init__(message_key)
        self.message_key = message_key
        self.params = params


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_CASE_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9-]{5,39}$")


def _add_months(day: dt.date, months: int) -> tuple[int, int]:
    index = day.year * 12 + (day.month - 1) + months
    return index // 12, index % 12 + 1


class _FieldBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    label: Text
    help: Text | None = None
    required: bool = True

    # Each field type defines `parse(value, today)`: the answer normalised to a JSON-friendly
    # value, or AnswerError with the citizen's message key.


class ChoiceOption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
    label: Text


class ChoiceField(_FieldBase):
    type: Literal["choice"]
    options: Annotated[list[ChoiceOption], Field(min_length=1)]

    @field_validator("options")
    @classmethod
    def _unique_values(cls, options: list[ChoiceOption]) -> list[ChoiceOption]:
        seen: set[str] = set()
        for option in options:
            if option.value in seen:
                raise _rule(
                    f"option value '{option.value}' appears twice",
                    "give every option its own value",
                )
            seen.add(option.value)
        return options

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)

    def option(self, value: str) -> ChoiceOption:
        return next(o for o in self.options if o.value == value)

    def parse(self, value: Any, today: dt.date) -> str:
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value) not in self.values:
            raise AnswerError("items.answer.not_an_option")
        return str(value)


class _RelativeRange(_FieldBase):
    """Bounds relative to today, in the field's unit (days, months or years)."""

    min_offset: int | None = None
    max_offset: int | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _RelativeRange:
        if self.min_offset is not None and self.max_offset is not None:
            if self.min_offset > self.max_offset:
                raise _rule("min_offset is after max_offset", "swap min_offset and max_offset")
        return self


class DateField(_RelativeRange):
    type: Literal["date"]

    def parse(self, value: Any, today: dt.date) -> str:
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise AnswerError("items.answer.bad_date") from None
        if not isinstance(value, dt.date):
            raise AnswerError("items.answer.bad_date")
        if self.min_offset is not None and value < today + dt.timedelta(days=self.min_offset):
            raise AnswerError("items.answer.too_early")
        if self.max_offset is not None and value > today + dt.timedelta(days=self.max_offset):
            raise AnswerError("items.answer.too_late")
        return value.isoformat()


class MonthField(_RelativeRange):
    type: Literal["month"]

    def parse(self, value: Any, today: dt.date) -> str:
        match = _MONTH.match(value) if isinstance(value, str) else None
        if match is None:
            raise AnswerError("items.answer.bad_month")
        month = (int(match[1]), int(match[2]))
        if self.min_offset is not None and month < _add_months(today, self.min_offset):
            raise AnswerError("items.answer.too_early")
        if self.max_offset is not None and month > _add_months(today, self.max_offset):
            raise AnswerError("items.answer.too_late")
        return f"{month[0]:04d}-{month[1]:02d}"


class YearField(_RelativeRange):
    type: Literal["year"]

    def parse(self, value: Any, today: dt.date) -> int:
        if isinstance(value, str) and re.fullmatch(r"\d{4}", value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 1900 <= value <= 2999:
            raise AnswerError("items.answer.bad_year")
        if self.min_offset is not None and value < today.year + self.min_offset:
            raise AnswerError("items.answer.too_early")
        if self.max_offset is not None and value > today.year + self.max_offset:
            raise AnswerError("items.answer.too_late")
        return value


class NumberField(_FieldBase):
    type: Literal["number"]
    min: float | None = None
    max: float | None = None
    integer: bool = True
    unit: Text | None = None

    @model_validator(mode="after")
    def _ordered(self) -> NumberField:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _rule("min is greater than max", "swap min and max")
        return self

    def parse(self, value: Any, today: dt.date) -> int | float:
        if isinstance(value, bool):
            raise AnswerError("items.answer.bad_number")
        if isinstance(value, str):
            try:
                value = float(value) if not re.fullmatch(r"-?\d+", value.strip()) else int(value)
            except ValueError:
                raise AnswerError("items.answer.bad_number") from None
        if not isinstance(value, int | float) or value != value or value in (float("inf"), float("-inf")):
            raise AnswerError("items.answer.bad_number")
        if self.integer:
            if value != int(value):
                raise AnswerError("items.answer.not_integer")
            value = int(value)
        if self.min is not None and value < self.min:
            raise AnswerError("items.answer.too_small", min=_plain(self.min))
        if self.max is not None and value > self.max:
            raise AnswerError("items.answer.too_large", max=_plain(self.max))
        return value


def _plain(number: float) -> str:
    return str(int(number)) if number == int(number) else str(number)


class PhoneField(_FieldBase):
    """A mainland mobile number, typed on the kiosk's digit keypad."""

    type: Literal["phone"]

    def parse(self, value: Any, today: dt.date) -> str:
        digits = re.sub(r"[\s-]", "", value) if isinstance(value, str) else ""
        if not _PHONE.match(digits):
            raise AnswerError("items.answer.bad_phone")
        return digits


class IdNumberField(_FieldBase):
    type: Literal["id_number"]

    def parse(self, value: Any, today: dt.date) -> str:
        if not isinstance(value, str):
            raise AnswerError("items.answer.bad_id_number")
        try:
            return id_numbers.validate(value.strip(), today=today)
        except id_numbers.InvalidIdNumber:
            raise AnswerError("items.answer.bad_id_number") from None


class YesNoField(_FieldBase):
    type: Literal["yes_no"]

    def parse(self, value: Any, today: dt.date) -> bool:
        if isinstance(value, bool):
            return value
        if value in ("yes", "no"):
            return value == "yes"
        raise AnswerError("items.answer.bad_yes_no")


class CaseNumberField(_FieldBase):
    """A case number (办件编号) from an earlier receipt: letters, digits and hyphens."""

    type: Literal["case_number"]

    def parse(self, value: Any, today: dt.date) -> str:
        text = value.strip().upper() if isinstance(value, str) else ""
        if not _CASE_NUMBER.match(text):
            raise AnswerError("items.answer.bad_case_number")
        return text


AnyField = Annotated[
    Union[
        ChoiceField,
        DateField,
        MonthField,
        YearField,
        NumberField,
        PhoneField,
        IdNumberField,
        YesNoField,
        CaseNumberField,
    ],
    Discriminator("type"),
]
FIELD_TYPES = (
    "choice", "date", "month", "year", "number", "phone", "id_number", "yes_no", "case_number"
)


# -- the manifest's tables -------------------------------------------------------------------


class IdentityRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: Annotated[list[IdentitySource], Field(min_length=1)]
    min_assurance: Literal["medium", "high"] = "medium"
    # False only for items a passer-by may use without identifying (办件进度 by case number).
    required: bool = True

    @field_validator("sources")
    @classmethod
    def _unique(cls, sources: list[IdentitySource]) -> list[IdentitySource]:
        if len(set(sources)) != len(sources):
            raise _rule("an identity source is listed twice", "list each source once")
        return sources

    @property
    def assurance(self) -> Assurance:
        return Assurance[self.min_assurance.upper()]


class Guide(BaseModel):
    """The 办事指南 summary shown before the citizen starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conditions: Annotated[list[Text], Field(min_length=1)]  # 办理条件
    materials: Annotated[list[Text], Field(min_length=1)]  # 申请材料
    time_limit: Text  # 办理时限
    fee: Text  # 收费标准
    notes: list[Text] = []  # 温馨提示


class Commitment(BaseModel):
    """告知承诺: the citizen reads `text` and must press `consent` before submitting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: Text
    consent: Text


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    name: Text
    category: Category
    item_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z-]{5,47}$")]
    kind: Kind
    identity: IdentityRule
    devices: list[DeviceClass] = []
    certificates: list[CertificateType] = []
    # A choice field whose value picks the one certificate to fetch (电子证照打印).
    certificate_field: Slug | None = None
    query_by: Literal["identity", "case_number"] = "identity"
    fields: list[AnyField] = []
    commitment: Commitment | None = None
    guide: Guide
    outputs: Annotated[list[Output], Field(min_length=1)]
    optional_outputs: list[Output] = []  # offered when the device is up (凭条 of a query)
    hooks: list[Literal["validate", "build_application", "render_result", "field_options"]] = []

    @field_validator("id")
    @classmethod
    def _id_is_folder(cls, value: str, info: ValidationInfo) -> str:
        folder = (info.context or {}).get("folder")
        if folder is not None and value != folder:
            raise _rule(
                f"id '{value}' differs from the folder name '{folder}'",
                f"set id = \"{folder}\" or rename the folder to {value}",
            )
        if value in RESERVED_IDS:
            raise _rule(
                f"id '{value}' is reserved for the SDK's own strings",
                "choose another id (and folder name)",
            )
        return value

    @field_validator("devices", "certificates", "outputs", "optional_outputs", "hooks")
    @classmethod
    def _no_repeats(cls, values: list[Any], info: ValidationInfo) -> list[Any]:
        for i, value in enumerate(values):
            if value in values[:i]:
                raise _rule(
                    f"'{value}' is listed twice in {info.field_name}",
                    "list each value once",
                    at=f"{info.field_name}.{i}",
                )
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        self._check_fields()
        self._check_outputs()
        self._check_kind()
        if self.identity.min_assurance == "high" and self.identity.sources == [IdentitySource.SSC]:
            raise _rule(
                "a 社保卡 alone gives medium assurance, so no citizen could reach 'high'",
                "add code or idcard to identity.sources, or set min_assurance = \"medium\"",
                at="identity.min_assurance",
            )
        return self

    def _check_fields(self) -> None:
        seen: dict[str, int] = {}
        for i, item_field in enumerate(self.fields):
            if item_field.id in seen:
                raise _rule(
                    f"field id '{item_field.id}' is used twice (fields {seen[item_field.id] + 1} "
                    f"and {i + 1})",
                    "give each [[fields]] entry its own id",
                    at=f"fields.{i}.id",
                )
            seen[item_field.id] = i
        if self.certificate_field is not None:
            # A KeyError here would escape pydantic untranslated: name the problem instead.
            chosen = next((f for f in self.fields if f.id == self.certificate_field), None)
            if chosen is None:
                raise _rule(
                    f"certificate_field '{self.certificate_field}' names no field",
                    "set it to the id of a [[fields]] entry with type = \"choice\"",
                    at="certificate_field",
                )
            if not isinstance(chosen, ChoiceField):
                raise _rule(
                    f"certificate_field '{self.certificate_field}' is not a choice field",
                    "name a [[fields]] entry with type = \"choice\"",
                    at="certificate_field",
                )
            unknown = [v for v in chosen.values if v not in set(self.certificates)]
            if unknown:
                raise _rule(
                    f"options {', '.join(unknown)} of '{chosen.id}' are not in certificates",
                    "use certificate types listed in certificates as option values",
                    at="certificate_field",
                )

    def _check_outputs(self) -> None:
        for key, outputs in (("outputs", self.outputs), ("optional_outputs", self.optional_outputs)):
            for i, output in enumerate(outputs):
                device = OUTPUT_DEVICE.get(output)
                if key == "outputs" and device is not None and device not in self.devices:
                    raise _rule(
                        f"output '{output}' needs the device '{device}'",
                        f"add \"{device}\" to devices",
                        at=f"{key}.{i}",
                    )
                if key == "optional_outputs" and output in self.outputs:
                    raise _rule(
                        f"'{output}' is in both outputs and optional_outputs",
                        "keep it in one of them",
                        at=f"{key}.{i}",
                    )

    def _check_kind(self) -> None:
        if self.kind is Kind.PRINT:
            if not self.certificates:
                raise _rule(
                    "a print item prints e-certificates but lists none",
                    "add certificates = [\"...\"] with the types to fetch and print",
                    at="kind",
                )
            if Output.A4_PDF not in self.outputs:
                raise _rule("a print item must output a4_pdf", "add \"a4_pdf\" to outputs", "kind")
        elif self.kind is Kind.QUERY and Output.SCREEN not in self.outputs:
            raise _rule("a query item answers on screen", "add \"screen\" to outputs", "kind")
        elif self.kind is Kind.SUBMIT and not {Output.RECEIPT, Output.SCREEN} & set(self.outputs):
            raise _rule(
                "a submit item must show or print the case number",
                "add \"receipt\" (and \"receipt_printer\" to devices) or \"screen\" to outputs",
                at="kind",
            )
        if self.kind is not Kind.PRINT and self.certificate_field is not None:
            raise _rule(
                "certificate_field only applies to print items",
                "remove certificate_field",
                at="certificate_field",
            )
        if self.query_by == "case_number":
            cases = [f for f in self.fields if isinstance(f, CaseNumberField)]
            if self.kind is not Kind.QUERY or len(cases) != 1:
                raise _rule(
                    "query_by = \"case_number\" needs a query item with exactly one "
                    "case_number field",
                    "set kind = \"query\" and add one [[fields]] with type = \"case_number\"",
                    at="query_by",
                )
        if not self.identity.required and self.query_by != "case_number":
            raise _rule(
                "only an item queried by case number may run without identity",
                "set identity.required = true",
                at="identity.required",
            )

    # -- lookups -------------------------------------------------------------------------
    def field(self, field_id: str) -> AnyField:
        for item_field in self.fields:
            if item_field.id == field_id:
                return item_field
        raise KeyError(field_id)

    @property
    def case_number_field(self) -> CaseNumberField | None:
        return next((f for f in self.fields if isinstance(f, CaseNumberField)), None)

    def required_devices(self) -> frozenset[DeviceClass]:
        return frozenset(self.devices)


# -- reading and reporting -----------------------------------------------------------------


class ManifestError(ValueError):
    """item.toml is unreadable or invalid; `problems` says where and how to fix each."""

    def __init__(self, problems: Sequence[LintProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems) or "invalid manifest")
        self.problems = list(problems)


_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_toml(raw: bytes | str, file: str) -> tuple[dict[str, Any], str]:
    """Parse TOML text, or ManifestError with the line tomllib complained about."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1 if isinstance(raw, bytes) else 1
        raise ManifestError(
            [LintProblem(file, line, "the file is not valid UTF-8", "save it as UTF-8")]
        ) from None
    try:
        return tomllib.loads(text), text
    except RecursionError:
        # tomllib recurses once per nested array or inline table; a few hundred levels
        # exhaust the stack. No manifest nests more than three deep.
        raise ManifestError(
            [
                LintProblem(
                    file, 1, "arrays or inline tables are nested too deeply",
                    "nest at most a few levels: use [tables] and [[arrays of tables]]",
                )
            ]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc)
        match = _TOML_POSITION.search(detail)
        line = int(match[1]) if match else 1
        message = _TOML_POSITION.sub("", detail).strip()
        raise ManifestError(
            [
                LintProblem(
                    file,
                    line,
                    f"TOML syntax error: {message}",
                    "fix the TOML on this line (quote strings, one key per line, "
                    "tables as [name])",
                )
            ]
        ) from None


def check_manifest(data: Any, text: str, file: str, folder: str | None) -> Manifest:
    """Validate parsed TOML; ManifestError lists every problem with its line."""
    try:
        return Manifest.model_validate(data, context={"folder": folder})
    except ValidationError as exc:
        lines = key_lines(text)
        problems = [_problem(error, data, lines, file) for error in exc.errors()]
        raise ManifestError(sorted(set(problems), key=lambda p: (p.line, p.message))) from None


def read_manifest(raw: bytes | str, file: str, folder: str | None) -> Manifest:
    data, text = parse_toml(raw, file)
    return check_manifest(data, text, file, folder)


def _clean_loc(data: Any, loc: Sequence[Any]) -> tuple[Any, ...]:
    """Pydantic's error path with union tags dropped, so it walks the TOML data."""
    path: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif i == len(loc) - 1:
            path.append(part)  # a missing key: keep it, the parent's line is used
        # otherwise a discriminator tag such as "choice": not in the data, skip it
    return tuple(path)


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _problem(error: Mapping[str, Any], data: Any, lines: Mapping[tuple, int], file: str) -> LintProblem:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = _clean_loc(data, error["loc"])
    if "at" in ctx:
        loc = tuple(int(p) if p.isdigit() else p for p in ctx["at"].split("."))
    line = locate(lines, loc)
    where = _dotted(loc[:-1]) if loc else "(top level)"
    last = loc[-1] if loc else ""
    value = error.get("input")
    if kind == "item_rule":
        return LintProblem(file, line, ctx["message"], ctx["fix"])
    if kind == "extra_forbidden":
        return LintProblem(
            file, line, f"unknown key '{last}' in {where}",
            "remove it or correct its spelling (see the manifest reference in docs/items.md)",
        )
    if kind == "missing":
        if last in ("zh", "en"):
            return LintProblem(
                file, line, f"{where} has no {last} text",
                f"add {last} = \"…\" to {where}: every citizen-facing text needs zh and en",
            )
        return LintProblem(file, line, f"missing key '{last}' in {where}", f"add {last} = … to {where}")
    if kind in ("enum", "literal_error"):
        expected = ctx.get("expected", "")
        head = loc[0] if loc else ""
        what = {
            "devices": "device class",
            "certificates": "certificate type",
            "category": "category",
            "kind": "kind",
            "outputs": "output",
            "optional_outputs": "output",
            "hooks": "hook name",
        }.get(head, "value")
        if head == "identity":
            what = "identity source" if "sources" in loc else "assurance level"
        return LintProblem(
            file, line, f"unknown {what} {value!r} at {_dotted(loc)}", f"use one of: {expected}"
        )
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        shown = ctx.get("tag", "")
        message = (
            f"unknown field type {shown!r} at {_dotted(loc)}"
            if kind == "union_tag_invalid"
            else f"field at {_dotted(loc)} has no type"
        )
        return LintProblem(
            file, line, message,
            f"set type to one of: {', '.join(FIELD_TYPES)} (free Chinese text entry is not offered)",
        )
    if kind == "string_too_short":
        return LintProblem(file, line, f"{_dotted(loc)} is empty", "write the text")
    if kind == "string_pattern_mismatch":
        return LintProblem(
            file, line, f"{_dotted(loc)} = {value!r} has the wrong form",
            f"match the pattern {ctx.get('pattern')}",
        )
    if kind == "too_short":
        return LintProblem(file, line, f"{_dotted(loc)} is empty", f"add at least one entry to {_dotted(loc)}")
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "model_attributes_type":
        return LintProblem(
            file, line, f"{_dotted(loc)} has the wrong type ({error['msg']})",
            "see the manifest reference in docs/items.md for the expected type",
        )
    return LintProblem(
        file, line, f"{_dotted(loc)}: {error['msg']}",
        "see the manifest reference in docs/items.md",
    )


def locate(lines: Mapping[tuple, int], loc: Sequence[Any]) -> int:
    """The line of the longest known prefix of `loc` (1 if nothing matches)."""
    for end in range(len(loc), 0, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1


# -- where each key is: a small scanner for TOML that tomllib already accepted ---------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[tuple, int] = {}

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + n]
        self.line += chunk.count("\n")
        self.pos += n

    def skip_space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.advance()
            else:
                return

    def key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self.skip_space(False)
            c = self.peek()
            if c in ('"', "'"):
                parts.append(self.string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if not match:
                    break
                parts.append(match.group(0))
                self.advance(len(match.group(0)))
            self.skip_space(False)
            if self.peek() == ".":
                self.advance()
                continue
            break
        return tuple(parts)

    def string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            self.advance(3)
            end = self.text.index(quote * 3, self.pos)
            while self.text[end + 3 : end + 4] == quote:  # up to two quotes may close it
                end += 1
            value = self.text[self.pos : end]
            self.advance(end + 3 - self.pos)
            return value
        self.advance()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] != quote:
            if quote == '"' and self.text[self.pos] == "\\":
                self.advance()
            self.advance()
        value = self.text[start : self.pos]
        self.advance()
        return value

    def value(self, path: tuple) -> None:
        self.lines.setdefault(path, self.line)
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_space(True)
                if self.peek() in ("]", ""):
                    self.advance()
                    return
                start = self.pos
                self.value(path + (index,))
                self._progressed(start)
                index += 1
                self.skip_space(True)
                if self.peek() == ",":
                    self.advance()
        elif c == "{":
            self.advance()
            while True:
                self.skip_space(False)
                if self.peek() in ("}", ""):
                    self.advance()
                    return
                start = self.pos
                self.key_value(path)
                self._progressed(start)
                self.skip_space(False)
                if self.peek() == ",":
                    self.advance()
        else:  # number, date, boolean: runs to a delimiter
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()

    def _progressed(self, start: int) -> None:
        if self.pos == start:  # something this scanner does not know: stop, never spin
            raise ValueError("scanner stuck")

    def key_value(self, table: tuple) -> None:
        line = self.line
        key = self.key()
        for end in range(1, len(key) + 1):
            self.lines.setdefault(table + key[:end], line)
        self.skip_space(False)
        if self.peek() == "=":
            self.advance()
        self.skip_space(False)
        self.value(table + key)


def key_lines(text: str) -> dict[tuple, int]:
    """Map each key path (array-of-tables entries as indices) to the line it is defined on.

    Only used for error messages, after tomllib accepted the text; if the scanner meets
    something it does not understand it returns what it found so far, because a worse line
    number must never hide the problem itself.
    """
    scanner = _Scanner(text)
    arrays: dict[tuple, int] = {}  # array-of-tables path → entries so far
    table: tuple = ()
    try:
        while True:
            scanner.skip_space(True)
            if scanner.pos >= len(text):
                break
            if scanner.peek() == "[":
                line = scanner.line
                double = scanner.peek(2) == "[["
                scanner.advance(2 if double else 1)
                parts = scanner.key()
                scanner.advance(2 if double else 1)
                resolved: tuple = ()
                for i, part in enumerate(parts):
                    resolved += (part,)
                    if resolved in arrays and (i < len(parts) - 1 or not double):
                        resolved += (arrays[resolved] - 1,)
                    scanner.lines.setdefault(resolved, line)
                if double:
                    arrays[resolved] = arrays.get(resolved, 0) + 1
                    resolved += (arrays[resolved] - 1,)
                scanner.lines[resolved] = line
                table = resolved
            else:
                start = scanner.pos
                scanner.key_value(table)
                scanner._progressed(start)
    except (ValueError, IndexError, RecursionError):
        pass
    return scanner.lines
