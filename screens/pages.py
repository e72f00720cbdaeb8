"""The screens of a citizen's journey after identification, one per conductor page.

Every one shares the `StepScreen` outline (kv/pages.kv): a heading, a content area that
pages with ▲ / ▼ buttons when it is taller than the screen (taps only, no swiping), and a
row of actions. `refresh(app, conductor)` rebuilds the content from the conductor whenever
the page is shown or changes; screens hold no journey state of their own. Tappable widgets
are kept in `targets` by a stable name, for the pilot and the tests.
"""

from __future__ import annotations

import datetime as dt

from kivy.metrics import dp
from kivy.properties import StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk.conductor import Action, Page
from kiosk.items.manifest import ChoiceField
from kiosk.platform.api import RatingLevel
from screens.inputs import input_for
from screens.screens import KioskScreen
from screens.widgets import (
    ChoiceButton,
    HintLabel,
    ItemButton,
    KioskButton,
    KioskLabel,
    OutlineButton,
    Panel,
    TitleLabel,
)

RATING_LEVELS = [level.value for level in RatingLevel]  # 非常满意 … 非常不满意
RATING_REASONS = ("fast", "easy", "clear", "slow", "hard_to_use", "device_fault", "not_done")


class PagedScroll(BoxLayout):
    """A scroll area with ▲ / ▼ page buttons, shown only when the content overflows."""

    def on_kv_post(self, _base) -> None:
        self.ids.view.bind(height=self._update)
        self.ids.content.bind(height=self._update)

    def _update(self, *_args) -> None:
        overflow = self.ids.content.height > self.ids.view.height + 1
        for button in (self.ids.up, self.ids.down):
            button.opacity = 1 if overflow else 0
            button.disabled = not overflow
        self.ids.pager.width = self.ids.up.width if overflow else 0

    def page(self, direction: int) -> None:
        view: ScrollView = self.ids.view
        spare = self.ids.content.height - view.height
        if spare <= 0:
            return
        step = view.height * 0.8 / spare
        view.scroll_y = min(1.0, max(0.0, view.scroll_y - direction * step))

    def reset(self) -> None:
        self.ids.view.scroll_y = 1.0


class StepScreen(KioskScreen):
    heading = StringProperty("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.targets: dict[str, Widget] = {}

    # -- building blocks -------------------------------------------------------------------
    @property
    def content(self) -> BoxLayout:
        return self.ids.scroll.ids.content

    def clear(self) -> None:
        self.targets = {}
        self.content.clear_widgets()
        self.ids.actions.clear_widgets()
        self.ids.scroll.reset()

    def add(self, widget: Widget) -> Widget:
        self.content.add_widget(widget)
        return widget

    def text(self, text: str, *, hint: bool = False, bold: bool = False, panel: BoxLayout | None = None):
        label = (HintLabel if hint else KioskLabel)(text=text, bold=bold)
        (panel or self.content).add_widget(label)
        return label

    def action(self, name: str, text: str, callback, *, primary: bool = False) -> Widget:
        button = KioskButton(text=text) if primary else OutlineButton(text=text)
        if primary:
            button.size_hint_x = 0.4
        button.bind(on_release=lambda *_: callback(), height=self._fit_actions)
        self.ids.actions.add_widget(button)
        self.targets[name] = button
        self._fit_actions()
        return button

    def _fit_actions(self, *_args) -> None:
        row = self.ids.actions
        row.height = max([c.height for c in row.children] + [0])

    def spacer(self) -> None:
        self.ids.actions.add_widget(Widget(size_hint_y=None, height=0))

    def exit_action(self, app, conductor) -> None:
        self.action("exit", app.t("app.exit"), conductor.exit)

    def refresh(self, app, conductor) -> None:  # pragma: no cover - every page overrides
        raise NotImplementedError


class CatalogueScreen(StepScreen):
    state = Page.CATALOGUE

    def refresh(self, app, conductor) -> None:
        self.clear()
        self.heading = app.t("catalogue.title")
        if conductor.identity is not None:
            self.text(app.t("catalogue.welcome", name=conductor.identity.masked_name), hint=True)
        elif conductor.way is not None:
            self.text(app.t("catalogue.code_held"), hint=True)
        for category, offers in conductor.categories():
            self.text(app.t(f"items.category.{category}"), bold=True)
            for offer in offers:
                item = offer.item
                reason = ""
                if not offer.shown:
                    why = offer.hidden[0]
                    params = {k: app.t(v) for k, v in why.params.items()}
                    reason = app.t(why.message_key, **params)
                button = ItemButton(title=item.manifest.name.get(app.locale), reason=reason)
                button.disabled = not offer.shown
                button.bind(on_release=lambda _b, item_id=item.id: app.run_task(conductor.choose(item_id)))
                self.add(button)
                self.targets[f"item:{item.id}"] = button
        self.action("identify", app.t("catalogue.identify_again"), conductor.back_to_identify)
        self.spacer()
        self.exit_action(app, conductor)


class GuideScreen(StepScreen):
    """办事指南: what the citizen needs to know before starting."""

    state = Page.GUIDE

    def refresh(self, app, conductor) -> None:
        self.clear()
        manifest = conductor.item.manifest
        locale = app.locale
        self.heading = manifest.name.get(locale)
        guide = manifest.guide
        for key, texts in (
            ("guide.conditions", guide.conditions),
            ("guide.materials", guide.materials),
            ("guide.time_limit", [guide.time_limit]),
            ("guide.fee", [guide.fee]),
            ("guide.notes", guide.notes),
        ):
            if not texts:
                continue
            panel = Panel()
            self.text(app.t(key), bold=True, panel=panel)
            for text in texts:
                self.text(text.get(locale), panel=panel)
            self.add(panel)
        self.action("back", app.t("app.back"), conductor.previous)
        self.exit_action(app, conductor)
        self.spacer()
        self.action("start", app.t("guide.start"), conductor.start_item, primary=True)


class FieldScreen(StepScreen):
    """One field per screen: its label, help, input and what is wrong with the answer."""

    state = Page.FIELD

    def refresh(self, app, conductor) -> None:
        self.clear()
        item_field = conductor.current_field
        locale = app.locale
        fields = conductor.fields
        self.heading = item_field.label.get(locale)
        self.text(app.t("field.step", number=conductor.field_index + 1, total=len(fields)), hint=True)
        if item_field.help is not None:
            self.text(item_field.help.get(locale), hint=True)
        options = conductor.field_options() if isinstance(item_field, ChoiceField) else []
        value = conductor.answers.get(item_field.id)
        widget = input_for(
            item_field, value, lambda v, fid=item_field.id: conductor.set_answer(fid, v),
            options, dt.date.today(),
        )
        self.add(widget)
        self.input = widget
        for name, button in getattr(widget, "buttons", {}).items():
            self.targets[f"option:{name}"] = button
        for name, button in getattr(widget, "keys", {}).items():
            self.targets[f"key:{name}"] = button
        for part in ("year", "month", "day"):
            stepper = getattr(widget, part, None)
            if stepper is not None:
                self.targets[f"{part}:-"], self.targets[f"{part}:+"] = stepper.minus, stepper.plus
        for error in conductor.field_errors:
            label = self.text("！" + app.t(error.message_key, **error.params), bold=True)
            label.color = (*app.theme.palette.warning, 1)
            self.targets["error"] = label
        self.action("back", app.t("app.back"), conductor.previous)
        self.exit_action(app, conductor)
        self.spacer()
        self.action("next", app.t("field.next"), conductor.next_field, primary=True)


class ConsentScreen(StepScreen):
    """免证办: which e-certificates the kiosk will fetch, agreed before it does."""

    state = Page.CONSENT

    def refresh(self, app, conductor) -> None:
        self.clear()
        self.heading = app.t("consent.title")
        self.text(app.t("consent.intro"))
        panel = Panel()
        for certificate in conductor.consent_certificates():
            self.text("• " + app.t(f"certificate.{certificate}"), bold=True, panel=panel)
        self.add(panel)
        self.text(app.t("consent.use"), hint=True)
        self.action("back", app.t("app.back"), conductor.previous)
        self.exit_action(app, conductor)
        self.spacer()
        self.action("agree", app.t("consent.agree"), conductor.agree, primary=True)


class CommitmentScreen(StepScreen):
    """告知承诺: the commitment text and an explicit 本人承诺."""

    state = Page.COMMITMENT

    def refresh(self, app, conductor) -> None:
        self.clear()
        commitment = conductor.item.manifest.commitment
        self.heading = app.t("commitment.title")
        panel = Panel()
        self.text(commitment.text.get(app.locale), panel=panel)
        self.add(panel)
        self.text(commitment.consent.get(app.locale), bold=True)
        self.action("back", app.t("app.back"), conductor.previous)
        self.exit_action(app, conductor)
        self.spacer()
        self.action("agree", app.t("commitment.agree"), conductor.agree, primary=True)


class ConfirmScreen(StepScreen):
    state = Page.CONFIRM

    def refresh(self, app, conductor) -> None:
        self.clear()
        manifest = conductor.item.manifest
        self.heading = app.t("confirm.title")
        panel = Panel()
        self.text(app.t("items.result.item") + "：" + manifest.name.get(app.locale), bold=True, panel=panel)
        for label, value in conductor.answer_summary():
            self.text(f"{label}：{value}", panel=panel)
        self.add(panel)
        self.text(app.t(f"confirm.what.{manifest.kind}"), hint=True)
        self.action("back", app.t("confirm.change"), conductor.previous)
        self.exit_action(app, conductor)
        self.spacer()
        self.action("confirm", app.t(f"confirm.go.{manifest.kind}"), conductor.confirm, primary=True)


class WorkingScreen(StepScreen):
    state = Page.WORKING

    def refresh(self, app, conductor) -> None:
        self.clear()
        kind = conductor.item.manifest.kind if conductor.item else "query"
        self.heading = app.t(f"working.title.{kind}")
        self.text(app.t("working.wait"))
        self.text(app.t("working.dont_leave"), hint=True)


class ResultScreen(StepScreen):
    state = Page.RESULT

    def refresh(self, app, conductor) -> None:
        self.clear()
        screen = conductor.result
        self.heading = screen.title
        panel = Panel()
        for line in screen.lines:
            self.text(f"{line.label}：{line.value}", panel=panel)
        if screen.table is not None:
            self.text("　".join(screen.table.columns), bold=True, panel=panel)
            for row in screen.table.rows:
                self.text("　".join(str(cell) for cell in row), panel=panel)
        self.add(panel)
        if screen.note:
            self.text(screen.note, hint=True)
        for key in conductor.take_away():
            label = self.text("→ " + app.t(key), bold=True)
            self.targets[key] = label
        if conductor.receipt_state:
            self.targets["receipt_state"] = self.text(app.t(f"result.receipt_{conductor.receipt_state}"), bold=True)
        if conductor.receipt_offered():
            self.action("receipt", app.t("result.print_receipt"), conductor.print_receipt)
        self.spacer()
        self.action("done", app.t("result.done"), conductor.done, primary=True)


class RatingScreen(StepScreen):
    """一次一评: five levels in words, optional reasons, skip allowed."""

    state = Page.RATING

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.level: str | None = None
        self.reasons: set[str] = set()

    def refresh(self, app, conductor) -> None:
        self.clear()
        self.heading = app.t("rating.title")
        for level in RATING_LEVELS:
            button = ChoiceButton(text=app.t(f"rating.level.{level}"))
            button.selected = level == self.level
            if button.selected:
                button.text = "✓ " + button.text
            button.bind(on_release=lambda _b, lv=level: self._pick(app, conductor, lv))
            self.add(button)
            self.targets[f"rate:{level}"] = button
        if self.level is not None:
            self.text(app.t("rating.why"), hint=True)
            row = BoxLayout(orientation="vertical", size_hint_y=None, spacing=dp(app.theme.spacing_dp) / 2)
            row.bind(minimum_height=row.setter("height"))
            for reason in RATING_REASONS:
                chip = ChoiceButton(text=("✓ " if reason in self.reasons else "") + app.t(f"rating.reason.{reason}"))
                chip.selected = reason in self.reasons
                chip.bind(on_release=lambda _b, r=reason: self._toggle(app, conductor, r))
                row.add_widget(chip)
                self.targets[f"reason:{reason}"] = chip
            self.add(row)
        self.action("skip", app.t("rating.skip"), lambda: self._skip(conductor))
        self.spacer()
        submit = self.action("submit", app.t("rating.submit"), lambda: self._submit(app, conductor), primary=True)
        submit.disabled = self.level is None

    def _pick(self, app, conductor, level: str) -> None:
        self.level = level
        self.refresh(app, conductor)

    def _toggle(self, app, conductor, reason: str) -> None:
        self.reasons ^= {reason}
        self.refresh(app, conductor)

    def _submit(self, app, conductor) -> None:
        level, reasons = self.level, sorted(self.reasons)
        self.level, self.reasons = None, set()
        app.run_task(conductor.rate(level, reasons))

    def _skip(self, conductor) -> None:
        self.level, self.reasons = None, set()
        conductor.finish()


class ProblemScreen(StepScreen):
    """A plain-language error: what happened and what the citizen can do now."""

    state = Page.PROBLEM

    def refresh(self, app, conductor) -> None:
        self.clear()
        problem = conductor.problem
        self.heading = app.t("problem.title")
        label = self.text(app.t(problem.message_key, **problem.params), bold=True)
        self.targets["message"] = label
        self.text(app.t("problem.help"), hint=True)
        for action in problem.actions:
            primary = action is problem.actions[0] and action is not Action.EXIT
            self.action(str(action), app.t(f"problem.action.{action}"),
                        lambda a=action: conductor.act(a), primary=primary)


PAGE_SCREENS: tuple[type[StepScreen], ...] = (
    CatalogueScreen, GuideScreen, FieldScreen, ConsentScreen, CommitmentScreen, ConfirmScreen,
    WorkingScreen, ResultScreen, RatingScreen, ProblemScreen,
)
