"""The ops screens: the PIN after an ops credential was scanned, and maintenance itself.

An engineer opens maintenance by showing their ops credential (a QR code issued by the
fleet server, see docs/security.md) to the kiosk's scanner, then typing its PIN here. Branch
staff see the device list too when an engineer walks them through it: text is precise, in the
kiosk's language, and says who acts (branch staff / engineer) as the devices report it.
"""

from __future__ import annotations

import datetime as dt

from kiosk.conductor import Page
from screens.inputs import Keypad
from screens.pages import StepScreen
from screens.widgets import Panel

PIN_LENGTH = 6


class MaintenanceLoginScreen(StepScreen):
    state = Page.MAINTENANCE_LOGIN

    def refresh(self, app, conductor) -> None:
        self.clear()
        self.heading = app.t("maintenance.login_title")
        self.text(app.t("maintenance.login_hint"))
        notice = conductor.maintenance_notice
        if notice is not None:
            label = self.text("！" + app.t(notice.message_key, **notice.params), bold=True)
            label.color = (*app.theme.palette.warning, 1)
            self.targets["notice"] = label
        self.pin = ""
        keypad = Keypad("", self._typed, max_length=PIN_LENGTH)
        keypad.display.text = "—"
        self.keypad = keypad
        self.add(keypad)
        for name, button in keypad.keys.items():
            self.targets[f"key:{name}"] = button
        self.action("cancel", app.t("maintenance.cancel"), conductor.exit)
        self.spacer()
        self.action("open", app.t("maintenance.open"),
                    lambda: app.run_task(conductor.enter_pin(self.pin)), primary=True)

    def _typed(self, value: str) -> None:
        self.pin = value
        self.keypad.display.text = "●" * len(value) or "—"  # never show the PIN


class MaintenanceScreen(StepScreen):
    state = Page.MAINTENANCE

    def refresh(self, app, conductor) -> None:
        self.clear()
        self.heading = app.t("maintenance.title")
        devices = conductor.services.devices.devices
        results = {r.device: r for r in conductor.selftests}
        for key, device in devices.items():
            status = device.status
            panel = Panel()
            self.text(f"{app.t('items.device.' + str(status.device_class))} ({key})", bold=True, panel=panel)
            self.text(app.t("maintenance.state", state=app.t(f"maintenance.device_state.{status.state}")), panel=panel)
            for supply, level in status.supplies.items():
                self.text(app.t("maintenance.supply", supply=supply, level=app.t(f"maintenance.level.{level}")), panel=panel)
            error = status.last_error
            if error is not None:
                when = dt.datetime.fromtimestamp(error.at).strftime("%m-%d %H:%M:%S")
                who = app.t(f"maintenance.action.{error.action}")
                self.text(app.t("maintenance.last_error", at=when, code=error.code, who=who), panel=panel)
                if error.vendor_text:
                    self.text(error.vendor_text, hint=True, panel=panel)
            if key in results:
                result = results[key]
                verdict = app.t("maintenance.selftest_ok" if result.ok else "maintenance.selftest_failed")
                self.targets[f"selftest:{key}"] = self.text(f"{verdict} {result.detail}", panel=panel)
            self.add(panel)
            if status.supplies:
                self.targets[f"reloaded:{key}"] = self.add(self._button(
                    app.t("maintenance.paper_reloaded", device=key), lambda k=key: conductor.paper_reloaded(k)
                ))
        self.action("selftest", app.t("maintenance.selftest"), lambda: app.run_task(conductor.selftest()))
        self.spacer()
        self.action("leave", app.t("maintenance.leave"), conductor.leave_maintenance, primary=True)

    @staticmethod
    def _button(text, callback):
        from screens.widgets import OutlineButton

        button = OutlineButton(text=text)
        button.bind(on_release=lambda *_: callback())
        return button


MAINTENANCE_SCREENS = (MaintenanceLoginScreen, MaintenanceScreen)
