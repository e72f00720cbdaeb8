"""The Kivy application: shows the screen for the session's state and forwards input.

It holds no journey logic. Screens call the small verbs below (`start_session`,
`end_session`, `toggle_elderly`...), which drive the `SessionMachine`; the machine's
transitions pick the screen. A clock tick feeds the machine's timers and the countdown.
Each screen (and the countdown) has a spoken prompt, said in 长辈模式 (or always, if so
configured) through the runtime's `Speaker`, never blocking the loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.runtime import Runtime
from kiosk.session import CITIZEN_STATES, EndReason, State, Transition
from kiosk.speech import Speaker
from screens import theme
from screens import widgets  # noqa: F401  (registers the widget classes used in kv)
from screens.screens import KV_FILES, SCREENS, KioskScreen, ScreenFrame  # noqa: F401

_KV_DIR = Path(__file__).with_name("kv")
_log = logging.getLogger(__name__)
TICK_S = 0.25


class KioskApp(App):
    theme = ObjectProperty(theme.NORMAL, rebind=True)  # kv chains app.theme.x rebind
    locale = StringProperty("zh_CN")
    elderly = BooleanProperty(False)
    countdown = NumericProperty(-1)  # whole seconds left on the idle warning; -1: none
    out_of_service_reason = StringProperty("")
    kiosk_id = StringProperty("")
    site_name = StringProperty("")

    def __init__(self, runtime: Runtime, *, speaker: Speaker | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = "政务服务自助终端"
        self.runtime = runtime
        self.machine = runtime.machine
        self._translate = runtime.translator
        self.default_locale = runtime.config.kiosk.locale
        self.locale = self.default_locale
        self.kiosk_id = runtime.config.kiosk.id
        self.site_name = runtime.config.kiosk.site_name
        self.screen_manager: ScreenManager | None = None
        self.banner = None
        self.speaker = speaker if speaker is not None else runtime.speaker
        self._speech = runtime.config.speech
        self._speech_tasks: set[asyncio.Task] = set()
        self._speech_failed = False
        self._quiet = False  # modes are being reset for the next citizen: say nothing
        self._countdown_on = False
        self._spoken_key = ""  # the prompt said last
        self._unsubscribe = self.machine.subscribe(self._on_transition)

    # -- building ----------------------------------------------------------------------
    def build(self):
        for name in KV_FILES:
            Builder.load_file(str(_KV_DIR / name))
        from screens.widgets import CountdownBanner

        root = FloatLayout()
        self.screen_manager = ScreenManager(transition=NoTransition())
        for screen_class in SCREENS:
            self.screen_manager.add_widget(screen_class())
        root.add_widget(self.screen_manager)
        self.banner = CountdownBanner()
        root.add_widget(self.banner)
        self._show_banner(False)
        self._show(self.machine.state)
        self.speak_prompt()
        Window.bind(on_touch_down=self._on_any_touch)
        Clock.schedule_interval(self._tick, TICK_S)
        return root

    def on_stop(self) -> None:
        Window.unbind(on_touch_down=self._on_any_touch)
        self._unsubscribe()
        self.speaker.close()

    def screen(self, state: State | str) -> KioskScreen:
        assert self.screen_manager is not None
        return self.screen_manager.get_screen(State(state).value)

    # -- text --------------------------------------------------------------------------
    def t(self, key: str, locale: str | None = None, **params) -> str:
        """Translate; kv passes `app.locale` as the second argument so labels rebind."""
        return self._translate(key, locale or self.locale, **params)

    def reason_text(self, reason: str, locale: str | None = None) -> str:
        key = f"out_of_service.reason.{reason}"
        if reason and self._translate.has(key, locale or self.locale):
            return self.t(key, locale)
        return reason  # free text typed by ops, shown as given

    # -- speech ------------------------------------------------------------------------
    def spoken_prompt(self) -> tuple[str, str] | None:
        """What the current screen says aloud: its catalogue key and the text in the
        current language (the countdown's while it runs), or None for a silent state."""
        left = self.machine.countdown()
        if left is not None:
            return "speech.countdown", self.t("speech.countdown", seconds=math.ceil(left))
        key = f"speech.{self.machine.state.value}"
        if not self._translate.has(key, self.locale):
            return None
        if self.machine.state is State.OUT_OF_SERVICE:
            reason = self.reason_text(self.out_of_service_reason).strip()
            if reason and reason[-1] not in "。．.！!？?":  # free text from ops: end the sentence
                reason += "。" if self.locale.startswith("zh") else "."
            return key, re.sub(r"\s{2,}", " ", self.t(key, reason=reason))
        return key, self.t(key)

    def speak_prompt(self) -> None:
        """Say the current prompt if this mode speaks (长辈模式, or `[speech] always`); a new
        prompt cuts the one still playing. Fire and forget: the loop never waits for it."""
        if self._quiet or self.screen_manager is None:
            return
        if not (self._speech.enabled and (self.elderly or self._speech.always)):
            self.speaker.cancel()
            return
        prompt = self.spoken_prompt()
        if prompt is None:
            self.speaker.cancel()
            return
        key, text = prompt
        self._spoken_key = key
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # App.run() without asyncio: `kiosk run` always has a loop
            self._speech_failure("no asyncio loop")
            return
        task = loop.create_task(self.speaker.say(text, self.locale, key=key, elderly=self.elderly))
        self._speech_tasks.add(task)
        task.add_done_callback(self._speech_done)

    def _speech_done(self, task: asyncio.Task) -> None:
        self._speech_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._speech_failure(repr(task.exception()))

    def _speech_failure(self, what: str) -> None:
        if not self._speech_failed:  # once: a broken speaker must not flood the log
            self._speech_failed = True
            _log.error("speech: prompts cannot be spoken: %s", what)

    # -- verbs the screens use ---------------------------------------------------------
    def start_session(self) -> None:
        if self.machine.state is State.ATTRACT:
            self.machine.start()

    def end_session(self) -> None:
        if self.machine.state in CITIZEN_STATES:
            self.machine.end(EndReason.CANCELLED)

    def keep_going(self) -> None:
        self.machine.activity()
        self._tick(0)

    def toggle_elderly(self) -> None:
        self.elderly = not self.elderly

    def toggle_locale(self) -> None:
        self.locale = "en" if self.locale == "zh_CN" else "zh_CN"

    def on_elderly(self, _app, elderly: bool) -> None:
        self.theme = theme.for_mode(elderly)
        self.machine.set_elderly(elderly)
        self.speak_prompt()

    def on_locale(self, _app, _locale: str) -> None:
        self.speak_prompt()

    # -- machine → UI ------------------------------------------------------------------
    def _on_transition(self, event: Transition) -> None:
        self.out_of_service_reason = self.machine.out_of_service_reason or ""
        if event.end_reason is not None:
            _log.info("session ended: %s", event.end_reason)
            self._reset_modes()
        self._show(event.current)
        self._tick(0)
        self.speak_prompt()

    def _show(self, state: State) -> None:
        if self.screen_manager is None:
            return
        if self.screen_manager.has_screen(state.value):
            self.screen_manager.current = state.value
        else:
            _log.error("no screen for state %s", state)

    def _reset_modes(self) -> None:
        """The next citizen starts in the kiosk's default language and normal mode."""
        self._quiet = True
        try:
            self.elderly = False
            self.locale = self.default_locale
        finally:
            self._quiet = False

    def _on_any_touch(self, _window, _touch) -> None:
        self.machine.activity()  # returns None: the touch goes on to the widgets

    def _tick(self, _dt: float) -> None:
        self.machine.tick()
        left = self.machine.countdown()
        self.countdown = -1 if left is None else math.ceil(left)
        self._show_banner(left is not None)
        if (left is not None) != self._countdown_on:
            self._countdown_on = left is not None
            if self._countdown_on:
                self.speak_prompt()  # the countdown's own prompt
            elif self._spoken_key == "speech.countdown":
                self.speaker.cancel()  # continued (or ended): the warning is stale
        if (
            self.machine.state is State.ATTRACT
            and (self.elderly or self.locale != self.default_locale)
            and self.machine.idle_for() > self.machine.timing.idle_s
        ):
            self._reset_modes()  # someone switched modes and walked away

    def _show_banner(self, visible: bool) -> None:
        banner = self.banner
        if banner is None:
            return
        banner.opacity = 1 if visible else 0
        banner.disabled = not visible
        # A hidden banner must not take touches meant for the screen under it.
        banner.pos_hint = {"x": 0, "y": 0} if visible else {"x": 0, "y": -10}
