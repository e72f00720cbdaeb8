"""Plausible answers for an item's fields, derived from its manifest on the day they are
needed (so a month field's "this month or the next two" is always met). Used by headless
journeys, the demo and the benchmarks; tests that check validation give their own answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kiosk.items.manifest import (
    CaseNumberField,
    ChoiceField,
    DateField,
    IdNumberField,
    MonthField,
    NumberField,
    PhoneField,
    YearField,
    YesNoField,
)


class NoExample(ValueError):
    """The field needs a real value (a case number): give it with --answers."""


def _clamp(value: int, low: int | None, high: int | None) -> int:
    if high is not None:
        value = min(value, high)
    if low is not None:
        value = max(value, low)
    return value


def _month(today: dt.date, offset: int) -> str:
    index = today.year * 12 + today.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def example_answers(
    manifest, today: dt.date, *, phone: str = "13800138000", id_number: str = ""
) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for field in manifest.fields:
        if isinstance(field, ChoiceField):
            answers[field.id] = field.options[0].value
        elif isinstance(field, YesNoField):
            answers[field.id] = True
        elif isinstance(field, MonthField):
            answers[field.id] = _month(today, _clamp(0, field.min_offset, field.max_offset))
        elif isinstance(field, YearField):
            answers[field.id] = today.year + _clamp(0, field.min_offset, field.max_offset)
        elif isinstance(field, DateField):
            days = _clamp(0, field.min_offset, field.max_offset)
            answers[field.id] = (today + dt.timedelta(days=days)).isoformat()
        elif isinstance(field, NumberField):
            low = field.min if field.min is not None else 1
            answers[field.id] = low if field.max is None else min(low, field.max)
        elif isinstance(field, PhoneField):
            answers[field.id] = phone
        elif isinstance(field, IdNumberField):
            answers[field.id] = id_number
        elif isinstance(field, CaseNumberField):
            if field.required:
                raise NoExample(f"field {field.id} needs a real case number")
        else:
            raise NoExample(f"no example for field {field.id} of type {field.type}")
    return answers
