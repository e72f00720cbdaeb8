"""Spoken prompts in the real app: which screen says what, when, in which language.

A recording `Speaker` goes in through the runtime (`run_ui(..., speaker=...)`); the app is
driven by touches as in test_app.py. Every prompt is checked against the catalogue.
"""

from __future__ import annotations

import pytest

from kiosk import i18n
from kiosk.config import KioskConfig
from kiosk.session import State

pytestmark = pytest.mark.ui

ZH, EN = i18n.catalogue("zh_CN"), i18n.catalogue("en")


class RecordingSpeaker:
    """Remembers every prompt instead of speaking it."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str, str, bool]] = []  # key, text, locale, elderly
        self.cancels = 0

    async def say(self, text: str, locale: str, *, key: str = "", elderly: bool = False) -> bool:
        self.said.append((key, text, locale, elderly))
        return True

    def cancel(self) -> None:
        self.cancels += 1

    def clear_cache(self) -> None:
        pass

    def close(self) -> None:
        pass

    def keys(self) -> list[str]:
        return [key for key, *_ in self.said]


def countdown_text(catalogue: dict[str, str], text: str, most: int) -> bool:
    return any(text == catalogue["speech.countdown"].format(seconds=s) for s in range(1, most + 1))


def test_elderly_mode_speaks_every_screen_and_the_countdown_once(run_ui, clock):
    speaker = RecordingSpeaker()

    async def script(pilot):
        app = pilot.app
        await pilot.frames(4)
        assert speaker.said == []  # normal mode: silent

        await pilot.tap(pilot.widget("attract", "elderly"))
        assert speaker.said == [("speech.attract", ZH["speech.attract"], "zh_CN", True)]

        await pilot.tap(pilot.widget("attract", "start"))
        assert app.machine.state is State.IDENTIFY
        assert speaker.said[1:] == [("speech.identify", ZH["speech.identify"], "zh_CN", True)]

        clock.advance(121)  # 长辈模式 doubles the idle time: 120 s, then a 30 s countdown
        await pilot.wait_for(lambda: app.banner.opacity == 1, what="countdown banner")
        await pilot.frames(8)  # the banner counts down; the prompt is said once only
        assert speaker.keys()[2:] == ["speech.countdown"]
        key, text, locale, elderly = speaker.said[2]
        assert locale == "zh_CN" and elderly and countdown_text(ZH, text, 30), text

        cancels = speaker.cancels
        await pilot.tap(app.banner.ids.keep_going)
        assert speaker.cancels > cancels  # the stale warning is cut off
        assert len(speaker.said) == 3

        await pilot.tap(pilot.widget("identify", "exit"))  # session ends: modes reset, silent
        assert app.machine.state is State.ATTRACT and not app.elderly
        assert len(speaker.said) == 3

        await pilot.tap(pilot.widget("attract", "elderly"))
        app.machine.take_out_of_service("printer")
        await pilot.settle()
        assert app.screen_manager.current == "out_of_service"
        expected = ZH["speech.out_of_service"].format(reason=ZH["out_of_service.reason.printer"])
        assert speaker.said[-1] == ("speech.out_of_service", expected, "zh_CN", True)
        assert speaker.keys() == [
            "speech.attract", "speech.identify", "speech.countdown",
            "speech.attract", "speech.out_of_service",
        ]

    run_ui(script, speaker=speaker)


def test_switching_language_or_mode_re_speaks_the_current_prompt(run_ui):
    speaker = RecordingSpeaker()

    async def script(pilot):
        app = pilot.app
        await pilot.tap(pilot.widget("attract", "elderly"))
        await pilot.tap(pilot.widget("attract", "language"))
        assert app.locale == "en"
        assert speaker.said[-1] == ("speech.attract", EN["speech.attract"], "en", True)

        await pilot.tap(pilot.widget("attract", "start"))
        assert speaker.said[-1] == ("speech.identify", EN["speech.identify"], "en", True)
        await pilot.tap(pilot.widget("identify", "language"))
        assert speaker.said[-1] == ("speech.identify", ZH["speech.identify"], "zh_CN", True)

        await pilot.tap(pilot.widget("identify", "elderly"))  # off: silent again
        count = len(speaker.said)
        await pilot.tap(pilot.widget("identify", "language"))
        assert len(speaker.said) == count
        await pilot.tap(pilot.widget("identify", "elderly"))  # on: says where we are
        assert speaker.said[-1] == ("speech.identify", EN["speech.identify"], "en", True)
        assert speaker.keys() == [
            "speech.attract", "speech.attract", "speech.identify", "speech.identify",
            "speech.identify",
        ]

    run_ui(script, speaker=speaker)


def test_normal_mode_is_silent(run_ui, clock):
    speaker = RecordingSpeaker()

    async def script(pilot):
        app = pilot.app
        await pilot.tap(pilot.widget("attract", "language"))
        await pilot.tap(pilot.widget("attract", "start"))
        clock.advance(61)
        await pilot.wait_for(lambda: app.banner.opacity == 1, what="countdown banner")
        await pilot.tap(app.banner.ids.keep_going)
        await pilot.tap(pilot.widget("identify", "exit"))
        app.machine.take_out_of_service("network")
        await pilot.settle()
        assert app.screen_manager.current == "out_of_service"
        assert speaker.said == []

    run_ui(script, speaker=speaker)


def test_always_speaks_in_normal_mode_too(run_ui, clock):
    speaker = RecordingSpeaker()

    async def script(pilot):
        app = pilot.app
        await pilot.frames(2)
        # The first screen speaks as soon as it is shown.
        assert speaker.said == [("speech.attract", ZH["speech.attract"], "zh_CN", False)]
        await pilot.tap(pilot.widget("attract", "language"))
        await pilot.tap(pilot.widget("attract", "start"))
        assert speaker.said[1:] == [
            ("speech.attract", EN["speech.attract"], "en", False),
            ("speech.identify", EN["speech.identify"], "en", False),
        ]
        clock.advance(61)
        await pilot.wait_for(lambda: app.banner.opacity == 1, what="countdown banner")
        key, text, locale, _ = speaker.said[-1]
        assert key == "speech.countdown" and locale == "en" and countdown_text(EN, text, 15)

        clock.advance(20)  # the countdown runs out: wiped, back to the default language
        await pilot.wait_for(lambda: app.machine.state is State.ATTRACT, what="timeout")
        assert speaker.said[-1] == ("speech.attract", ZH["speech.attract"], "zh_CN", False)
        assert speaker.keys().count("speech.attract") == 3

        app.machine.take_out_of_service("网点装修，暂停至周一")  # free text from ops
        await pilot.settle()
        expected = ZH["speech.out_of_service"].format(reason="网点装修，暂停至周一。")
        assert speaker.said[-1] == ("speech.out_of_service", expected, "zh_CN", False)
        await pilot.tap(pilot.widget("out_of_service", "language"))
        expected = EN["speech.out_of_service"].format(reason="网点装修，暂停至周一.")
        assert speaker.said[-1] == ("speech.out_of_service", expected, "en", False)

    config = KioskConfig.model_validate({"speech": {"always": True}})
    run_ui(script, config, speaker=speaker)


def test_speech_switched_off_says_nothing_even_in_elderly_mode(run_ui):
    speaker = RecordingSpeaker()

    async def script(pilot):
        await pilot.tap(pilot.widget("attract", "elderly"))
        await pilot.tap(pilot.widget("attract", "start"))
        assert speaker.said == []

    config = KioskConfig.model_validate({"speech": {"enabled": False, "always": True}})
    run_ui(script, config, speaker=speaker)
