"""Whole visits in the real app, driven by touches at widget positions, through the real
simulators (pty SAM reader, serial scanner, pcscd + vpcd, TCP receipt printer, ippeveprinter)
and the sandbox platform. Every page visited is kept as a screenshot in
test-artifacts/screens/journeys/; a failure leaves its screenshot in test-artifacts/failures/.
"""

from __future__ import annotations

import pytest

from kiosk import i18n
from kiosk.platform.sandbox.seed import CITIZENS
from tests.screens.conftest import ARTIFACTS
from tests.screens.test_speech_ui import RecordingSpeaker

pytestmark = pytest.mark.ui

DEVICES = {"qr", "id_card", "receipt_printer", "a4_printer"}
ZH = i18n.catalogue("zh_CN")


def seed(citizen_id):
    return next(c for c in CITIZENS if c.citizen_id == citizen_id)


def shots(pilot, name):
    count = [0]

    async def shot(page):
        count[0] += 1
        await pilot.screenshot(ARTIFACTS / "screens" / "journeys" / name / f"{count[0]:02d}-{page}.png")

    return shot


def texts_on_screen(app):
    """Every text any widget of any screen holds now (what a citizen could read)."""
    out = []
    for screen in app.screen_manager.screens:
        for widget in screen.walk(restrict=True):
            text = getattr(widget, "text", None)
            if isinstance(text, str) and text:
                out.append(text)
    return out


def assert_forgotten(app, citizen):
    conductor = app.conductor
    assert app.machine.session is None and conductor.identity is None
    assert conductor.journey is None and conductor.answers == {} and conductor.result is None
    for text in texts_on_screen(app):
        for secret in (citizen.name, citizen.id_number, citizen.masked_name() if hasattr(citizen, "masked_name") else citizen.name[0] + "*"):
            assert secret not in text, f"{secret!r} still on a screen: {text!r}"


def test_print_item_via_code(run_ui):
    async def script(pilot):
        from screens import journeys

        app = pilot.app
        a4 = app.services.devices.devices["a4_printer"].simulator
        before = len(a4.spooled_documents())
        walk = await journeys.visit(pilot, "ssc_participation_cert", "c01", "code",
                                    shot=shots(pilot, "print-code"))
        assert walk.pages == ["identify", "guide", "field", "consent", "confirm", "working", "rating", "attract"]
        spooled = a4.spooled_documents()
        assert len(spooled) == before + 1 and spooled[-1].read_bytes().startswith(b"%PDF")
        assert_forgotten(app, seed("c01"))

    run_ui(script, services=True, devices=DEVICES)


def test_print_item_via_id_card_reminds_to_take_the_card(run_ui):
    async def script(pilot):
        from screens import journeys

        app = pilot.app
        seen = {}

        async def shot(page):
            if page == "result":
                seen["result"] = [w.text for w in app.screen("result").targets.values() if hasattr(w, "text")]
            await shots(pilot, "print-idcard")(page)

        await journeys.visit(pilot, "real_estate_info", "c03", "idcard", shot=shot)
        assert "→ " + ZH["result.take_card_idcard"] in seen["result"]
        assert "→ " + ZH["result.take_prints"] in seen["result"]
        assert_forgotten(app, seed("c03"))

    run_ui(script, services=True, devices=DEVICES)


def test_submit_item_via_social_security_card_prints_a_receipt(run_ui):
    async def script(pilot):
        from screens import journeys

        app = pilot.app
        printer = app.services.devices.devices["receipt_printer"].simulator
        before = len(printer.printed_jobs())
        case_numbers = []

        async def shot(page):
            if page == "result":
                case_numbers.extend(line.value for line in app.conductor.result.lines
                                    if line.label == "办件编号")
            await shots(pilot, "submit-ssc")(page)

        walk = await journeys.visit(pilot, "flexible_employment_enrol", "c03", "ssc", shot=shot)
        assert "commitment" in walk.pages and "confirm" in walk.pages
        assert case_numbers and case_numbers[0].isdigit()
        assert len(printer.printed_jobs()) == before + 1
        assert_forgotten(app, seed("c03"))

    run_ui(script, services=True, devices=DEVICES | {"ssc"})


def test_query_item_with_an_optional_receipt_and_rating_reasons(run_ui):
    async def script(pilot):
        from screens import journeys

        app = pilot.app
        printer = app.services.devices.devices["receipt_printer"].simulator
        before = len(printer.printed_jobs())
        await journeys.visit(pilot, "housing_fund_balance", "c01", "code", receipt=True,
                             rating="satisfied", reasons=("fast", "easy"), shot=shots(pilot, "query-code"))
        assert len(printer.printed_jobs()) == before + 1
        assert_forgotten(app, seed("c01"))

    run_ui(script, services=True, devices=DEVICES)


def test_abandoned_visit_times_out_wipes_and_returns_to_attract(run_ui, clock):
    async def script(pilot):
        from screens import journeys

        app = pilot.app
        conductor = app.conductor
        await journeys.tap_to(pilot, pilot.widget("attract", "start"), "identify")
        await journeys.present(pilot, "c01", "code")
        await journeys.wait_page(pilot, "catalogue")
        await journeys.tap_to(pilot, journeys.target(pilot, "catalogue", "item:ssc_participation_cert"), "guide")
        await journeys.tap_to(pilot, journeys.target(pilot, "guide", "start"), "field")
        await pilot.tap(journeys.target(pilot, "field", "option:12"))
        assert conductor.answers == {"period": "12"} and conductor.identity is not None
        clock.advance(app.machine.timing.idle_s + 1)
        await pilot.wait_for(lambda: app.banner.opacity == 1, what="the countdown")
        await pilot.screenshot(ARTIFACTS / "screens" / "journeys" / "abandoned" / "countdown.png")
        clock.advance(app.machine.timing.warning_s + 1)
        await journeys.wait_page(pilot, "attract")
        assert_forgotten(app, seed("c01"))

    run_ui(script, services=True, devices=DEVICES)


def test_elderly_visit_meets_the_numbers_and_speaks_every_page(run_ui):
    speaker = RecordingSpeaker()

    async def script(pilot):
        from kivy.metrics import dp, pt

        from screens import journeys
        from screens.widgets import FooterLabel, HintLabel, KioskLabel, Touchable

        app = pilot.app
        await pilot.tap(pilot.widget("attract", "elderly"))
        assert app.elderly
        checked = []

        async def check(page):
            if page == "working":
                return  # passes in milliseconds here; its prompt is checked below
            screen = app.screen(app.page)
            for widget in screen.walk(restrict=True):
                if widget.opacity == 0 or widget.get_root_window() is None:
                    continue
                if isinstance(widget, KioskLabel) and not isinstance(widget, (HintLabel, FooterLabel)):
                    if widget.text:
                        assert widget.font_size >= pt(30) - 0.01, (page, widget.text, widget.font_size)
                if isinstance(widget, Touchable) and not widget.disabled:
                    assert widget.height >= dp(60) and widget.width >= dp(60), (page, widget)
            assert speaker.keys()[-1] == f"speech.{app.page}", (page, speaker.keys()[-3:])
            checked.append(app.page)
            await shots(pilot, "elderly")(page)

        await journeys.visit(pilot, "ssc_participation_cert", "c01", "code", shot=check)
        assert set(checked) >= {"identify", "catalogue", "guide", "field", "consent", "confirm", "result", "rating"}
        spoken = speaker.keys()
        for page in ("catalogue", "guide", "field", "consent", "confirm", "working", "result", "rating"):
            assert f"speech.{page}" in spoken, page
        assert all(text for _key, text, _locale, elderly in speaker.said if elderly)

    run_ui(script, services=True, devices=DEVICES, speaker=speaker)
