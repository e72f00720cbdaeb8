"""What to do about a device problem: the driver's error code and operator action (DESIGN §4:
`clear` is for branch staff, `maintenance` sends an engineer, `configuration` is a config
change) turned into a sentence with the device's port or URI in it."""

from __future__ import annotations

from yarl import URL

from drivers.base import DeviceState, OperatorAction
from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, warn

# What to do, by the error's code first, then by its operator action.
_BY_CODE = {
    "printer.paper_out": "load paper in the printer's tray",
    "printer.jam": "open the printer's cover, clear the jammed sheet, close the cover",
    "printer.toner_out": "replace the toner cartridge",
    "printer.cover_open": "close the printer's cover",
}
# A CUPS queue that is paused, stopped or refusing jobs is fixed at CUPS, not at the printer.
_QUEUE_CODES = {"printer.stopped", "printer.not_accepting", "printer.paused"}


def cups_queue(uri: str) -> str | None:
    """`ipp://host:631/printers/NAME` → NAME (a CUPS queue), else None."""
    try:
        parts = URL(uri).path.strip("/").split("/")
    except (ValueError, TypeError):
        return None
    if len(parts) == 2 and parts[0] in ("printers", "classes") and parts[1]:
        return parts[1]
    return None


def where(ctx: DoctorContext, key: str) -> str:
    """How the device is connected, for the engineer sent to it."""
    section = getattr(ctx.config.devices, key)
    if key == "id_card":
        return f"SAM module on {section.port} at {section.baudrate} baud"
    if key == "ssc":
        return f"PC/SC reader matching {section.reader!r}" if section.reader else "PC/SC reader"
    if key == "qr":
        return (f"scanner on {section.port}" if section.source == "serial"
                else f"camera {section.camera}")
    if key == "receipt_printer":
        c = section.connection
        if c == "network":
            return f"receipt printer at {section.host}:{section.port}"
        if c == "serial":
            return f"receipt printer on {section.serial_port}"
        if c == "usb":
            return f"receipt printer USB {section.usb_vendor:04x}:{section.usb_product:04x}"
        return "receipt printer simulator"
    if key == "a4_printer":
        return f"A4 printer {section.uri}"
    return key


def fix_for(ctx: DoctorContext, key: str, code: str, action: str, state: str) -> str:
    """The concrete thing to do about a device in `state` whose last error is `code` with
    operator `action` (DESIGN §4's vocabulary)."""
    spot = where(ctx, key)
    queue = cups_queue(ctx.config.devices.a4_printer.uri) if key == "a4_printer" else None
    if queue and code in _QUEUE_CODES:
        return (f"cupsenable {queue} && cupsaccept {queue}  (then `lpstat -p {queue}` says "
                "idle); if it stops again, `lpstat -l -p` and /var/log/cups/error_log say why")
    if code in _BY_CODE:
        return f"branch staff: {_BY_CODE[code]} ({spot}); then run `kiosk doctor` again"
    section = f"[devices.{key}] in {ctx.config_file}"
    if action == OperatorAction.CONFIGURATION:
        return f"fix {section} (the driver refuses it as configured), or set enabled = false"
    if action == OperatorAction.CLEAR:
        return f"branch staff: clear the condition at the device ({spot}); then run doctor again"
    if state == DeviceState.NO_DEVICE or action == OperatorAction.MAINTENANCE:
        return (f"engineer: check power and cable of the {spot}; for USB/serial devices "
                f"`ls -l /dev/serial/by-id/` and the udev rules in docs/lockdown.md; "
                f"for network devices ping it; then run `kiosk doctor` again")
    if action == OperatorAction.RESET:
        return (f"power-cycle the device ({spot}) or restart the app "
                f"(systemctl restart kiosk-app.service), which resets it")
    if action == OperatorAction.SUSPEND:
        return f"take the device out of use until ops decide: set enabled = false in {section}"
    return f"see the device's own diagnostics ({spot})"


def app_running(ctx: DoctorContext, group: str) -> CheckResult | None:
    """A warning instead of opening devices the running app is using, or None."""
    pid = ctx.app_pid()
    if pid is None or ctx.options.open_devices:
        return None
    return warn(group, f"the kiosk app (pid {pid}) is running and holds the devices: not "
                "opened, so a citizen's session is not disturbed",
                "to check them: systemctl stop kiosk-app.service, run `kiosk doctor`, then "
                "systemctl start kiosk-app.service (or --open-devices, or the fleet's selftest "
                "command, which runs inside the app)")
