"""One Screen class per session state; their layouts are in kv/<name>.kv.

A screen's `name` is the `kiosk.session.State` it shows, so the app switches screens by
state alone.
"""

from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from kiosk.session import State


class ScreenFrame(BoxLayout):
    """Header + body + footer; children a screen declares in kv go into the body."""

    def on_kv_post(self, _base_widget) -> None:
        # Kivy adds the screen's children after the frame's own header/body/footer; move
        # them into the body, keeping their order (`children` lists the last added first).
        own = (self.ids.header, self.ids.body, self.ids.footer)
        for child in reversed([c for c in self.children if c not in own]):
            self.remove_widget(child)
            self.ids.body.add_widget(child)


class KioskScreen(Screen):
    state: State

    def __init__(self, **kwargs):
        super().__init__(name=self.state.value, **kwargs)


class AttractScreen(KioskScreen):
    state = State.ATTRACT


class IdentifyScreen(KioskScreen):
    state = State.IDENTIFY

    def refresh(self, app, conductor) -> None:
        """Each way's readiness (and what to do when its device is down), a notice about
        the last attempt, and the way in without identifying where an item allows it."""
        cards = {"code": self.ids.code, "idcard": self.ids.idcard, "ssc": self.ids.ssc}
        for status in conductor.ways():
            card = cards[str(status.way)]
            card.ready = status.ready
            card.hint = app.t(f"attract.way_{status.way}_hint") if status.ready else app.t(status.message_key)
        notice = conductor.notice
        self.ids.notice.text = "" if notice is None else "！" + app.t(notice.message_key, **notice.params)
        browse = self.ids.browse
        shown = conductor.without_identity()
        browse.opacity, browse.disabled = (1, False) if shown else (0, True)


class OutOfServiceScreen(KioskScreen):
    state = State.OUT_OF_SERVICE


SCREENS: tuple[type[KioskScreen], ...] = (AttractScreen, IdentifyScreen, OutOfServiceScreen)
KV_FILES = ("widgets.kv", "frame.kv", "attract.kv", "identify.kv", "out_of_service.kv")
