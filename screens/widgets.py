"""The few widgets every screen is built from; their look lives in kv/widgets.kv.

All sizes come from the app's theme, so switching 长辈模式 restyles every screen at once.
Touchable widgets subclass `Touchable`, which the accessibility tests use to find targets.
"""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label


class KioskLabel(Label):
    """Main text: wraps to its width, grows to its text's height."""


class TitleLabel(KioskLabel):
    pass


class HintLabel(KioskLabel):
    """Secondary text under a main text."""


class FooterLabel(KioskLabel):
    """Small print at the bottom edge (privacy promise, kiosk id); one line, never wraps."""


class Touchable:
    """Marker for anything a citizen can tap (checked against the theme's target size)."""


class KioskButton(Touchable, ButtonBehavior, Label):
    """Filled primary button."""


class HeroButton(KioskButton):
    """The one big call to action of a screen (开始办理)."""


class OutlineButton(Touchable, ButtonBehavior, Label):
    """Secondary action: outlined, not filled, as wide as its label (never wraps)."""


class WayCard(BoxLayout):
    """One of the ways to begin (扫苏服码 / 插身份证 / 插社保卡) with a one-line hint."""

    title = StringProperty("")
    hint = StringProperty("")
    ready = BooleanProperty(True)  # its device works; if not, `hint` says what to do


class CountdownBanner(Touchable, ButtonBehavior, BoxLayout):
    """Non-blocking idle warning across the bottom; tapping it (or anything) continues."""


class ChoiceButton(Touchable, ButtonBehavior, Label):
    """An option (a choice, yes/no, a rating, a reason chip). Chosen ones are filled and
    start with "✓", so the choice never rests on colour alone."""

    selected = BooleanProperty(False)


class KeyButton(Touchable, ButtonBehavior, Label):
    """A keypad key or a stepper's − / +: large, square-ish, outlined."""


class ItemButton(Touchable, ButtonBehavior, BoxLayout):
    """A catalogue entry: the item's name and, when it cannot be used now, why."""

    title = StringProperty("")
    reason = StringProperty("")


class Panel(BoxLayout):
    """A white card for grouped text (guide sections, a result, the answers)."""
