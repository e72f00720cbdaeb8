"""Inputs for item fields, built from the field's type: nothing but taps (DESIGN §10).

- choice: one big button per option; the chosen one is marked "✓" (never colour alone);
- yes/no: two such buttons;
- phone, id_number, number, case_number: a digit keypad (X for ID numbers, - for case
  numbers) under a display of what was typed;
- date, month, year: steppers (− / +) per part, starting at a valid value.

Each input calls `on_value(value)` with the field's answer in the form `Field.parse` takes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

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
from screens.widgets import ChoiceButton, KeyButton, KioskLabel, TitleLabel

OnValue = Callable[[Any], None]
CHECK = "✓ "
DELETE = "del"  # the keypad's delete key (its label is translated)


def _app():
    from kivy.app import App

    return App.get_running_app()


class ChoiceList(BoxLayout):
    """Options as full-width buttons; tapping one chooses it."""

    def __init__(self, options: list[tuple[str, str]], value: Any, on_value: OnValue, **kwargs) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, **kwargs)
        theme = _app().theme
        self.spacing = dp(theme.spacing_dp) / 2
        self.bind(minimum_height=self.setter("height"))
        self._on_value = on_value
        self.buttons: dict[str, ChoiceButton] = {}
        for option_value, label in options:
            button = ChoiceButton(text=label)
            button.value = option_value
            button.label = label
            button.bind(on_release=self._chosen)
            self.buttons[option_value] = button
            self.add_widget(button)
        self._mark(value)

    def _chosen(self, button) -> None:
        self._mark(button.value)
        self._on_value(button.value)

    def _mark(self, value: Any) -> None:
        for option_value, button in self.buttons.items():
            button.selected = option_value == value
            button.text = (CHECK if button.selected else "") + button.label


class Keypad(BoxLayout):
    """What was typed (large, grouped for reading back) beside a 4×3 key grid, so the whole
    keypad fits on a landscape screen even in 长辈模式 (no paging while typing)."""

    def __init__(self, value: str, on_value: OnValue, *, extra: str = "", max_length: int = 18,
                 group: tuple[int, ...] = (), **kwargs) -> None:
        super().__init__(orientation="horizontal", size_hint_y=None, **kwargs)
        theme = _app().theme
        self.spacing = dp(theme.spacing_dp)
        self.value = str(value or "")
        self._on_value = on_value
        self._max = max_length
        self._group = group
        self.display = TitleLabel(halign="center", size_hint_x=0.4, pos_hint={"center_y": 0.5})
        self.add_widget(self.display)
        grid = GridLayout(cols=3, size_hint=(0.6, None), spacing=dp(theme.spacing_dp) / 2)
        grid.bind(minimum_height=grid.setter("height"))
        grid.bind(height=self.setter("height"))
        keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", extra or "", "0", DELETE]
        self.keys: dict[str, KeyButton] = {}
        for key in keys:
            if not key:
                grid.add_widget(KioskLabel(text=""))
                continue
            button = KeyButton(text=_app().t("input.delete") if key == DELETE else key)
            button.key = key
            button.bind(on_release=self._pressed)
            self.keys[key] = button
            grid.add_widget(button)
        self.add_widget(grid)
        self._show()

    def _pressed(self, button) -> None:
        key = button.key
        if key == DELETE:
            self.value = self.value[:-1]
        elif len(self.value) < self._max:
            self.value += key
        self._show()
        self._on_value(self.value)

    def _show(self) -> None:
        text, at = self.value, 0
        if self._group:
            parts = []
            for size in self._group:
                if at < len(text):
                    parts.append(text[at : at + size])
                at += size
            if at < len(text):
                parts.append(text[at:])
            text = " ".join(parts)
        self.display.text = text or "—"


class Stepper(BoxLayout):
    """One part of a date: − value +."""

    def __init__(self, label: str, value: int, low: int, high: int, on_change: Callable[[int], None], **kwargs):
        super().__init__(orientation="horizontal", size_hint_y=None, **kwargs)
        theme = _app().theme
        self.spacing = dp(theme.spacing_dp) / 2
        self.low, self.high, self.value = low, high, value
        self._on_change = on_change
        self.minus = KeyButton(text="−", size_hint_x=0.25)
        self.plus = KeyButton(text="+", size_hint_x=0.25)
        self.shown = TitleLabel(halign="center", size_hint_x=0.5)
        self.shown.unit = label
        self.minus.bind(on_release=lambda *_: self.step(-1))
        self.plus.bind(on_release=lambda *_: self.step(1))
        for widget in (self.minus, self.shown, self.plus):
            self.add_widget(widget)
        self.height = max(self.minus.height, self.shown.height)
        self.minus.bind(height=self._fit)
        self.shown.bind(height=self._fit)
        self._show()

    def _fit(self, *_args) -> None:
        self.height = max(self.minus.height, self.shown.height)

    def step(self, delta: int) -> None:
        self.value = min(self.high, max(self.low, self.value + delta))
        self._show()
        self._on_change(self.value)

    def set_bounds(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.value = min(high, max(low, self.value))
        self._show()

    def _show(self) -> None:
        self.shown.text = f"{self.value} {self.shown.unit}"
        self.minus.disabled = self.value <= self.low
        self.plus.disabled = self.value >= self.high


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


class DatePicker(BoxLayout):
    """Year / month / day steppers within the field's bounds (relative to today)."""

    def __init__(self, kind: str, value: Any, on_value: OnValue, today: dt.date,
                 low: dt.date, high: dt.date, **kwargs) -> None:
        super().__init__(orientation="vertical", size_hint_y=None, **kwargs)
        theme = _app().theme
        self.spacing = dp(theme.spacing_dp) / 2
        self.bind(minimum_height=self.setter("height"))
        self.kind, self._on_value, self.low, self.high = kind, on_value, low, high
        start = self._parse(value) or min(max(today, low), high)
        t = _app().t
        self.year = Stepper(t("input.year"), start.year, low.year, high.year, self._changed)
        self.add_widget(self.year)
        self.month = self.day = None
        if kind in ("date", "month"):
            self.month = Stepper(t("input.month"), start.month, 1, 12, self._changed)
            self.add_widget(self.month)
        if kind == "date":
            self.day = Stepper(t("input.day"), start.day, 1, 31, self._changed)
            self.add_widget(self.day)
        self._changed(0)

    def _parse(self, value: Any) -> dt.date | None:
        if isinstance(value, int):
            return dt.date(value, 1, 1)
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value if len(value) == 10 else value + "-01")
            except ValueError:
                return None
        return None

    def _changed(self, _value: int) -> None:
        import calendar

        year = self.year.value
        if self.month is not None:
            low = self.low.month if year == self.low.year else 1
            high = self.high.month if year == self.high.year else 12
            self.month.set_bounds(low, high)
        if self.day is not None and self.month is not None:
            month = self.month.value
            last = calendar.monthrange(year, month)[1]
            low = self.low.day if (year, month) == (self.low.year, self.low.month) else 1
            high = min(last, self.high.day) if (year, month) == (self.high.year, self.high.month) else last
            self.day.set_bounds(low, high)
        self._on_value(self.value())

    def value(self) -> Any:
        if self.kind == "year":
            return self.year.value
        if self.kind == "month":
            return f"{self.year.value:04d}-{self.month.value:02d}"
        return dt.date(self.year.value, self.month.value, self.day.value).isoformat()


def _bounds(item_field: Any, today: dt.date) -> tuple[dt.date, dt.date]:
    """The field's range as dates (a wide default where it sets none)."""
    low_offset, high_offset = item_field.min_offset, item_field.max_offset
    if isinstance(item_field, DateField):
        low = today + dt.timedelta(days=low_offset) if low_offset is not None else dt.date(today.year - 100, 1, 1)
        high = today + dt.timedelta(days=high_offset) if high_offset is not None else dt.date(today.year + 5, 12, 31)
        return low, high
    if isinstance(item_field, MonthField):
        def month(offset: int) -> dt.date:
            index = _month_index(today.year, today.month) + offset
            return dt.date(index // 12, index % 12 + 1, 1)

        low = month(low_offset) if low_offset is not None else dt.date(today.year - 100, 1, 1)
        high = month(high_offset) if high_offset is not None else dt.date(today.year + 5, 12, 1)
        return low, high
    low_year = today.year + low_offset if low_offset is not None else today.year - 100
    high_year = today.year + high_offset if high_offset is not None else today.year + 5
    return dt.date(low_year, 1, 1), dt.date(high_year, 12, 31)


def input_for(item_field: Any, value: Any, on_value: OnValue, options: list[tuple[str, str]],
              today: dt.date):
    """The input widget for one manifest field."""
    t = _app().t
    if isinstance(item_field, ChoiceField):
        return ChoiceList(options, value, on_value)
    if isinstance(item_field, YesNoField):
        shown = {True: "yes", False: "no"}.get(value, value)
        return ChoiceList([("yes", t("input.yes")), ("no", t("input.no"))], shown, on_value)
    if isinstance(item_field, PhoneField):
        return Keypad(value or "", on_value, max_length=11, group=(3, 4, 4))
    if isinstance(item_field, IdNumberField):
        return Keypad(value or "", on_value, extra="X", max_length=18, group=(6, 8, 4))
    if isinstance(item_field, CaseNumberField):
        return Keypad(value or "", on_value, extra="-", max_length=40)
    if isinstance(item_field, NumberField):
        return Keypad("" if value is None else str(value), on_value, max_length=9)
    if isinstance(item_field, (DateField, MonthField, YearField)):
        low, high = _bounds(item_field, today)
        return DatePicker(item_field.type, value, on_value, today, low, high)
    raise TypeError(f"no input for field type {type(item_field).__name__}")
