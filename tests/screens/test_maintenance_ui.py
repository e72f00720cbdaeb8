"""The maintenance screen, opened the way an engineer opens it: an ops credential (signed by
the fleet, provisioning/credentials.py) shown to the kiosk's scanner, then its PIN typed on
the keypad. Devices, self-test, paper reloaded, leaving; a wrong PIN and a credential for
another region are refused with a reason."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning.credentials import MaintenanceGate, issue_credential

pytestmark = pytest.mark.ui

DEVICES = {"qr", "id_card", "receipt_printer", "a4_printer"}
PIN = "246810"


def test_credential_and_pin_open_maintenance(run_ui, tmp_path):
    key = Ed25519PrivateKey.generate()
    _, credential = issue_credential(key, "engineer-li", regions=["320200"], pin=PIN, valid_for_s=3600)
    _, elsewhere = issue_credential(key, "engineer-wang", regions=["320500"], pin=PIN, valid_for_s=3600)
    gate = MaintenanceGate(key.public_key(), "demo-kiosk-001", "320211")

    async def script(pilot):
        from screens import journeys
        from tests.screens.conftest import keep

        app = pilot.app
        scanner = app.services.devices.devices["qr"].simulator

        async def type_pin(pin):
            for digit in pin:
                await pilot.tap(journeys.target(pilot, "maintenance_login", f"key:{digit}"))

        # A credential for another region: the PIN is asked, then refused with the reason.
        scanner.scan(elsewhere)
        await journeys.wait_page(pilot, "maintenance_login")
        await type_pin(PIN)
        await pilot.tap(journeys.target(pilot, "maintenance_login", "open"))
        await pilot.wait_for(lambda: "notice" in app.screen("maintenance_login").targets, what="refusal")
        assert "无权维护本终端" in app.screen("maintenance_login").targets["notice"].text
        await journeys.tap_to(pilot, journeys.target(pilot, "maintenance_login", "cancel"), "attract")

        # The right credential, a wrong PIN first (the PIN never shows), then the right one.
        scanner.scan(credential)
        await journeys.wait_page(pilot, "maintenance_login")
        await type_pin("111111")
        assert app.screen("maintenance_login").keypad.display.text == "●" * 6
        await pilot.tap(journeys.target(pilot, "maintenance_login", "open"))
        await pilot.wait_for(lambda: "notice" in app.screen("maintenance_login").targets, what="wrong PIN")
        assert "密码错误" in app.screen("maintenance_login").targets["notice"].text
        await keep(pilot, "maintenance-login-wrong-pin")
        await type_pin(PIN)
        await journeys.tap_to(pilot, journeys.target(pilot, "maintenance_login", "open"), "maintenance")
        assert app.machine.state == "maintenance"
        screen = app.screen("maintenance")
        texts = [w.text for w in screen.walk() if isinstance(getattr(w, "text", None), str)]
        assert any("A4打印机" in t for t in texts) and any("正常" in t for t in texts)
        await keep(pilot, "maintenance")

        await journeys.tap(pilot, journeys.target(pilot, "maintenance", "selftest"))
        await pilot.wait_for(lambda: "selftest:a4_printer" in app.screen("maintenance").targets,
                             timeout=30, what="self-test results")
        assert app.screen("maintenance").targets["selftest:qr"].text.startswith("自检通过")
        await journeys.tap(pilot, journeys.target(pilot, "maintenance", "reloaded:receipt_printer"))
        await keep(pilot, "maintenance-selftest")
        await journeys.tap_to(pilot, journeys.target(pilot, "maintenance", "leave"), "attract")
        events = gate.drain_events()
        assert [e.get("reason") for e in events if not e.get("ok")] == ["out_of_scope", "wrong_pin"]
        assert not any(PIN in str(e) or credential in str(e) for e in events)

    from kiosk.config import KioskConfig

    config = KioskConfig()
    run_ui(script, config, services=True, devices=DEVICES, gate=gate)
