"""The Kivy application: shows the conductor's page and forwards the citizen's taps.

It holds no journey logic. After the first frame is on screen it opens the kiosk's services
(platform client, outbox, devices: `kiosk.services.open_services`) on the app's own asyncio
loop and hands them to a `kiosk.conductor.Conductor`, whose page picks the screen; screens
call the conductor's verbs. Until the services are up (and in shell-only tests without
them) the session machine's state picks the screen. A clock tick feeds the machine's timers
and the countdown. Each page (and the countdown) has a spoken prompt, said in 长辈模式 (or
always, if so configured) through the runtime's `Speaker`, never blocking the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk import sdnotify
from kiosk.runtime import Runtime
from kiosk.session import CITIZEN_STATES, EndReason, State, Transition
from kiosk.speech import Speaker
from kiosk.tasks import TaskSet
from screens import theme
from screens import widgets  # noqa: F401  (registers the widget classes used in kv)
from screens.screens import KV_FILES, SCREENS, KioskScreen, ScreenFrame  # noqa: F401



def _completed_by_item(telemetry):
    """Items' completed visits from the kiosk's own counts: most used first in the catalogue."""

    def usage() -> dict[str, int]:
        return {item: counts.get("completed", 0) for item, counts in telemetry.totals()["items"].items()}

    return usage

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

    def __init__(
        self,
        runtime: Runtime,
        *,
        speaker: Speaker | None = None,
        with_services: bool = True,
        services_devices: set[str] | None = None,
        **kwargs,
    ) -> None:
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
        self.with_services = with_services
        self._services_devices = services_devices
        self.services = None
        self.conductor = None  # kiosk.conductor.Conductor, once the services are up
        self.services_ready = asyncio.Event()
        self.services_error: BaseException | None = None
        self._services_stack: contextlib.AsyncExitStack | None = None
        self._tasks = TaskSet(_log, "UI task")
        self.page_shown_at = 0.0  # monotonic time the current page was last (re)built
        self.page_drawn_at = 0.0  # ... and the first frame after that (bench/ui.py)
        self._draw_pending = False
        self._last_tick = time.monotonic()
        self.health_source = None

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
        Window.bind(on_touch_down=self._on_any_touch, on_flip=self._on_flip)
        Clock.schedule_interval(self._tick, TICK_S)
        return root

    def on_start(self) -> None:
        if self.with_services:
            # After the first frame: the attract screen is up before the stack loads.
            Window.bind(on_flip=self._after_first_frame)

    def _after_first_frame(self, *_args) -> None:
        Window.unbind(on_flip=self._after_first_frame)
        Clock.schedule_once(lambda _dt: self.run_task(self.open_services()), 0)

    def on_stop(self) -> None:
        Window.unbind(on_touch_down=self._on_any_touch, on_flip=self._on_flip)
        self._unsubscribe()
        self.speaker.close()
        sdnotify.stopping()

    # -- services ----------------------------------------------------------------------
    async def open_services(self) -> None:
        from kiosk.services import open_services

        stack = contextlib.AsyncExitStack()
        self._services_stack = stack
        try:
            services = await stack.enter_async_context(
                open_services(self.runtime.config, devices=self._services_devices)
            )
            services.redactor = self.runtime.redactor
            config = self.runtime.config
            telemetry = self.runtime.telemetry
            if telemetry is None:
                from kiosk.telemetry import Telemetry

                telemetry = Telemetry(self.runtime.data_dir / "telemetry.sqlite3")
                stack.callback(telemetry.close)
            gate = self.runtime.gate
            if gate is None:
                from screens.ops import maintenance_gate

                gate = maintenance_gate(config.resolve(config.fleet.state_dir))
            # The journey's screens and the conductor load with the services, after the
            # first frame: start-up shows the attract screen without them.
            from kiosk.conductor import Conductor

            self._add_journey_screens()
            conductor = Conductor(services, self.machine, telemetry=telemetry, gate=gate,
                                  usage=self.runtime.usage or _completed_by_item(telemetry))
            conductor.locale = self.locale
            self.services, self.conductor = services, conductor
            stack.callback(conductor.subscribe(self._on_page))
            stack.push_async_callback(conductor.stop)
            conductor.start()
            await self._start_health(stack, services, telemetry)
            self.run_task(self._load_catalogue())
            self._show(self.machine.state)
            sdnotify.ready()
            sdnotify.status(f"serving: {len(services.devices.devices)} devices, {len(services.items)} items")
            self.run_task(sdnotify.watchdog_loop(self._healthy))
            _log.info("services up: %d devices, %d items", len(services.devices.devices), len(services.items))
            if services.sandbox is not None and not self.runtime.config.display.fullscreen:
                # Demo: a phone for each test citizen, showing their live 苏服码.
                print(f"sandbox phone pages (苏服码 of the test citizens): "
                      f"{services.sandbox.url.rstrip('/')}/sandbox/phone/c01 … c07", flush=True)
        except Exception as exc:  # noqa: BLE001 - the kiosk stays up and says it is out of service
            self.services_error = exc
            _log.exception("services failed to start")
            self.machine.take_out_of_service("device")
        finally:
            self.services_ready.set()

    async def _start_health(self, stack, services, telemetry) -> None:
        """The local health endpoint the fleet agent reads (a Unix socket, 0660)."""
        from kiosk.health import HealthServer, ServicesHealthSource
        from screens.ops import AppActions

        fleet = self.runtime.config.fleet
        source = ServicesHealthSource(services, telemetry, AppActions(self), time.time())
        self.health_source = source
        server = HealthServer(source, self.runtime.config.resolve(fleet.health_socket),
                              group=fleet.health_group or None)
        try:
            await server.start()
        except OSError as exc:  # the kiosk serves citizens without it; the agent says so
            _log.error("health endpoint not started: %s", exc)
            return
        stack.push_async_callback(server.stop)

    async def _load_catalogue(self) -> None:
        """The catalogue decides which items this kiosk offers: the fleet's signed bundle
        when one is installed (kiosk/bundles.py), else the platform's signed catalogue."""
        catalogue = await asyncio.to_thread(self.bundles().installed_catalogue)
        if catalogue is None:
            try:
                catalogue = await self.services.platform.catalogue()
            except Exception as exc:  # noqa: BLE001 - offline: every loaded item stays a candidate
                _log.warning("catalogue not loaded (%s): offering every loaded item", type(exc).__name__)
                return
        if self.conductor is not None:
            self.conductor.catalogue = catalogue
            self.conductor.refresh_offers()
        source = getattr(self, "health_source", None)
        if source is not None:
            source.catalogue_loaded(catalogue)

    def bundles(self):
        """The kiosk's store of fleet-signed catalogue/config bundles (kiosk/bundles.py)."""
        from kiosk.bundles import KioskBundles

        config = self.runtime.config
        return KioskBundles(self.runtime.data_dir / "bundles", config.resolve(config.fleet.state_dir))

    def _healthy(self) -> bool:
        """For the systemd watchdog: the UI clock still ticks."""
        return time.monotonic() - self._last_tick < 10 * TICK_S + 5

    async def close_services(self) -> None:
        stack, self._services_stack = self._services_stack, None
        self._tasks.cancel_all()
        if stack is not None:
            try:
                await asyncio.wait_for(stack.aclose(), timeout=20)
            except TimeoutError:
                pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                _log.error("services did not stop within 20 s; pending: %s",
                           [t.get_coro() for t in pending])
        self.services = self.conductor = None

    def run_task(self, coro) -> asyncio.Task:
        """Run a coroutine on the app's loop (a conductor step after a tap)."""
        return self._tasks.spawn(coro)

    def screen(self, state: State | str) -> KioskScreen:
        assert self.screen_manager is not None
        return self.screen_manager.get_screen(str(state))

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
        key = f"speech.{self.page}"
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
        if self.conductor is not None:
            self.conductor.begin()
        elif self.machine.state is State.ATTRACT:
            self.machine.start()

    def end_session(self) -> None:
        if self.conductor is not None:
            self.conductor.exit()
        elif self.machine.state in CITIZEN_STATES:
            self.machine.end(EndReason.CANCELLED)

    def browse(self) -> None:
        if self.conductor is not None:
            self.conductor.browse()

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
        self._refresh_current()
        self.speak_prompt()

    def on_locale(self, _app, locale: str) -> None:
        if self.conductor is not None:
            self.conductor.locale = locale
            if self.conductor.journey is not None:
                self.conductor.journey.locale = locale
        self._refresh_current()
        self.speak_prompt()

    # -- machine → UI ------------------------------------------------------------------
    def _on_transition(self, event: Transition) -> None:
        self.out_of_service_reason = self.machine.out_of_service_reason or ""
        if event.end_reason is not None:
            _log.info("session ended: %s", event.end_reason)
            self._reset_modes()
            self._clear_pages()
        if self.conductor is None:
            self._show(event.current)
            self._tick(0)
            self.speak_prompt()
        # With a conductor, its page change (which follows this transition) shows the screen.

    def _add_journey_screens(self) -> None:
        from screens.maintenance import MAINTENANCE_SCREENS
        from screens.pages import PAGE_SCREENS

        Builder.load_file(str(_KV_DIR / "pages.kv"))
        for screen_class in (*PAGE_SCREENS, *MAINTENANCE_SCREENS):
            if not self.screen_manager.has_screen(screen_class.state.value):
                self.screen_manager.add_widget(screen_class())

    def _on_page(self, page) -> None:
        previous = self.screen_manager.current if self.screen_manager else None
        self._show(page)
        self._tick(0)
        if previous != page.value or page.value == "field":
            self.speak_prompt()

    @property
    def page(self) -> str:
        if self.conductor is not None:
            return self.conductor.page.value
        return self.machine.state.value

    def _show(self, state) -> None:
        if self.screen_manager is None:
            return
        name = self.conductor.page.value if self.conductor is not None else state.value
        if not self.screen_manager.has_screen(name):
            _log.error("no screen for page %s", name)
            return
        screen = self.screen_manager.get_screen(name)
        refresh = getattr(screen, "refresh", None)
        if refresh is not None and self.conductor is not None:
            refresh(self, self.conductor)
        self.screen_manager.current = name
        self.page_shown_at = time.monotonic()
        self._draw_pending = True

    def _on_flip(self, *_args) -> None:
        if self._draw_pending:
            self._draw_pending = False
            self.page_drawn_at = time.monotonic()

    def _clear_pages(self) -> None:
        """The wipe reaches the screens too: no page keeps a citizen's name or answers."""
        if self.screen_manager is None:
            return
        for screen in self.screen_manager.screens:
            clear = getattr(screen, "clear", None)
            if clear is not None:
                clear()

    def _refresh_current(self) -> None:
        if self.conductor is not None and self.screen_manager is not None:
            self._show(self.conductor.page)

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
        self._last_tick = time.monotonic()
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
