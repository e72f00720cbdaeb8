"""Drive the running app the way a citizen does: tap at a widget's position, wait frames,
take screenshots. Used by the headless demo, the UI tests and the UI benchmark.

Touches go through Kivy's event loop (`post_dispatch_input`) like a touchscreen's, so
hit-testing, button states and the app's activity hook all run for real.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.graphics.opengl import GL_RGB, GL_UNSIGNED_BYTE, glReadPixels
from kivy.input.motionevent import MotionEvent
from kivy.uix.widget import Widget
from PIL import Image


class PilotTimeout(AssertionError):
    pass


def grab_window() -> Image.Image:
    """The window as it is drawn now, as an RGB image (also the fleet's screenshot)."""
    Window.dispatch("on_draw")
    width, height = Window.size
    data = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
    return Image.frombytes("RGB", (width, height), data).transpose(Image.Transpose.FLIP_TOP_BOTTOM)


class _Touch(MotionEvent):
    def __init__(self, x: float, y: float) -> None:
        win = EventLoop.window
        super().__init__(
            "pilot",
            id(self),
            {"sx": x / max(win.width - 1, 1), "sy": y / max(win.height - 1, 1)},
            is_touch=True,
            type_id="touch",
        )
        self.profile = ["pos"]

    def depack(self, args) -> None:
        self.sx, self.sy = args["sx"], args["sy"]
        super().depack(args)


class Pilot:
    def __init__(self, app) -> None:
        self.app = app
        self.flips = 0
        Window.bind(on_flip=self._on_flip)

    def _on_flip(self, *_args) -> None:
        self.flips += 1

    async def started(self, timeout: float = 20.0) -> None:
        """Wait until the app's root is built and a first frame has been shown."""
        deadline = time.monotonic() + timeout
        while self.app.root is None or self.flips == 0:
            if time.monotonic() > deadline:
                raise PilotTimeout("app did not show a first frame")
            await asyncio.sleep(0.002)

    async def frames(self, count: int = 1, timeout: float = 5.0) -> None:
        """Let the event loop run `count` full frames (clock ticks)."""
        target = Clock.frames + count
        deadline = time.monotonic() + timeout
        while Clock.frames < target:
            if time.monotonic() > deadline:
                raise PilotTimeout(f"waited {timeout}s for {count} frames")
            await asyncio.sleep(0.001)

    async def wait_for(self, condition, timeout: float = 5.0, what: str = "condition") -> None:
        """Run frames until `condition()` is true (timers such as the app's tick are real)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise PilotTimeout(f"waited {timeout}s for {what}")
            await self.frames(1)
        await self.settle()

    async def settle(self) -> None:
        """Wait until pending layout and canvas changes are drawn."""
        await self.frames(2)
        for _ in range(50):
            if not Window.canvas.needs_redraw:
                return
            await self.frames(1)

    async def tap(self, widget: Widget) -> None:
        if widget.get_root_window() is None:
            raise AssertionError(f"{widget!r} is not on screen")
        if widget.disabled or widget.opacity == 0:
            raise AssertionError(f"{widget!r} is not tappable (disabled or hidden)")
        x, y = widget.to_window(*widget.center)
        touch = _Touch(x, y)
        EventLoop.post_dispatch_input("begin", touch)
        await self.frames(1)
        EventLoop.post_dispatch_input("end", touch)
        await self.settle()

    def widget(self, screen: str, widget_id: str) -> Widget:
        """A widget by its kv id on a screen (ids inside the shared frame included)."""
        scr = self.app.screen(screen)
        if widget_id in scr.ids:
            return scr.ids[widget_id]
        frame = scr.ids.get("frame")
        if frame is not None and widget_id in frame.ids:
            return frame.ids[widget_id]
        targets = getattr(scr, "targets", {})  # widgets a page built from the conductor
        if widget_id in targets:
            return targets[widget_id]
        raise KeyError(f"no widget with id {widget_id!r} on screen {screen!r}")

    def grab(self) -> Image.Image:
        """The window as it is drawn now, as an RGB image."""
        return grab_window()

    async def screenshot(self, path: Path) -> Path:
        await self.settle()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.grab().save(path)
        return path
