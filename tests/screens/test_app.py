"""The kiosk shell rendered for real (SDL offscreen + Mesa) and driven by touches."""

from __future__ import annotations

import pytest

from kiosk.config import KioskConfig
from kiosk.session import State
from tests.screens.conftest import keep

pytestmark = pytest.mark.ui


def ink_fraction(image, widget, window_height, threshold=200):
    """Share of light pixels (label text) inside a dark widget on the screenshot."""
    x, y = widget.to_window(widget.x, widget.y)
    box = (int(x), int(window_height - y - widget.height), int(x + widget.width), int(window_height - y))
    crop = image.crop(box).convert("L")
    pixels = list(crop.getdata())
    return sum(p > threshold for p in pixels) / len(pixels)


def visible_widgets(root):
    for widget in root.walk(restrict=True):
        if widget.opacity > 0 and widget.get_root_window() is not None:
            yield widget


def test_attract_screen_shows_its_chinese_labels(run_ui):
    async def script(pilot):
        from kivy.core.window import Window

        app = pilot.app
        assert app.screen_manager.current == "attract"
        start = pilot.widget("attract", "start")
        assert start.text == "开始办理"
        assert pilot.widget("attract", "code").title == "扫苏服码"
        assert pilot.widget("attract", "idcard").title == "插身份证"
        assert pilot.widget("attract", "ssc").title == "插社保卡"
        assert pilot.widget("attract", "title").text == "政务服务自助终端"
        assert pilot.widget("attract", "elderly").text == "长辈模式"
        assert pilot.widget("attract", "language").text == "English"
        image = pilot.grab()
        # White label text on the blue button: some ink, not a blank or white-washed box.
        assert 0.02 < ink_fraction(image, start, Window.height) < 0.4
        await keep(pilot, "attract-zh-normal")

    run_ui(script)


def test_the_default_font_draws_real_chinese_glyphs(run_ui):
    async def script(pilot):
        from kivy.core.text import DEFAULT_FONT, Label as CoreLabel, LabelBase

        def render(text, font=None):
            label = CoreLabel(text=text, font_size=48, **({"font_name": font} if font else {}))
            label.refresh()
            return bytes(label.texture.pixels)

        assert "wqy-microhei" in LabelBase._fonts[DEFAULT_FONT][0]
        zheng, wu = render("政"), render("务")
        assert zheng != wu, "two different characters drew the same glyph (tofu boxes)"
        assert any(zheng) and any(wu)
        # Control: Kivy's bundled Latin font draws both as the same missing-glyph box, so
        # the comparison above would catch a missing CJK font.
        from pathlib import Path

        import kivy

        roboto = str(Path(kivy.__file__).parent / "data" / "fonts" / "Roboto-Regular.ttf")
        assert render("政", roboto) == render("务", roboto)

    run_ui(script)


def test_elderly_mode_by_touch_enlarges_text_targets_and_time(run_ui):
    async def script(pilot):
        from kivy.metrics import dp, pt

        from screens.widgets import FooterLabel, HintLabel, KioskLabel, Touchable

        app = pilot.app
        screen = app.screen("attract")

        def check(min_text_pt, min_target_dp):
            for w in visible_widgets(screen):
                if isinstance(w, KioskLabel) and not isinstance(w, (HintLabel, FooterLabel)):
                    assert w.font_size >= pt(min_text_pt) - 0.01, (w, w.text, w.font_size)
                if isinstance(w, Touchable):
                    assert w.height >= dp(min_target_dp) and w.width >= dp(min_target_dp), w.text

        check(18, 44)
        await pilot.tap(pilot.widget("attract", "elderly"))
        assert app.elderly and app.theme.name == "elderly"
        assert pilot.widget("attract", "elderly").text == "长辈模式：已开启"  # not colour alone
        check(30, 60)
        assert app.machine.timing.idle_s == 120 and app.machine.timing.warning_s == 30
        await keep(pilot, "attract-zh-elderly")
        await pilot.tap(pilot.widget("attract", "elderly"))
        assert not app.elderly and app.machine.timing.idle_s == 60

    run_ui(script)


def test_language_switch_by_touch(run_ui):
    async def script(pilot):
        await pilot.tap(pilot.widget("attract", "language"))
        assert pilot.app.locale == "en"
        assert pilot.widget("attract", "start").text == "Start"
        assert pilot.widget("attract", "title").text == "Government Services Kiosk"
        assert pilot.widget("attract", "language").text == "中文"
        await keep(pilot, "attract-en-normal")
        await pilot.tap(pilot.widget("attract", "language"))
        assert pilot.widget("attract", "start").text == "开始办理"

    run_ui(script)


def test_start_then_exit_wipes_the_session(run_ui):
    async def script(pilot):
        app = pilot.app
        await pilot.tap(pilot.widget("attract", "start"))
        assert app.machine.state is State.IDENTIFY
        assert app.screen_manager.current == "identify"
        session = app.machine.session
        session.identity = {"name": "张三"}
        session.form["phone"] = "13812345678"
        await keep(pilot, "identify-zh-normal")
        await pilot.tap(pilot.widget("identify", "exit"))
        assert app.machine.state is State.ATTRACT
        assert app.screen_manager.current == "attract"
        assert app.machine.session is None
        assert session.identity is None and session.form == {}

    run_ui(script)


def test_idle_countdown_then_timeout_wipes_and_resets_modes(run_ui, clock):
    async def script(pilot):
        app = pilot.app
        await pilot.tap(pilot.widget("attract", "language"))
        await pilot.tap(pilot.widget("attract", "start"))
        banner = app.banner
        assert banner.opacity == 0 and banner.disabled

        clock.advance(61)
        await pilot.wait_for(lambda: banner.opacity == 1, what="countdown banner")
        assert "14 seconds" in banner.ids.content.children[0].text
        await keep(pilot, "identify-countdown-en")
        await pilot.tap(banner.ids.keep_going)
        assert banner.opacity == 0 and app.machine.countdown() is None

        clock.advance(61 + 15)
        await pilot.wait_for(lambda: app.machine.state is State.ATTRACT, what="timeout")
        assert app.machine.session is None
        assert app.screen_manager.current == "attract"
        assert app.locale == "zh_CN"  # the next citizen starts in the default language
        assert banner.opacity == 0

    run_ui(script)


def test_modes_left_on_in_attract_reset_after_idle(run_ui, clock):
    async def script(pilot):
        app = pilot.app
        await pilot.tap(pilot.widget("attract", "elderly"))
        assert app.elderly
        clock.advance(100)  # elderly mode doubles the idle time to 120 s: not yet
        await pilot.frames(40)
        assert app.elderly
        clock.advance(21)
        await pilot.wait_for(lambda: not app.elderly, what="elderly mode reset")
        assert app.theme.name == "normal"

    run_ui(script)


def test_out_of_service_screen_says_why_and_what_to_do(run_ui):
    async def script(pilot):
        app = pilot.app
        app.machine.take_out_of_service("printer")
        await pilot.settle()
        assert app.screen_manager.current == "out_of_service"
        assert pilot.widget("out_of_service", "title").text == "暂停服务"
        assert pilot.widget("out_of_service", "reason").text == "打印机暂时无法使用。"
        assert "服务窗口" in pilot.widget("out_of_service", "what_to_do").text
        await keep(pilot, "out-of-service-zh-normal")
        app.machine.take_out_of_service("网点装修，暂停至周一")  # free text from ops
        await pilot.settle()
        assert pilot.widget("out_of_service", "reason").text == "网点装修，暂停至周一"
        app.machine.return_to_service()
        await pilot.settle()
        assert app.screen_manager.current == "attract"

    run_ui(script)


@pytest.mark.parametrize("size", [(1280, 800), (1080, 1920)], ids=["landscape", "portrait"])
def test_every_screen_fits_in_both_modes_and_languages(run_ui, size):
    """Nothing spills out of its area: what a citizen would see as overlapping text."""

    async def script(pilot):
        from kivy.core.window import Window

        app = pilot.app
        for elderly in (False, True):
            for locale in ("zh_CN", "en"):
                app.elderly, app.locale = elderly, locale
                for state in ("attract", "identify", "out_of_service"):
                    app.screen_manager.current = state
                    await pilot.settle()
                    frame = app.screen(state).ids.frame
                    header, body = frame.ids.header, frame.ids.body
                    for child in body.children:
                        assert child.y >= body.y - 1 and child.top <= body.top + 1, (
                            f"{state} {locale} elderly={elderly}: {child} overflows the body"
                        )
                    assert frame.ids.title.height <= header.height
                    for widget in visible_widgets(app.screen(state)):
                        if hasattr(widget, "texture_size") and widget.text:
                            assert widget.texture_size[1] <= widget.height + 1, widget.text
                    assert 0 <= frame.x and frame.right <= Window.width
                    mode = "elderly" if elderly else "normal"
                    if size == (1280, 800):
                        await keep(pilot, f"{state}-{locale[:2]}-{mode}")

    config = KioskConfig.model_validate({"display": {"width": size[0], "height": size[1]}})
    run_ui(script, config)
